//! The flags of `tenantd capacity`: the model's options (accepted after `capacity` or after a
//! model subcommand), the subcommands, and the defaults and ranges they are checked against.

use std::path::PathBuf;

use crate::render::Format;

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
    pub(crate) fn or(&self, outer: &Opts) -> Opts {
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
    pub(crate) fn set_flags(&self) -> Vec<&'static str> {
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

    pub(crate) fn format(&self) -> Format {
        self.format.unwrap_or_default()
    }

    pub(crate) fn target_margin(&self) -> f64 {
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
