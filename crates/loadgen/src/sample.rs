//! Server samples: RSS, CPU seconds, threads, fds, open tenants, bytes on disk. A local server
//! is read from `/proc/<pid>` (and its `/metrics` for `tenantd_open_tenants`, when given); a
//! remote one from its Prometheus `/metrics` (`process_*` metrics).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::url::{HttpUrl, UrlError};

/// How long one `/metrics` fetch may take.
pub const METRICS_TIMEOUT: Duration = Duration::from_secs(2);

/// Where samples come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sampler {
    /// A process on this machine.
    Local {
        /// Its process id.
        pid: u32,
        /// Its data directory (for bytes on disk), if known.
        data_dir: Option<PathBuf>,
    },
    /// A server's Prometheus metrics endpoint.
    Remote {
        /// e.g. `http://10.0.0.5:8080/metrics`.
        metrics_url: String,
    },
}

/// One look at the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerSample {
    /// Resident memory now.
    pub rss_bytes: u64,
    /// Peak resident memory so far (VmHWM; local only).
    pub peak_rss_bytes: Option<u64>,
    /// User + system CPU time used so far.
    pub cpu_seconds: f64,
    /// Threads.
    pub threads: Option<u64>,
    /// Open file descriptors.
    pub fds: Option<u64>,
    /// `tenantd_open_tenants`, when the server exports it.
    pub open_tenants: Option<u64>,
    /// Bytes of the files under the data directory (local, when asked for).
    pub disk_bytes: Option<u64>,
}

/// Why a sample could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// `/proc/<pid>` is unreadable: the process is gone or not ours to read.
    #[error("cannot read /proc/{pid}: {source} (is the server still running?)")]
    Proc {
        /// The process id.
        pid: u32,
        /// The error.
        source: std::io::Error,
    },
    /// `/proc/<pid>` had an unexpected shape.
    #[error("unexpected contents in /proc/{0}")]
    ProcFormat(u32),
    /// The metrics URL is not a plain http URL.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// Fetching the metrics failed.
    #[error("cannot fetch {url}: {source}")]
    Fetch {
        /// The URL.
        url: String,
        /// The error.
        source: std::io::Error,
    },
    /// The metrics lack the process' resident memory.
    #[error(
        "{0} has no process_resident_memory_bytes: sample a local server with its pid instead"
    )]
    NoRss(String),
}

impl Sampler {
    /// Takes a sample without walking the data directory.
    pub fn sample(&self) -> Result<ServerSample, SampleError> {
        self.sample_with(None, false)
    }

    /// Takes a sample; a local one also reads `tenantd_open_tenants` from `metrics_url` when
    /// given (failures there only leave it empty) and, with `disk`, sums the data directory.
    /// Errors: the process or the remote metrics cannot be read.
    pub fn sample_with(
        &self,
        metrics_url: Option<&str>,
        disk: bool,
    ) -> Result<ServerSample, SampleError> {
        match self {
            Sampler::Local { pid, data_dir } => {
                let mut s = proc_sample(*pid)?;
                s.open_tenants = metrics_url
                    .and_then(|u| fetch(u).ok())
                    .and_then(|text| metric(&text, "tenantd_open_tenants"))
                    .map(|v| v as u64);
                if disk {
                    s.disk_bytes = data_dir.as_deref().map(dir_bytes);
                }
                Ok(s)
            }
            Sampler::Remote { metrics_url } => {
                let text = fetch(metrics_url)?;
                let get = |name| metric(&text, name);
                Ok(ServerSample {
                    rss_bytes: get("process_resident_memory_bytes")
                        .ok_or_else(|| SampleError::NoRss(metrics_url.clone()))?
                        as u64,
                    peak_rss_bytes: None,
                    cpu_seconds: get("process_cpu_seconds_total").unwrap_or(0.0),
                    threads: get("process_threads").map(|v| v as u64),
                    fds: get("process_open_fds").map(|v| v as u64),
                    open_tenants: get("tenantd_open_tenants").map(|v| v as u64),
                    disk_bytes: None,
                })
            }
        }
    }
}

fn proc_sample(pid: u32) -> Result<ServerSample, SampleError> {
    let read = |file: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .map_err(|source| SampleError::Proc { pid, source })
    };
    let status = read("status")?;
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let stat = read("stat")?;
    // Fields after the command name (which may hold spaces and parentheses).
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or(SampleError::ProcFormat(pid))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; `after` starts at field 3.
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    let (utime, stime) = ticks(14)
        .zip(ticks(15))
        .ok_or(SampleError::ProcFormat(pid))?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count() as u64);
    Ok(ServerSample {
        rss_bytes: kb("VmRSS:").ok_or(SampleError::ProcFormat(pid))? * 1024,
        peak_rss_bytes: kb("VmHWM:").map(|k| k * 1024),
        cpu_seconds: (utime + stime) as f64 / hz,
        threads: kb("Threads:"),
        fds,
        open_tenants: None,
        disk_bytes: None,
    })
}

/// Bytes of every file under `dir` (apparent sizes; unreadable entries are skipped).
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// The value of an unlabelled Prometheus metric.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let value = rest.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// GETs `url` with a bounded wait; returns the body of a 200.
pub fn fetch(url: &str) -> Result<String, SampleError> {
    let u = HttpUrl::parse(url)?;
    let addr = u.resolve()?;
    let io = |source| SampleError::Fetch {
        url: url.into(),
        source,
    };
    let mut s = TcpStream::connect_timeout(&addr, METRICS_TIMEOUT).map_err(io)?;
    s.set_read_timeout(Some(METRICS_TIMEOUT)).map_err(io)?;
    s.set_write_timeout(Some(METRICS_TIMEOUT)).map_err(io)?;
    write!(
        s,
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        u.path,
        u.host_header()
    )
    .map_err(io)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(io)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        let line = head.lines().next().unwrap_or("").to_string();
        return Err(io(std::io::Error::other(format!("answered {line:?}"))));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Ok(dechunk(body));
    }
    Ok(body.to_string())
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let s = Sampler::Local {
            pid: std::process::id(),
            data_dir: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
        }
        .sample_with(None, true)
        .unwrap();
        assert!(s.rss_bytes > 0);
        assert!(s.peak_rss_bytes.unwrap() >= s.rss_bytes);
        assert!(s.threads.unwrap() >= 1 && s.fds.unwrap() >= 1);
        assert!(s.disk_bytes.unwrap() > 0);
        let gone = Sampler::Local {
            pid: u32::MAX,
            data_dir: None,
        }
        .sample();
        assert!(matches!(gone, Err(SampleError::Proc { .. })));
    }

    #[test]
    fn reads_prometheus_text() {
        let t = "# HELP x\ntenantd_open_tenants 12\ntenantd_open_tenants_total 99\nprocess_cpu_seconds_total 1.5\n";
        assert_eq!(metric(t, "tenantd_open_tenants"), Some(12.0));
        assert_eq!(metric(t, "process_cpu_seconds_total"), Some(1.5));
        assert_eq!(metric(t, "process_threads"), None);
        assert_eq!(dechunk("5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n"), "hello!");
    }
}
