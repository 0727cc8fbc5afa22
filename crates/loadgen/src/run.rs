//! The driver: `threads` OS threads, each with a current-thread tokio runtime running its
//! share of the connections; closed loop (each connection sends, waits, repeats until the
//! deadline or the request budget) or open loop (the intended send times of `schedule.rs`,
//! latency from the intended time). The calling thread reports progress and samples the
//! server meanwhile; per-connection histograms and counters are merged at the end.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::names::Names;
pub use crate::result::RunResult;
use crate::sample::{SampleError, Sampler};
use crate::schedule::OpenSchedule;
use crate::template::PathTemplate;
use crate::worker::{self, ConnStats};
use crate::workload::Workload;
use crate::zipf::Chooser;

/// A request without an answer after this long counts as an error (the run never hangs).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A connect that takes longer counts as an error.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// After the deadline, an open-loop run still sends requests due before it for at most
/// max(duration, this); what is left is reported as `unsent`.
pub const MIN_DRAIN: Duration = Duration::from_secs(5);
/// Time given to every connection to connect before the clock starts.
pub const WARMUP: Duration = Duration::from_millis(100);

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// `concurrency` connections, each sending its next request when the last one answered.
    Closed {
        /// Connections (requests in flight).
        concurrency: usize,
    },
    /// A fixed rate, whatever the server does, spread over `connections`.
    Open {
        /// Requests per second.
        rate_per_second: f64,
        /// Connections the requests are spread over.
        connections: usize,
    },
}

impl Pace {
    /// Connections this pace opens.
    pub fn connections(&self) -> usize {
        match *self {
            Pace::Closed { concurrency } => concurrency,
            Pace::Open { connections, .. } => connections,
        }
    }
}

/// A load run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` header.
    pub host: String,
    /// What each request is.
    pub workload: Workload,
    /// Which tenant each request goes to.
    pub chooser: Chooser,
    /// Tenant names by index.
    pub names: Names,
    /// Path of webhooks.
    pub webhook_path: PathTemplate,
    /// Path of Hrana pipelines.
    pub sql_path: PathTemplate,
    /// Path of `Workload::Get`.
    pub get_path: String,
    /// Bearer token of the SQL requests.
    pub token: Option<String>,
    /// Closed or open loop.
    pub pace: Pace,
    /// How long to send.
    pub duration: Duration,
    /// Stop after this many requests.
    pub max_requests: Option<u64>,
    /// OS threads (each a current-thread runtime).
    pub threads: usize,
    /// Seed of every random choice (connection k uses a stream derived from it).
    pub seed: u64,
    /// Samples the server, if set.
    pub sampler: Option<Sampler>,
    /// Sampling period.
    pub sample_every: Duration,
}

impl Spec {
    /// A closed-loop run of `workload` against `addr` with the defaults of `tenantd bench
    /// load`: 1,000 tenants under Zipf(1.1), 64 connections, 10 s, one thread.
    pub fn new(addr: SocketAddr, workload: Workload) -> Self {
        Spec {
            addr,
            host: addr.to_string(),
            workload,
            chooser: Chooser::zipf(1000, 1.1).expect("constant parameters are valid"),
            names: Names::default(),
            webhook_path: PathTemplate::parse("/t/{tenant}/hooks/bench").expect("valid"),
            sql_path: PathTemplate::parse("/t/{tenant}/v2/pipeline").expect("valid"),
            get_path: "/healthz".into(),
            token: None,
            pace: Pace::Closed { concurrency: 64 },
            duration: Duration::from_secs(10),
            max_requests: None,
            threads: 1,
            seed: 1,
            sampler: None,
            sample_every: Duration::from_secs(1),
        }
    }
}

/// What the client saw so far (for a progress bar).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    /// Since the start.
    pub elapsed: Duration,
    /// The run's duration.
    pub duration: Duration,
    /// Requests answered or failed so far.
    pub requests: u64,
    /// 2xx so far.
    pub ok: u64,
    /// I/O errors and timeouts so far.
    pub errors: u64,
}

/// Why a run did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A field of the spec is out of range.
    #[error("invalid load spec: {0}")]
    BadSpec(&'static str),
    /// Nothing listens at the target.
    #[error("cannot connect to {addr}: {source} (is the server running?)")]
    Unreachable {
        /// The target.
        addr: SocketAddr,
        /// The connect error.
        source: std::io::Error,
    },
    /// The server could not be sampled before the run.
    #[error("cannot sample the server: {0}")]
    Sample(#[from] SampleError),
    /// A worker thread or its runtime could not start.
    #[error("cannot start a load thread: {0}")]
    Thread(std::io::Error),
}

/// Counters every connection adds to (in batches) for progress.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub requests: AtomicU64,
    pub ok: AtomicU64,
    pub errors: AtomicU64,
    /// Closed loop: requests claimed against `max_requests`.
    pub claimed: AtomicU64,
}

/// What the connections share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub spec: Spec,
    pub start: Instant,
    pub deadline: Instant,
    pub drain_deadline: Instant,
    pub schedule: Option<OpenSchedule>,
    pub live: Live,
}

fn validate(spec: &Spec) -> Result<(), LoadError> {
    let bad = |why| Err(LoadError::BadSpec(why));
    match spec.pace {
        Pace::Closed { concurrency: 0 } => return bad("concurrency must be at least 1"),
        Pace::Open { connections: 0, .. } => return bad("connections must be at least 1"),
        Pace::Open {
            rate_per_second, ..
        } if !(rate_per_second.is_finite() && rate_per_second > 0.0) => {
            return bad("rate must be a number above 0")
        }
        _ => {}
    }
    if spec.threads == 0 {
        return bad("threads must be at least 1");
    }
    if spec.duration.is_zero() && spec.max_requests.is_none() {
        return bad("give a duration above 0 or a request budget");
    }
    if spec.workload.needs_token() && spec.token.is_none() {
        return bad("SQL workloads need a bearer token");
    }
    if matches!(&spec.names, Names::List(l) if (l.len() as u64) < spec.chooser.n()) {
        return bad("the name list is shorter than the tenant count");
    }
    if spec.sample_every.is_zero() {
        return bad("the sampling period must be above 0");
    }
    Ok(())
}

/// Runs the load (blocking; builds its own runtimes); `progress` is called a few times a
/// second. Errors: a bad spec, an unreachable target, a server that cannot be sampled.
/// Failed requests are counted in the result, not returned.
pub fn run(spec: &Spec, progress: &mut dyn FnMut(&Progress)) -> Result<RunResult, LoadError> {
    validate(spec)?;
    std::net::TcpStream::connect_timeout(&spec.addr, Duration::from_secs(5)).map_err(|source| {
        LoadError::Unreachable {
            addr: spec.addr,
            source,
        }
    })?;
    let metrics_url = format!("http://{}/metrics", spec.addr);
    let sample = |disk| {
        spec.sampler
            .as_ref()
            .map(|s| s.sample_with(Some(&metrics_url), disk))
            .transpose()
    };
    let server_before = sample(true)?;

    let connections = spec.pace.connections();
    let threads = spec.threads.min(connections);
    let start = Instant::now() + WARMUP;
    // Without a budget the duration ends the run; with only a budget, a day is the bound.
    let duration = if spec.duration.is_zero() {
        Duration::from_secs(86_400)
    } else {
        spec.duration
    };
    let schedule = match spec.pace {
        Pace::Open {
            rate_per_second,
            connections,
        } => Some(OpenSchedule::new(
            rate_per_second,
            connections,
            duration,
            spec.max_requests,
        )),
        Pace::Closed { .. } => None,
    };
    let shared = Arc::new(Shared {
        spec: spec.clone(),
        start,
        deadline: start + duration,
        drain_deadline: start + duration + duration.max(MIN_DRAIN),
        schedule,
        live: Live::default(),
    });

    let mut samples = Vec::new();
    let stats = std::thread::scope(|scope| -> Result<Vec<ConnStats>, LoadError> {
        let handles = (0..threads)
            .map(|t| {
                let shared = Arc::clone(&shared);
                let conns: Vec<usize> = (t..connections).step_by(threads).collect();
                std::thread::Builder::new()
                    .name(format!("loadgen-{t}"))
                    .spawn_scoped(scope, move || worker::run_thread(shared, conns))
                    .map_err(LoadError::Thread)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tick = spec.sample_every.min(Duration::from_millis(200));
        let mut next_sample = start + spec.sample_every;
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(tick.min(Duration::from_millis(50)));
            let now = Instant::now();
            let live = &shared.live;
            progress(&Progress {
                elapsed: now.saturating_duration_since(start),
                duration,
                requests: live.requests.load(Ordering::Relaxed),
                ok: live.ok.load(Ordering::Relaxed),
                errors: live.errors.load(Ordering::Relaxed),
            });
            if now >= next_sample {
                next_sample += spec.sample_every;
                // A failed sample mid-run is skipped: the run goes on.
                if let Ok(Some(s)) = sample(false) {
                    samples.push((now - start, s));
                }
            }
        }
        let mut all = Vec::new();
        for h in handles {
            all.push(h.join().expect("load threads do not panic")?);
        }
        Ok(all)
    })?;
    let server_after = sample(true).ok().flatten();
    Ok(RunResult::merge(
        spec,
        stats,
        start,
        samples,
        server_before,
        server_after,
        schedule,
    ))
}
