//! `tenantd bench`: command-line front end. Flags become a validated [`Provision`] in one step
//! ([`ProvisionArgs::resolve`]); the load runs are the scripts in `bench/`.

use std::path::PathBuf;

use crate::names::{NameSet, DEFAULT_PREFIX, DEFAULT_WIDTH};
use crate::provision::{self, Provision};
use crate::template::Layout;

/// What `tenantd bench` does today, shown under its help: it prepares data, it measures nothing.
const AFTER_HELP: &str = "\
`tenantd bench` only prepares tenant files. The measurements are scripts in bench/ that drive \
a running server with wrk: bench/run.sh (webhook ingest, tenantd vs the Bun seed) and \
bench/sql.sh (SQL point reads and writes through /v2/pipeline). Each refuses a run whose \
acknowledged writes are not all in the tenant files afterwards. See docs/BENCHMARKS.md.";

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
        }
    }

    #[test]
    fn regression_bench_help_promised_measuring_that_does_not_exist() {
        #[derive(Parser)]
        enum Cli {
            Bench(BenchCmd),
        }
        use clap::CommandFactory;
        let mut cli = Cli::command();
        let help = cli
            .find_subcommand_mut("bench")
            .unwrap()
            .render_help()
            .to_string();
        assert!(help.contains("only prepares tenant files"), "{help}");
        assert!(
            help.contains("bench/run.sh") && help.contains("bench/sql.sh"),
            "{help}"
        );
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
