//! `tenantd prove`: the flags, validated into a [`Prove`] in one step, and the run.

use std::path::PathBuf;
use std::time::Duration;

use store::Durability;

use crate::calibrate_cmd::HostArgs;
use crate::prove::{self, Prove};

const AFTER_HELP: &str = "\
Runs the calibration scenarios (`tenantd bench disk|idle|inflight|cpu|cold`) against servers it \
starts on this machine, writes what they measured into a workload and a machine profile, and \
prints the seed's launch case next to the measured one: each input, each limit, the binding \
constraint, the verdict, and the road to 1,000,000 users. The report folder holds report.md, \
capacity.svg, inflight.svg, raw.json, workload.toml and machine.toml. Business inputs \
(requests per tenant, price) are not measured: they come from --workload (default: the seed's \
implied values) or the flags above, and the report lists them as assumed.";

/// Flags of `tenantd prove`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct ProveArgs {
    /// The machine you rent: a built-in profile or a TOML file (`tenantd capacity profiles`).
    #[arg(long, value_name = "NAME|FILE", default_value = "fly-shared-cpu-2x")]
    pub machine: String,
    /// Workload profile the business inputs come from.
    #[arg(long, value_name = "NAME|FILE", default_value = "seed")]
    pub workload: String,
    /// Requests per tenant per day (a business input; overrides the workload's).
    #[arg(long, value_name = "N")]
    pub requests_per_tenant_per_day: Option<f64>,
    /// Price per tenant per month, USD (a business input; overrides the workload's).
    #[arg(long, value_name = "USD")]
    pub price: Option<f64>,
    /// Durability mode the verdict is for (the CPU scenario also runs the other one).
    #[arg(long, default_value = "fsync")]
    pub durability: Durability,
    /// Time budget of the calibration.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    pub budget: Duration,
    /// Quick calibration: under a minute, fewer sizes, one mode.
    #[arg(long)]
    pub quick: bool,
    /// Run the servers under the machine profile's vCPUs and RAM (cgroup v1 cpu and memory
    /// controllers; needs root) so this host answers for a smaller one.
    #[arg(long)]
    pub emulate: bool,
    /// Report folder [default: tenantd-prove-<UTC date and time>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    host: HostArgs,
    /// Gross margin the report prices for, as a fraction.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.8)]
    pub target_margin: f64,
}

impl ProveArgs {
    /// Validates the flags; errors name the bad flag.
    pub fn resolve(self) -> anyhow::Result<Prove> {
        let budget = if self.quick {
            self.budget.min(Duration::from_secs(55))
        } else {
            self.budget
        };
        if budget < Duration::from_secs(10) {
            anyhow::bail!("--budget must be at least 10s, got {budget:?}");
        }
        if !(0.0..1.0).contains(&self.target_margin) {
            anyhow::bail!("--target-margin must be at least 0 and below 1");
        }
        let mut business = Vec::new();
        if let Some(n) = self.requests_per_tenant_per_day {
            business.push(("requests_per_tenant_per_day".to_string(), n));
        }
        if let Some(usd) = self.price {
            business.push(("price_usd_per_tenant_month".to_string(), usd));
        }
        let threads = self.host.threads()?;
        let stamp = prove::report::now_rfc3339().replace([':', '-'], "");
        Ok(Prove {
            machine: self.machine,
            workload: self.workload,
            business,
            durability: self.durability,
            budget,
            quick: self.quick,
            emulate: self.emulate,
            out: self
                .out
                .unwrap_or_else(|| PathBuf::from(format!("tenantd-prove-{stamp}"))),
            scratch: self.host.scratch(),
            threads,
            binary: std::env::current_exe()?,
            target_margin: self.target_margin,
            verbose: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        })
    }
}

/// Runs `tenantd prove`; prints the report; fails when a scenario failed (after writing it).
pub fn run(args: ProveArgs) -> anyhow::Result<()> {
    let p = args.resolve()?;
    let proved = prove::run(&p)?;
    print!("{}", proved.text);
    println!("\nreport: {}", proved.out.join("report.md").display());
    if !proved.failed.is_empty() {
        let names: Vec<&str> = proved.failed.iter().map(|(s, _)| s.as_str()).collect();
        anyhow::bail!(
            "incomplete: scenario(s) {} failed (see the report's \"Not measured\")",
            names.join(", ")
        );
    }
    Ok(())
}
