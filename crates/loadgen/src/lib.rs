//! loadgen: an HTTP load generator for tenant-aware benchmarks. It knows nothing of tenantd's
//! internals: it sends HTTP/1.1 requests to `{tenant}` paths and measures the answers.
//!
//! - [`zipf`]: which tenant a request goes to (Zipf(s) or uniform over T);
//! - [`names`], [`template`], [`url`]: tenant names, `{tenant}` paths, `http://` URLs;
//! - [`workload`]: what a request is (webhook, SQL point read, SQL write, mixed, GET), the
//!   same requests as the wrk scripts in `bench/wrk/`;
//! - [`conn`]: one keep-alive HTTP/1.1 connection; [`schedule`]: the open loop's intended
//!   send times; [`run`] (+ `worker`): the driver, closed or open loop;
//! - [`histogram`]: HDR latency histograms; [`sample`]: the server's RSS, CPU, fds, open
//!   tenants, disk; [`machine`]: the machine description; [`report`]: text and JSON.
//!
//! ```no_run
//! use loadgen::{run, Spec, workload::Workload};
//! let mut spec = Spec::new("127.0.0.1:8080".parse().unwrap(), Workload::Get);
//! spec.duration = std::time::Duration::from_secs(2);
//! let result = run(&spec, &mut |_| {}).unwrap();
//! println!("{} ok at {:.0} req/s", result.ok, result.rps_ok());
//! ```
#![deny(missing_docs)]

pub mod conn;
pub mod histogram;
pub mod machine;
pub mod names;
pub mod report;
pub mod result;
pub mod run;
pub mod sample;
pub mod schedule;
pub mod template;
pub mod url;
mod worker;
pub mod workload;
pub mod zipf;

pub use run::{run, LoadError, Names, Pace, Progress, RunResult, Spec};
