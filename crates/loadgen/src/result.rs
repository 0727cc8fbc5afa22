//! The result of a run: counters, merged histograms and server samples, and what follows from
//! them (ok/s, non-2xx, peak RSS, server CPU per ok request).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::histogram::Latency;
use crate::run::Spec;
use crate::sample::ServerSample;
use crate::schedule::OpenSchedule;
use crate::worker::ConnStats;

/// What a run measured.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// From the start to the last answer.
    pub elapsed: Duration,
    /// Requests sent (answered, failed or timed out).
    pub requests: u64,
    /// 2xx answers (a Hrana pipeline only when no result is an error).
    pub ok: u64,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests with no answer: connect, I/O, malformed response, timeout.
    pub errors: u64,
    /// Latency of every answered request (open loop: from its intended send time).
    pub latency: Latency,
    /// Latency per kind of request (mixed workloads only).
    pub latency_by_op: BTreeMap<String, Latency>,
    /// Server samples every `sample_every`, with the time since the start.
    pub samples: Vec<(Duration, ServerSample)>,
    /// Sample before the load (with bytes on disk).
    pub server_before: Option<ServerSample>,
    /// Sample after the load (with bytes on disk).
    pub server_after: Option<ServerSample>,
    /// 200 answers whose Hrana pipeline held an error (not counted in `ok`).
    pub sql_errors: u64,
    /// Open loop: requests sent more than `schedule::LATE_AFTER` past their intended time.
    pub sent_late: u64,
    /// Open loop: requests due before the deadline that were never sent (the drain ran out).
    pub unsent: u64,
    /// Open loop: requests the schedule held (sent + unsent).
    pub intended: Option<u64>,
    /// Connections used.
    pub connections: usize,
}

impl RunResult {
    /// 2xx answers per second of `elapsed`.
    pub fn rps_ok(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Answers with a status outside 2xx.
    pub fn non_2xx(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }

    /// The largest resident memory seen (peak RSS where the kernel keeps it).
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        self.server_before
            .iter()
            .chain(self.samples.iter().map(|(_, s)| s))
            .chain(self.server_after.iter())
            .map(|s| s.peak_rss_bytes.unwrap_or(0).max(s.rss_bytes))
            .max()
    }

    /// Server CPU seconds used during the run (after - before).
    pub fn cpu_seconds_used(&self) -> Option<f64> {
        let (b, a) = (self.server_before.as_ref()?, self.server_after.as_ref()?);
        Some((a.cpu_seconds - b.cpu_seconds).max(0.0))
    }

    /// Server CPU seconds per 2xx answer.
    pub fn cpu_seconds_per_ok_request(&self) -> Option<f64> {
        (self.ok > 0).then(|| self.cpu_seconds_used().map(|c| c / self.ok as f64))?
    }

    /// Merges the connections' stats into one result.
    pub(crate) fn merge(
        spec: &Spec,
        stats: Vec<ConnStats>,
        start: Instant,
        samples: Vec<(Duration, ServerSample)>,
        server_before: Option<ServerSample>,
        server_after: Option<ServerSample>,
        schedule: Option<OpenSchedule>,
    ) -> Self {
        let mut r = RunResult {
            elapsed: Duration::ZERO,
            requests: 0,
            ok: 0,
            statuses: BTreeMap::new(),
            errors: 0,
            latency: Latency::new(),
            latency_by_op: BTreeMap::new(),
            samples,
            server_before,
            server_after,
            sql_errors: 0,
            sent_late: 0,
            unsent: 0,
            intended: schedule.map(|s| s.total()),
            connections: spec.pace.connections(),
        };
        let mut last = start;
        for s in &stats {
            r.requests += s.requests;
            r.ok += s.ok;
            r.errors += s.errors;
            r.sql_errors += s.sql_errors;
            r.sent_late += s.sent_late;
            r.unsent += s.unsent;
            r.latency.merge(&s.latency);
            for &(status, n) in &s.statuses {
                *r.statuses.entry(status).or_default() += n;
            }
            for (op, h) in &s.by_op {
                r.latency_by_op
                    .entry(op.as_str().to_string())
                    .or_default()
                    .merge(h);
            }
            last = last.max(s.last_end.unwrap_or(start));
        }
        r.elapsed = last.saturating_duration_since(start);
        r
    }
}
