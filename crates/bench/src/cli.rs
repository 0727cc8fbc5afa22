//! `tenantd bench`: command-line front end. Flags become a validated [`Provision`] in one step
//! ([`ProvisionArgs::resolve`]); `load` is in `load_cmd.rs`, the calibration scenarios in
//! `calibrate_cmd.rs`.

use std::path::PathBuf;

use store::{Durability, Locking};

use crate::calibrate_cmd::{self, ColdArgs, CpuArgs, DiskArgs, IdleArgs, InflightArgs};
use crate::coldopen::{self, ColdOpen};
use crate::coldopen_report as report;
use crate::coldopen_variants::{self as variants, Variant};
use crate::load_cmd::{self, LoadArgs};
use crate::names::{NameSet, DEFAULT_PREFIX, DEFAULT_WIDTH};
use crate::provision::{self, Provision};
use crate::template::Layout;

/// What `tenantd bench` does, shown under its help; names every subcommand (a test holds it to
/// that).
const AFTER_HELP: &str = "\
`tenantd bench load` drives a server (our own tenantd on a temporary data dir, or --url) with \
webhooks, SQL point reads, SQL writes, a mix, or plain GETs, closed loop or at a fixed rate, \
and reports throughput, latency (HDR) and the server's RSS, CPU, fds, open tenants and disk, \
as text and JSON. The calibration scenarios each start fresh servers and write what they \
measured into a workload and a machine profile for `tenantd capacity`: `tenantd bench idle` \
(RSS and fds of idle tenants), `tenantd bench inflight` (RAM per in-flight operation), \
`tenantd bench cpu` (CPU per request, warm and cold), `tenantd bench disk` (bytes per tenant \
and per event, the disk's sync rate), `tenantd bench cold` (cold vs warm latency, the cold \
fraction next to the model's); `tenantd prove` runs them all and gives the verdict. `tenantd \
bench provision` pre-creates tenant files; `tenantd bench cold-open` measures one cold tenant \
(open + insert + close) in-process. The scripts in bench/ run the side-by-side comparisons. \
See docs/BENCHMARKS.md and docs/PROVE.md.";

/// Arguments of `tenantd bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct BenchCmd {
    #[command(subcommand)]
    cmd: BenchSub,
}

#[derive(Debug, clap::Subcommand)]
enum BenchSub {
    /// Pre-create N tenant files fast (copies of one template), for load runs.
    Provision(ProvisionArgs),
    /// CPU per cold tenant (open + one insert + close), per variant of the open.
    ColdOpen(ColdOpenArgs),
    /// Drive a server with load (our own tenantd by default) and report what it held.
    Load(Box<LoadArgs>),
    /// Calibration: RSS and fds with 0 and N idle tenants, and after touching all of them.
    Idle(IdleArgs),
    /// Calibration: peak RSS over concurrency levels; the slope is RAM per in-flight op.
    Inflight(InflightArgs),
    /// Calibration: server CPU per request, warm and cold, per workload.
    Cpu(CpuArgs),
    /// Calibration: bytes per new tenant and per stored event; the disk's sync rate.
    Disk(DiskArgs),
    /// Calibration: cold vs warm latency, and the cold fraction next to the model's.
    Cold(ColdArgs),
}

/// Flags of `tenantd bench cold-open`.
#[derive(Debug, Clone, clap::Args)]
pub struct ColdOpenArgs {
    /// Scratch directory (a fresh subdirectory of provisioned files per run, removed after).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Tenants per run, each opened once.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub count: u64,
    /// Variant to run (repeatable; default: all).
    #[arg(long, value_enum)]
    pub variant: Vec<Variant>,
    /// Durability mode (repeatable; default: fsync and crash).
    #[arg(long)]
    pub durability: Vec<Durability>,
    /// Locking mode of the pool's own open (`tenantd`, `fast-close`; the piece-by-piece
    /// variants set their own): "exclusive" or "shared" [default: the pool's default].
    #[arg(long, value_name = "MODE")]
    pub locking: Option<Locking>,
    /// Runs of each variant and mode.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub repeat: u32,
    /// Other tenants kept open during the loop.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub hold: u64,
    /// DIR already holds the tenant files (`tenantd bench provision`, the variant's layout):
    /// use them as they are, for one variant, one mode, one run (for strace/perf).
    #[arg(long)]
    pub prepared: bool,
    /// Also write the samples and summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

impl ColdOpenArgs {
    /// Validates the flags; errors name the bad flag.
    pub fn resolve(self) -> anyhow::Result<ColdOpen> {
        let variants = if self.variant.is_empty() {
            variants::ALL.to_vec()
        } else {
            self.variant
        };
        let modes = if self.durability.is_empty() {
            vec![Durability::Fsync, Durability::Crash]
        } else {
            self.durability
        };
        if self.count == 0 || self.repeat == 0 {
            anyhow::bail!("--count and --repeat must be at least 1");
        }
        if self.prepared {
            let one_mode = modes.len() == 1 || variants.iter().all(|v| !v.uses_durability());
            if variants.len() != 1 || !one_mode || self.repeat != 1 {
                anyhow::bail!("--prepared runs one --variant in one --durability with --repeat 1");
            }
            if variants[0].needs_prepass() {
                anyhow::bail!(
                    "--prepared cannot run {}: it prepares its own files",
                    variants[0].as_str()
                );
            }
        }
        Ok(ColdOpen {
            dir: self.dir,
            count: self.count,
            variants,
            modes,
            repeat: self.repeat,
            locking: self.locking.unwrap_or(store::config::DEFAULT_LOCKING),
            hold: self.hold,
            prepared: self.prepared,
        })
    }
}

/// Flags of `tenantd bench provision`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProvisionArgs {
    /// Data directory of the server under test.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Number of tenants: {prefix}00000 … {prefix}{count-1}.
    #[arg(long, value_name = "N")]
    pub count: u64,
    /// Tenant name prefix (the wrk script's `PREFIX`).
    #[arg(long, default_value = DEFAULT_PREFIX)]
    pub prefix: String,
    /// Digits after the prefix (the wrk script formats `%05d`).
    #[arg(long, default_value_t = DEFAULT_WIDTH)]
    pub width: u32,
    /// `tenantd`: tenantd's layout and schema; `flat`: `<data>/<tenant>.db` for the baseline server (bench/baseline).
    #[arg(long, value_enum, default_value_t = Layout::Tenantd)]
    pub layout: Layout,
    /// Writer threads (default: available CPUs).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

impl ProvisionArgs {
    /// Validates the flags into a provisioning request; errors name the bad flag.
    pub fn resolve(self) -> anyhow::Result<Provision> {
        let names = NameSet::new(&self.prefix, self.width, self.count)?;
        let jobs = match self.jobs {
            Some(0) => anyhow::bail!("--jobs must be at least 1"),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Ok(Provision {
            data_dir: self.data,
            names,
            layout: self.layout,
            jobs,
        })
    }
}

/// Runs `tenantd bench`; errors are user-facing.
pub fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    match cmd.cmd {
        BenchSub::Provision(args) => {
            let p = args.resolve()?;
            let r = provision::run(&p)?;
            println!(
                "provisioned {} tenant files ({} layout, {} bytes each) under {} in {:.2} s",
                r.files,
                p.layout.as_str(),
                r.file_bytes,
                p.data_dir.display(),
                r.elapsed.as_secs_f64()
            );
            if p.layout == Layout::Tenantd {
                // The server would build its catalog at first start; do it here, outside any
                // measurement.
                let (tenants, took) = provision::build_catalog(&p.data_dir)?;
                println!(
                    "catalog.db built from {tenants} tenant files in {:.2} s",
                    took.as_secs_f64()
                );
            }
            Ok(())
        }
        BenchSub::Load(args) => load_cmd::run(*args),
        BenchSub::Idle(args) => calibrate_cmd::idle(args),
        BenchSub::Inflight(args) => calibrate_cmd::inflight(args),
        BenchSub::Cpu(args) => calibrate_cmd::cpu(args),
        BenchSub::Disk(args) => calibrate_cmd::disk(args),
        BenchSub::Cold(args) => calibrate_cmd::cold(args),
        BenchSub::ColdOpen(args) => {
            let b = args.clone().resolve()?;
            let samples = coldopen::run(&b, |s| println!("{}", report::sample_line(s)))?;
            let rows = report::summarize(&samples);
            println!(
                "\n{} tenants per run, {} other tenants held open",
                b.count, b.hold
            );
            print!("{}", report::table(&rows));
            if let Some(path) = &args.json {
                std::fs::write(path, report::json(&b, &samples, &rows))
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Top {
        #[command(subcommand)]
        cmd: BenchSub,
    }

    fn parse(args: &[&str]) -> ProvisionArgs {
        let mut argv = vec!["bench"];
        argv.extend_from_slice(args);
        match Top::try_parse_from(argv).unwrap().cmd {
            BenchSub::Provision(a) => a,
            _ => panic!("not a provision command"),
        }
    }

    #[test]
    fn regression_bench_help_said_it_measures_nothing_once_load_existed() {
        #[derive(Parser)]
        enum Cli {
            Bench(BenchCmd),
        }
        use clap::CommandFactory;
        let mut cli = Cli::command();
        let bench = cli.find_subcommand_mut("bench").unwrap();
        let subcommands: Vec<String> = bench
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .filter(|n| n != "help")
            .collect();
        let help = bench.render_help().to_string();
        assert!(!help.contains("only prepares"), "{help}");
        for sub in &subcommands {
            assert!(
                help.contains(&format!("`tenantd bench {sub}")),
                "{sub} missing: {help}"
            );
        }
        assert!(subcommands.iter().any(|s| s == "load"), "{subcommands:?}");
    }

    #[test]
    fn defaults_match_the_wrk_script() {
        let p = parse(&["provision", "--data", "/d", "--count", "3"])
            .resolve()
            .unwrap();
        assert_eq!(p.layout, Layout::Tenantd);
        assert_eq!(p.names.name(2).as_str(), "tenant00002");
        assert!(p.jobs >= 1);
    }

    #[test]
    fn flat_layout_and_bad_flags() {
        let a = parse(&[
            "provision",
            "--data",
            "/d",
            "--count",
            "2",
            "--layout",
            "flat",
            "--jobs",
            "1",
        ]);
        assert_eq!(a.layout, Layout::Flat);
        assert_eq!(a.clone().resolve().unwrap().jobs, 1);
        let zero_jobs = ProvisionArgs {
            jobs: Some(0),
            ..a.clone()
        };
        assert!(zero_jobs.resolve().is_err());
        let too_many = ProvisionArgs {
            count: 100_001,
            ..a
        };
        assert!(too_many.resolve().is_err());
    }
}
