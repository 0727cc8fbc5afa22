//! `tenantd bench load`: flags → a validated [`LoadPlan`] in one step ([`LoadArgs::resolve`]),
//! then the run: our own tenantd (provisioned, kv schema for SQL workloads) unless `--url`
//! names a server, the load through `loadgen`, a progress bar on a terminal, the text summary
//! and the JSON report.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use loadgen::machine::MachineInfo;
use loadgen::report::Report;
use loadgen::sample::Sampler;
use loadgen::template::PathTemplate;
use loadgen::url::HttpUrl;
use loadgen::workload::Workload;
use loadgen::zipf::Chooser;
use loadgen::{Names, Pace, Spec};
use store::Durability;

use crate::names::{NameSet, DEFAULT_PREFIX, DEFAULT_WIDTH};
use crate::server::{LocalServer, ServerSpec, DEFAULT_ADMIN_TOKEN};

/// Shown under `tenantd bench load --help`.
pub const LOAD_HELP: &str = "\
Without --url, starts its own tenantd on 127.0.0.1 (a temporary data dir unless --data), \
provisions --tenants tenants (with the kv table of bench/sql/0001_kv.sql for SQL workloads), \
drives it, samples its RSS, CPU, fds, open tenants and disk from /proc, and stops it. With \
--url, drives that server instead (any host: naming it is the consent); sample it with --pid \
(same machine) or --metrics URL (Prometheus process_* metrics).

Workloads send what bench/wrk/*.lua send: webhook (POST a ~300-byte JSON to \
/t/{tenant}/hooks/bench), sql-read and sql-write (a Hrana pipeline to /t/{tenant}/v2/pipeline: \
a point read, or a 100-byte upsert that changes stored bytes), mixed or mixed:W:R:X, get (GET \
/healthz: the load generator's own ceiling). A --url path with {tenant} replaces the \
workload's path, e.g. --url 'http://127.0.0.1:3000/t/{tenant}/webhook'.

Closed loop by default (--concurrency connections, each waits for its answer); --rate R is an \
open loop: request i is due at i/R seconds, latency counts from that time even when the \
connection was busy (no coordinated omission), and requests sent late are reported. Runs stop \
at --duration or --requests, whichever comes first.";

/// Flags of `tenantd bench load`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = LOAD_HELP)]
pub struct LoadArgs {
    /// Server to drive: a base URL, or a template with {tenant} [default: start our own tenantd].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// webhook, sql-read, sql-write, mixed, mixed:W:R:X or get.
    #[arg(long, default_value = "webhook", value_name = "NAME")]
    pub workload: Workload,
    /// Tenants the requests are spread over (and that our own server gets).
    #[arg(long, value_name = "T", default_value_t = 1000)]
    pub tenants: u64,
    /// Tenant choice: zipf or uniform.
    #[arg(long, value_enum, default_value_t = Dist::Zipf)]
    pub dist: Dist,
    /// Zipf exponent.
    #[arg(long, value_name = "S", default_value_t = 1.1)]
    pub zipf_s: f64,
    /// Closed loop: connections, each sending its next request when the last is answered
    /// [default: 64].
    #[arg(long, value_name = "C", conflicts_with = "rate")]
    pub concurrency: Option<usize>,
    /// Open loop: requests per second, whatever the server does.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Open loop: connections the requests are spread over [default: 64].
    #[arg(long, value_name = "N", requires = "rate")]
    pub connections: Option<usize>,
    /// How long to send (e.g. 10s, 500ms, 2m).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Stop after this many requests.
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,
    /// Client threads [default: half the CPUs, at least 1].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Bearer token of the SQL workloads [default with our own server: its admin token].
    #[arg(long, env = "TENANTD_BENCH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Sample this local process (a server we did not start).
    #[arg(long, value_name = "PID", conflicts_with = "metrics")]
    pub pid: Option<u32>,
    /// Sample this Prometheus endpoint (a server we did not start).
    #[arg(long, value_name = "URL")]
    pub metrics: Option<String>,
    /// Also write the report as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Tenant name prefix.
    #[arg(long, default_value = DEFAULT_PREFIX)]
    pub prefix: String,
    /// Digits after the prefix.
    #[arg(long, default_value_t = DEFAULT_WIDTH)]
    pub width: u32,
    /// Our own server: durability mode (fsync or crash).
    #[arg(long, default_value = "fsync")]
    pub durability: Durability,
    /// Our own server: data directory (must hold no tenants yet) [default: a temporary one];
    /// with --pid: the server's data directory, for bytes on disk.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Our own server: one more `tenantd serve` flag (repeatable), e.g. --serve-arg=--max-open=256.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub serve_arg: Vec<String>,
    /// Seed of the random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Server sampling period.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub sample_every: Duration,
}

/// Tenant distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dist {
    /// Zipf(s): rank k has weight k^-s.
    Zipf,
    /// Every tenant equally likely.
    Uniform,
}

/// A validated `bench load`: the load (its address is filled once the server is known) and,
/// without --url, the server to start.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// The load.
    pub spec: Spec,
    /// Start this server first (`spec.addr`, `host`, `token` and the sampler come from it).
    pub own_server: Option<ServerSpec>,
    /// The target as shown in the report.
    pub target: String,
    /// Where to write JSON.
    pub json: Option<PathBuf>,
}

impl LoadArgs {
    /// Validates the flags; errors name the bad flag and say what to give instead.
    pub fn resolve(self) -> anyhow::Result<LoadPlan> {
        NameSet::new(&self.prefix, self.width, self.tenants)?;
        let chooser = match self.dist {
            Dist::Zipf => Chooser::zipf(self.tenants, self.zipf_s),
            Dist::Uniform => Chooser::uniform(self.tenants),
        }
        .map_err(|e| anyhow::anyhow!("--tenants/--zipf-s: {e}"))?;
        let pace = match (self.rate, self.concurrency) {
            (Some(rate), _) => {
                if !(rate.is_finite() && rate > 0.0) {
                    bail!("--rate must be a number of requests per second above 0");
                }
                Pace::Open {
                    rate_per_second: rate,
                    connections: self.connections.unwrap_or(64),
                }
            }
            (None, c) => Pace::Closed {
                concurrency: c.unwrap_or(64),
            },
        };
        if pace.connections() == 0 {
            bail!("--concurrency and --connections must be at least 1");
        }
        if self.threads == Some(0) {
            bail!("--threads must be at least 1");
        }
        if self.duration.is_zero() && self.requests.is_none() {
            bail!("--duration must be above 0 (or give --requests)");
        }
        if self.requests == Some(0) {
            bail!("--requests must be at least 1");
        }
        let threads = self.threads.unwrap_or_else(|| {
            (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2).max(1)
        });
        let placeholder: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
        let mut spec = Spec::new(placeholder, self.workload);
        spec.chooser = chooser;
        spec.names = Names::Numbered {
            prefix: self.prefix.clone(),
            width: self.width,
        };
        spec.pace = pace;
        spec.duration = self.duration;
        spec.max_requests = self.requests;
        spec.threads = threads;
        spec.seed = self.seed;
        spec.sample_every = self.sample_every;
        spec.token = self.token.clone();

        let (own_server, target) = match &self.url {
            Some(url) => {
                let u = HttpUrl::parse(url)?;
                spec.addr = u.resolve()?;
                spec.host = u.host_header();
                apply_url_path(&mut spec, &u.path)?;
                spec.sampler = match (self.pid, &self.metrics) {
                    (Some(pid), _) => Some(Sampler::Local {
                        pid,
                        data_dir: self.data.clone(),
                    }),
                    (None, Some(m)) => {
                        HttpUrl::parse(m).context("--metrics")?;
                        Some(Sampler::Remote {
                            metrics_url: m.clone(),
                        })
                    }
                    (None, None) => None,
                };
                if !self.serve_arg.is_empty() {
                    bail!("--serve-arg configures our own server: it cannot be used with --url");
                }
                (None, url.clone())
            }
            None => {
                if self.pid.is_some() || self.metrics.is_some() {
                    bail!("--pid and --metrics sample a server given with --url; our own server is sampled already");
                }
                let mut server = ServerSpec::new(if self.workload.uses_tenants() {
                    self.tenants
                } else {
                    0
                })?;
                server.data_dir = self.data.clone();
                server.durability = self.durability;
                server.prefix = self.prefix.clone();
                server.width = self.width;
                server.kv_schema = self.workload.needs_sql_schema();
                server.extra_args = self.serve_arg.clone();
                server.admin_token = DEFAULT_ADMIN_TOKEN.into();
                if spec.token.is_none() {
                    spec.token = Some(server.admin_token.clone());
                }
                let target = format!(
                    "our own tenantd ({} durability, {} tenants)",
                    match self.durability {
                        Durability::Fsync => "fsync",
                        Durability::Crash => "crash",
                    },
                    server.tenants
                );
                (Some(server), target)
            }
        };
        if spec.workload.needs_token() && spec.token.is_none() {
            bail!("SQL workloads need --token (a tenant or admin token of the server at --url)");
        }
        Ok(LoadPlan {
            spec,
            own_server,
            target,
            json: self.json,
        })
    }
}

/// A --url path: `/` keeps the defaults; with {tenant} it replaces the workload's tenant
/// path; without, it is the `get` workload's path.
fn apply_url_path(spec: &mut Spec, path: &str) -> anyhow::Result<()> {
    if path == "/" {
        return Ok(());
    }
    if path.contains(loadgen::template::PLACEHOLDER) {
        let t = PathTemplate::parse(path)?;
        match spec.workload {
            Workload::Webhook => spec.webhook_path = t,
            Workload::SqlRead | Workload::SqlWrite | Workload::SqlPing => spec.sql_path = t,
            Workload::Mixed { .. } | Workload::Get => {
                bail!("a --url with {{tenant}} sets one path: use it with webhook, sql-read, sql-write or sql-ping, or give a base URL")
            }
        }
    } else if spec.workload == Workload::Get {
        spec.get_path = path.to_owned();
    } else {
        bail!("--url path {path:?} has no {{tenant}}: give a base URL (http://HOST:PORT) or a template such as /t/{{tenant}}/hooks/bench");
    }
    Ok(())
}

/// Runs `tenantd bench load`; errors are user-facing.
pub fn run(args: LoadArgs) -> anyhow::Result<()> {
    let plan = args.resolve()?;
    let mut spec = plan.spec.clone();
    let server = match &plan.own_server {
        Some(s) => {
            eprintln!("starting tenantd with {} tenants…", s.tenants);
            let server = LocalServer::start(s)?;
            spec.addr = server.addr;
            spec.host = server.addr.to_string();
            spec.sampler = Some(Sampler::Local {
                pid: server.pid,
                data_dir: Some(server.data_dir.clone()),
            });
            Some(server)
        }
        None => None,
    };
    let machine_dir = server
        .as_ref()
        .map(|s| s.data_dir.clone())
        .or(plan.spec.sampler.as_ref().and_then(|s| match s {
            Sampler::Local { data_dir, .. } => data_dir.clone(),
            Sampler::Remote { .. } => None,
        }))
        .unwrap_or_else(|| PathBuf::from("."));
    let machine = MachineInfo::detect(&machine_dir);
    let result = with_progress(|progress| loadgen::run(&spec, progress))?;
    let report = Report::new(
        env!("CARGO_PKG_VERSION"),
        machine,
        &plan.target,
        &spec,
        &result,
    );
    print!("{}", report.to_text());
    if spec.sampler.is_none() {
        println!("server: not sampled (give --pid or --metrics)");
    }
    if let Some(path) = &plan.json {
        std::fs::write(path, report.to_json())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    // After the report, so a server that fails to stop does not lose it.
    if let Some(s) = server {
        s.stop()?;
    }
    Ok(())
}

/// Runs `f` with a progress callback: a bar on a terminal, nothing otherwise.
fn with_progress<T>(f: impl FnOnce(&mut dyn FnMut(&loadgen::Progress)) -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return f(&mut |_| {});
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {elapsed}/{msg}")
            .expect("valid template"),
    );
    let out = f(&mut |p| {
        bar.set_length(p.duration.as_millis() as u64);
        bar.set_position(p.elapsed.as_millis().min(p.duration.as_millis()) as u64);
        let rate = p.ok as f64 / p.elapsed.as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "{:.0?}  {} requests, {:.0} ok/s, {} errors",
            p.duration, p.requests, rate, p.errors
        ));
    });
    bar.finish_and_clear();
    out
}
