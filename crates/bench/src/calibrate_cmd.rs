//! `tenantd bench idle|inflight|cpu|disk|cold`: one calibration scenario from the command
//! line. Prints what it saw and merges the fields it measured into a workload profile and a
//! machine profile (TOML, with provenance) that `tenantd capacity` reads; `tenantd prove`
//! runs them all.

use std::path::PathBuf;
use std::time::Duration;

use capacity::profile_file::update_profile_file;
use capacity::{MachineProfile, WorkloadProfile};
use loadgen::workload::Workload;
use store::Durability;

use crate::calibrate::{self, Context, Outcome};

/// Where the scenarios run: flags shared by every scenario and `tenantd prove`.
#[derive(Debug, Clone, clap::Args)]
pub struct HostArgs {
    /// Where the servers' temporary data directories go; its disk is the one measured
    /// [default: the system's temporary directory].
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
    /// Load generator threads [default: available CPUs].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// CPUs this process may run on.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl HostArgs {
    /// The scratch directory.
    pub fn scratch(&self) -> PathBuf {
        self.scratch.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// The load generator's threads. Errors: `--threads 0`.
    pub fn threads(&self) -> anyhow::Result<usize> {
        match self.threads {
            Some(0) => anyhow::bail!("--threads must be at least 1"),
            Some(n) => Ok(n),
            None => Ok(available_cpus()),
        }
    }
}

/// Flags every scenario takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Durability mode of the servers the scenario starts.
    #[arg(long, default_value = "fsync")]
    pub durability: Durability,
    #[command(flatten)]
    host: HostArgs,
    /// Run the servers under this machine profile's CPU count and RAM (cgroup v1; root).
    #[arg(long, value_name = "NAME|FILE")]
    pub emulate: Option<String>,
    /// Workload profile to merge the measured workload fields into (created with
    /// `base = "seed"` when missing).
    #[arg(long, value_name = "FILE", default_value = "tenantd-workload.toml")]
    pub workload_out: PathBuf,
    /// Machine profile to merge the measured machine fields into (created with `base =
    /// "fly-shared-cpu-2x"` when missing).
    #[arg(long, value_name = "FILE", default_value = "tenantd-machine.toml")]
    pub machine_out: PathBuf,
    /// Also write everything the scenario saw as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// `tenantd bench idle`.
#[derive(Debug, Clone, clap::Args)]
pub struct IdleArgs {
    /// Idle tenant files.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub tenants: u64,
    #[command(flatten)]
    common: CommonArgs,
}

/// `tenantd bench inflight`.
#[derive(Debug, Clone, clap::Args)]
pub struct InflightArgs {
    /// Concurrency levels, comma-separated (each a fresh server with that many tenants).
    #[arg(long, value_delimiter = ',', default_value = "64,256,1024,4096")]
    pub levels: Vec<usize>,
    /// Load time per level.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub duration: Duration,
    /// Operation held in flight.
    #[arg(long, default_value = "sql-write")]
    pub workload: Workload,
    #[command(flatten)]
    common: CommonArgs,
}

/// `tenantd bench cpu`.
#[derive(Debug, Clone, clap::Args)]
pub struct CpuArgs {
    /// Workloads (repeatable; the first feeds the profile) [default: webhook, sql-read,
    /// sql-write].
    #[arg(long)]
    pub workload: Vec<Workload>,
    /// Load time per run (each workload: one warm and one cold run).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub duration: Duration,
    #[command(flatten)]
    common: CommonArgs,
}

/// `tenantd bench disk`.
#[derive(Debug, Clone, clap::Args)]
pub struct DiskArgs {
    /// Webhook events stored into one tenant.
    #[arg(long, value_name = "N", default_value_t = 5_000)]
    pub events: u64,
    /// Time spent measuring the disk's sync rate.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub sync_for: Duration,
    #[command(flatten)]
    common: CommonArgs,
}

/// `tenantd bench cold`.
#[derive(Debug, Clone, clap::Args)]
pub struct ColdArgs {
    /// A cold run as TENANTS:SKEW (Zipf exponent; 0 = uniform); repeatable [default:
    /// 5000:1.1 and 5000:0].
    #[arg(long = "case", value_name = "TENANTS:SKEW", value_parser = parse_case)]
    pub cases: Vec<(u64, f64)>,
    /// Load time per run.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub duration: Duration,
    #[command(flatten)]
    common: CommonArgs,
}

/// Parses `TENANTS:SKEW` (`10000:1.1`).
pub fn parse_case(s: &str) -> Result<(u64, f64), String> {
    let (t, k) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: expected TENANTS:SKEW, e.g. 10000:1.1"))?;
    let tenants: u64 = t
        .parse()
        .map_err(|_| format!("`{t}`: tenants must be a whole number"))?;
    let skew: f64 = k
        .parse()
        .map_err(|_| format!("`{k}`: skew must be a number (0 = uniform)"))?;
    if tenants == 0 || !(0.0..=5.0).contains(&skew) {
        return Err(format!(
            "`{s}`: tenants must be at least 1 and skew between 0 and 5"
        ));
    }
    Ok((tenants, skew))
}

impl CommonArgs {
    /// The scenario context. Errors: a machine profile to emulate that does not load, or a
    /// host that cannot emulate.
    pub fn context(&self) -> anyhow::Result<Context> {
        let emulate = match &self.emulate {
            Some(spec) => {
                let m = capacity::load::load_machine(spec)?;
                Some(crate::emulate::limits_for(&m, available_cpus()))
            }
            None => None,
        };
        Ok(Context {
            binary: std::env::current_exe()?,
            scratch: self.host.scratch(),
            durability: self.durability,
            threads: self.host.threads()?,
            emulate,
            verbose: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        })
    }

    /// Runs one scenario in this context, prints it and merges its fields into the profiles.
    fn run(
        &self,
        scenario: impl FnOnce(&Context) -> anyhow::Result<Outcome>,
    ) -> anyhow::Result<()> {
        let ctx = self.context()?;
        let o = scenario(&ctx)?;
        self.finish(&ctx, &o)
    }

    /// Prints the outcome and merges its fields into the profile files.
    pub fn finish(&self, ctx: &Context, o: &Outcome) -> anyhow::Result<()> {
        println!("tenantd bench {}:", o.scenario);
        for line in &o.summary {
            println!("  {line}");
        }
        let host = loadgen::machine::MachineInfo::detect(&ctx.scratch);
        let provenance = calibrate::provenance(
            &host,
            vec![o.scenario.clone()],
            ctx.emulate,
            self.emulate.as_deref(),
        );
        if !o.workload.is_empty() {
            update_profile_file::<WorkloadProfile>(
                &self.workload_out,
                "seed",
                "measured",
                "the seed's workload with the inputs tenantd bench measured",
                &o.workload,
                &provenance,
            )?;
            println!(
                "  → {} ({} fields)",
                self.workload_out.display(),
                o.workload.len()
            );
        }
        if !o.machine.is_empty() {
            update_profile_file::<MachineProfile>(
                &self.machine_out,
                "fly-shared-cpu-2x",
                "measured",
                "fly-shared-cpu-2x with the values tenantd bench measured on this host",
                &o.machine,
                &provenance,
            )?;
            println!(
                "  → {} ({} fields)",
                self.machine_out.display(),
                o.machine.len()
            );
        }
        if let Some(path) = &self.json {
            std::fs::write(path, serde_json::to_string_pretty(o)?)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

/// Runs one scenario from its flags.
pub fn idle(a: IdleArgs) -> anyhow::Result<()> {
    let p = calibrate::idle::Idle { tenants: a.tenants };
    a.common.run(|ctx| calibrate::idle::run(ctx, p))
}

/// Runs one scenario from its flags.
pub fn inflight(a: InflightArgs) -> anyhow::Result<()> {
    if a.levels.len() < 2 || a.levels.contains(&0) {
        anyhow::bail!("--levels needs at least two concurrency levels, each at least 1");
    }
    let p = calibrate::inflight::Inflight {
        levels: a.levels,
        duration: a.duration,
        workload: a.workload,
    };
    a.common.run(|ctx| calibrate::inflight::run(ctx, &p))
}

/// Runs one scenario from its flags.
pub fn cpu(a: CpuArgs) -> anyhow::Result<()> {
    let workloads = if a.workload.is_empty() {
        vec![Workload::Webhook, Workload::SqlRead, Workload::SqlWrite]
    } else {
        a.workload
    };
    let p = calibrate::cpu::Cpu {
        workloads,
        duration: a.duration,
    };
    a.common.run(|ctx| calibrate::cpu::run(ctx, &p))
}

/// Runs one scenario from its flags.
pub fn disk(a: DiskArgs) -> anyhow::Result<()> {
    if a.events == 0 {
        anyhow::bail!("--events must be at least 1");
    }
    let p = calibrate::disk::Disk {
        events: a.events,
        sync_for: a.sync_for,
    };
    a.common.run(|ctx| calibrate::disk::run(ctx, p))
}

/// Runs one scenario from its flags.
pub fn cold(a: ColdArgs) -> anyhow::Result<()> {
    let cases = if a.cases.is_empty() {
        vec![(5_000, 1.1), (5_000, 0.0)]
    } else {
        a.cases
    };
    let p = calibrate::cold::Cold {
        cases,
        duration: a.duration,
    };
    a.common.run(|ctx| calibrate::cold::run(ctx, &p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_parse_and_bad_ones_say_why() {
        assert_eq!(parse_case("10000:1.1").unwrap(), (10_000, 1.1));
        assert_eq!(parse_case("5:0").unwrap(), (5, 0.0));
        assert!(parse_case("10000").unwrap_err().contains("TENANTS:SKEW"));
        assert!(parse_case("x:1").unwrap_err().contains("whole number"));
        assert!(parse_case("0:1").is_err());
        assert!(parse_case("10:9").is_err());
    }
}
