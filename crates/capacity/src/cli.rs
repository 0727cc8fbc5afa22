//! `tenantd capacity`: flags in, one report out. Parses and loads (profiles, overrides), asks
//! the model, hands the result to a renderer. Errors are user-facing, via anyhow.

use std::path::PathBuf;

use anyhow::{bail, Context};
use serde_json::json;

use crate::builtin;
use crate::claims::{check_seed, SeedCase};
use crate::compare::compare;
use crate::economics::economics;
use crate::explain::explain;
use crate::field::Profile;
use crate::limits::evaluate;
use crate::load;
use crate::machine::MachineProfile;
use crate::render::{self, report, svg, Format};
use crate::roadmap::{plan, seed_roadmap, SEED_ROADMAP};
use crate::sensitivity::sensitivity;
use crate::series::{cost_curves, log_spaced, retention_curve};
use crate::workload::WorkloadProfile;

/// The launch case's machine when `--machine` is not given.
pub const DEFAULT_MACHINE: &str = "fly-shared-cpu-2x";
/// The workload when `--workload` is not given.
pub const DEFAULT_WORKLOAD: &str = "seed";
/// The gross margin `--target-margin` asks a price for when not given.
pub const DEFAULT_TARGET_MARGIN: f64 = 0.8;
/// Largest `--users` / `--tenants`: a trillion, over a hundred per person alive; a larger count
/// is a typo, and counts stay exact in the model's floating point.
pub const MAX_USERS: u64 = 1_000_000_000_000;

/// Arguments of `tenantd capacity`. With no subcommand: the launch report.
#[derive(Debug, clap::Args)]
pub struct CapacityCmd {
    /// What to show (default: the capacity of one machine).
    #[command(subcommand)]
    pub command: Option<CapacitySub>,
    /// The model's options for the launch report; also accepted before a subcommand.
    #[command(flatten)]
    pub opts: Opts,
}

/// The model's options, given after `capacity` or after a model subcommand (the latter wins).
/// Unset options take their documented defaults when the command runs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Opts {
    /// Machine profile: a built-in name or a TOML file [default: fly-shared-cpu-2x]
    #[arg(long, value_name = "NAME|FILE")]
    pub machine: Option<String>,
    /// Workload profile: a built-in name or a TOML file [default: seed]
    #[arg(long, value_name = "NAME|FILE")]
    pub workload: Option<String>,
    /// Years of data kept per tenant (overrides the workload's retention_years)
    #[arg(long, allow_negative_numbers = true, value_name = "YEARS")]
    pub years: Option<f64>,
    /// Price per tenant per month, USD (overrides price_usd_per_tenant_month)
    #[arg(long, allow_negative_numbers = true, value_name = "USD")]
    pub price: Option<f64>,
    /// Fraction of the binding limit kept free (overrides headroom_fraction)
    #[arg(long, allow_negative_numbers = true, value_name = "FRACTION")]
    pub headroom: Option<f64>,
    /// Gross margin to compute a price for, as a fraction [default: 0.8]
    #[arg(long, allow_negative_numbers = true, value_name = "FRACTION")]
    pub target_margin: Option<f64>,
    /// Output format [default: text]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Also draw charts to this SVG file (tenants vs years kept; cost per user vs users)
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

impl Opts {
    /// These options where set, else `outer`'s (the options given before the subcommand).
    fn or(&self, outer: &Opts) -> Opts {
        Opts {
            machine: self.machine.clone().or_else(|| outer.machine.clone()),
            workload: self.workload.clone().or_else(|| outer.workload.clone()),
            years: self.years.or(outer.years),
            price: self.price.or(outer.price),
            headroom: self.headroom.or(outer.headroom),
            target_margin: self.target_margin.or(outer.target_margin),
            format: self.format.or(outer.format),
            svg: self.svg.clone().or_else(|| outer.svg.clone()),
        }
    }

    /// The flags that are set, by name, for refusing those a subcommand has no use for.
    fn set_flags(&self) -> Vec<&'static str> {
        let set = [
            ("--machine", self.machine.is_some()),
            ("--workload", self.workload.is_some()),
            ("--years", self.years.is_some()),
            ("--price", self.price.is_some()),
            ("--headroom", self.headroom.is_some()),
            ("--target-margin", self.target_margin.is_some()),
            ("--svg", self.svg.is_some()),
        ];
        set.iter().filter(|(_, on)| *on).map(|(f, _)| *f).collect()
    }

    fn format(&self) -> Format {
        self.format.unwrap_or_default()
    }

    fn target_margin(&self) -> f64 {
        self.target_margin.unwrap_or(DEFAULT_TARGET_MARGIN)
    }
}

/// Subcommands of `tenantd capacity`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum CapacitySub {
    /// The seed's scaling roadmap (launch, growth, enterprise) next to the model's plan
    Roadmap {
        /// Size a cluster for this many users instead, on each built-in machine (or --machine)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=MAX_USERS))]
        users: Option<u64>,
        /// The model's options; `--machine` plans every phase on that machine.
        #[command(flatten)]
        opts: Opts,
    },
    /// Every quantitative claim of the seed: holds or not, and why
    CheckSeed {
        /// The model's options (`--machine` is refused: the seed's claims name their machines).
        #[command(flatten)]
        opts: Opts,
    },
    /// The seed's idle-cost table: Docker per tenant vs scale-to-zero
    Compare {
        /// Tenants to host
        #[arg(long, value_name = "N", default_value_t = crate::claims::COMPARE_TENANTS,
              value_parser = clap::value_parser!(u64).range(1..=MAX_USERS))]
        tenants: u64,
        /// The model's options.
        #[command(flatten)]
        opts: Opts,
    },
    /// The formulas with the numbers substituted, and what would change the verdict
    Explain {
        /// The model's options.
        #[command(flatten)]
        opts: Opts,
    },
    /// List the built-in profiles, or show one with every field's unit and source
    Profiles {
        /// A built-in profile name, or a TOML file (shown after loading)
        name: Option<String>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// What a command produced: the report, and the SVG document if `--svg` was given.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Text for stdout.
    pub stdout: String,
    /// The SVG document and the file it goes to.
    pub svg: Option<(PathBuf, String)>,
}

/// Runs `tenantd capacity`: prints the report and writes the chart; errors are user-facing
/// (bad profile, bad flag value, unwritable SVG file).
pub fn run(cmd: CapacityCmd) -> anyhow::Result<()> {
    let out = output(&cmd)?;
    print!("{}", out.stdout);
    if let Some((path, svg)) = out.svg {
        std::fs::write(&path, svg)
            .with_context(|| format!("cannot write chart to {}", path.display()))?;
        eprintln!("wrote chart to {}", path.display());
    }
    Ok(())
}

fn machine(opts: &Opts) -> anyhow::Result<MachineProfile> {
    let spec = opts.machine.as_deref().unwrap_or(DEFAULT_MACHINE);
    Ok(load::load_machine(spec)?)
}

fn workload(opts: &Opts) -> anyhow::Result<WorkloadProfile> {
    let spec = opts.workload.as_deref().unwrap_or(DEFAULT_WORKLOAD);
    let mut w = load::load_workload(spec)?;
    let overrides = [
        ("retention_years", opts.years, "--years"),
        ("price_usd_per_tenant_month", opts.price, "--price"),
        ("headroom_fraction", opts.headroom, "--headroom"),
    ];
    for (field, value, flag) in overrides {
        if let Some(v) = value {
            w.override_field(field, v, &format!("command line {flag}"))
                .map_err(anyhow::Error::msg)?;
            w.validate()
                .with_context(|| format!("invalid {flag} {v}"))?;
        }
    }
    Ok(w)
}

fn json_text(value: serde_json::Value) -> anyhow::Result<String> {
    Ok(render::json::to_text(value)?)
}

/// Computes a command's output without printing it; the same errors as [`run`].
pub fn output(cmd: &CapacityCmd) -> anyhow::Result<Output> {
    let outer = &cmd.opts;
    let opts = match &cmd.command {
        None => outer.clone(),
        Some(CapacitySub::Profiles { .. }) => {
            if let Some(flag) = outer.set_flags().first() {
                bail!(
                    "{flag} does not apply to `profiles`: it lists the built-in profiles, or \
                     shows the one named (`tenantd capacity profiles NAME|FILE`)"
                );
            }
            outer.clone()
        }
        Some(
            CapacitySub::Roadmap { opts, .. }
            | CapacitySub::CheckSeed { opts }
            | CapacitySub::Compare { opts, .. }
            | CapacitySub::Explain { opts },
        ) => opts.or(outer),
    };
    let opts = &opts;
    let target_margin = opts.target_margin();
    if !(0.0..1.0).contains(&target_margin) {
        bail!("--target-margin must be at least 0 and below 1, got {target_margin}");
    }
    let format = opts.format();
    let stdout = match &cmd.command {
        None => {
            let (m, w) = (machine(opts)?, workload(opts)?);
            let c = evaluate(&m, &w);
            let e = economics(&m, &w, &c, target_margin);
            match format {
                Format::Json => json_text(json!({
                    "machine": m, "workload": w, "capacity": c, "economics": e
                }))?,
                f => render::blocks(&report::launch(&m, &w, &c, &e), f),
            }
        }
        Some(CapacitySub::Roadmap { users: None, .. }) => {
            let w = workload(opts)?;
            // `--machine` plans every phase on that machine; the seed's column is unchanged.
            let rows = match &opts.machine {
                Some(_) => {
                    let m = machine(opts)?;
                    seed_roadmap(&w, |_| anyhow::Ok(m.clone()))?
                }
                None => seed_roadmap(&w, builtin::machine)?,
            };
            match format {
                Format::Json => json_text(json!({
                    "workload": w.meta.name, "machine": opts.machine, "phases": rows
                }))?,
                f => render::blocks(&report::roadmap(&w, &rows), f),
            }
        }
        Some(CapacitySub::Roadmap {
            users: Some(users), ..
        }) => {
            let w = workload(opts)?;
            let machines = chart_machines(opts)?;
            let plans: Vec<_> = machines
                .iter()
                .map(|m| plan("target", *users, m, &w))
                .collect();
            match format {
                Format::Json => json_text(json!({ "users": users, "plans": plans }))?,
                f => render::blocks(&report::sizing(&w, &plans), f),
            }
        }
        Some(CapacitySub::CheckSeed { .. }) => {
            if opts.machine.is_some() {
                bail!("check-seed checks the seed's own machines; --machine does not apply");
            }
            let w = workload(opts)?;
            let claims = check_seed(&SeedCase::with_workload(w.clone())?);
            match format {
                Format::Json => json_text(json!({ "workload": w.meta.name, "claims": claims }))?,
                Format::Markdown => {
                    render::blocks(&report::check_seed(&w, &claims, true), Format::Markdown)
                }
                Format::Text => {
                    render::blocks(&report::check_seed(&w, &claims, false), Format::Text)
                }
            }
        }
        Some(CapacitySub::Compare { tenants, .. }) => {
            let (m, w) = (machine(opts)?, workload(opts)?);
            let docker = builtin::workload("docker-per-tenant")?;
            let rows = compare(&m, &[&docker, &w], *tenants);
            match format {
                Format::Json => json_text(json!({ "rows": rows }))?,
                f => render::blocks(&report::compare(&rows), f),
            }
        }
        Some(CapacitySub::Explain { .. }) => {
            let (m, w) = (machine(opts)?, workload(opts)?);
            let steps = explain(&m, &w, target_margin);
            let crossovers = sensitivity(&m, &w);
            match format {
                Format::Json => json_text(json!({ "steps": steps, "sensitivity": crossovers }))?,
                f => render::blocks(&report::explain(&m, &w, &steps, &crossovers), f),
            }
        }
        Some(CapacitySub::Profiles { name, format }) => {
            let format = opts.format.unwrap_or(*format);
            return Ok(Output {
                stdout: profiles(name.as_deref(), format)?,
                svg: None,
            });
        }
    };
    let svg = match &opts.svg {
        None => None,
        Some(path) => Some((path.clone(), chart(opts)?)),
    };
    Ok(Output { stdout, svg })
}

fn profiles(name: Option<&str>, format: Format) -> anyhow::Result<String> {
    let Some(name) = name else {
        return Ok(match format {
            Format::Json => json_text(json!({
                "machines": builtin::names("machine"),
                "workloads": builtin::names("workload"),
            }))?,
            f => render::blocks(&report::profile_list(), f),
        });
    };
    let is_machine = builtin::text("machine", name).is_some()
        || (builtin::text("workload", name).is_none() && looks_like_machine_file(name));
    if is_machine {
        let m = load::load_machine(name)?;
        return Ok(match format {
            Format::Json => json_text(json!(m))?,
            f => render::blocks(&report::profile_detail(&m), f),
        });
    }
    let w = load::load_workload(name)?;
    Ok(match format {
        Format::Json => json_text(json!(w))?,
        f => render::blocks(&report::profile_detail(&w), f),
    })
}

/// A file is shown as a machine profile if it sets a machine-only field.
fn looks_like_machine_file(path: &str) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .is_some_and(|t| {
            MachineProfile::fields()
                .iter()
                .any(|f| t.contains_key(f.name))
        })
}

/// The machines a cost chart or `--users` sizing covers: `--machine` alone, or every built-in.
fn chart_machines(opts: &Opts) -> anyhow::Result<Vec<MachineProfile>> {
    match &opts.machine {
        Some(spec) => Ok(vec![load::load_machine(spec)?]),
        None => builtin::MACHINES
            .iter()
            .map(|(name, _)| builtin::machine(name).map_err(Into::into))
            .collect(),
    }
}

fn chart(opts: &Opts) -> anyhow::Result<String> {
    let (m, w) = (machine(opts)?, workload(opts)?);
    let horizon = w.retention_years.max(1.0) * 10.0;
    let retention = retention_curve(&m, &w, horizon.min(100.0), 80);
    let users = log_spaced(1_000, 10_000_000, 40);
    let mut machines = chart_machines(opts)?;
    if opts.machine.is_none() {
        machines.retain(|x| x.meta.name != m.meta.name);
        machines.insert(0, m.clone());
    }
    let costs = cost_curves(&machines, &w, &users);
    let title = format!("{} under `{}`", m.meta.name, w.meta.name);
    Ok(svg::charts(&title, &retention, &costs, &SEED_ROADMAP)?)
}
