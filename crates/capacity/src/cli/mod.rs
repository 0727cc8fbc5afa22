//! `tenantd capacity`: flags in, one report out. Parses and loads (profiles, overrides), asks
//! the model, hands the result to a renderer. Errors are user-facing, via anyhow. The flags
//! themselves are in `args`.

mod args;

use std::path::PathBuf;

use anyhow::{bail, Context};
use serde_json::json;

pub use args::{
    CapacityCmd, CapacitySub, Opts, DEFAULT_MACHINE, DEFAULT_TARGET_MARGIN, DEFAULT_WORKLOAD,
    MAX_USERS,
};

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
            let (rows, planned_on) = match &opts.machine {
                Some(_) => {
                    let m = machine(opts)?;
                    let rows = seed_roadmap(&w, |_| anyhow::Ok(m.clone()))?;
                    (rows, Some(m.meta.name))
                }
                None => (seed_roadmap(&w, builtin::machine)?, None),
            };
            match format {
                // `machine`: the one every phase is planned on, or null for the seed's own.
                Format::Json => json_text(json!({
                    "workload": w.meta.name, "provenance": w.meta.provenance, "machine": planned_on,
                    "phases": rows
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
                Format::Json => json_text(json!({
                    "workload": w.meta.name, "provenance": w.meta.provenance, "claims": claims
                }))?,
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
