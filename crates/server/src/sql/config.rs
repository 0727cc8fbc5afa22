//! Settings of the SQL (Hrana) endpoints: tenant addressing by host, this node's public URL,
//! the tenant SQL guard, the result and stored-SQL caps, stream caps and idle expiry, and the
//! request body limit.

use std::time::Duration;

use hrana::exec::StreamConfig;
use hrana::guard::GuardConfig;
use hrana::stream_table::{StreamLimits, DEFAULT_STREAM_IDLE};

/// Default largest body of a SQL request, bytes: room for a maximal SQL text (1 MiB) or a
/// large blob argument in base64, above the 1 MiB default of the other routes.
pub const DEFAULT_SQL_MAX_BODY_BYTES: usize = 8 << 20;

/// Default cap on live streams of one tenant: above the writer queue cap (64), so writes are
/// refused by the queue first; room for many interactive clients of one tenant.
pub const DEFAULT_MAX_STREAMS_PER_TENANT: usize = 128;

/// Default cap on live streams of the node. With the stored-SQL cap per stream this bounds the
/// memory streams can hold: 4,096 × 128 KiB = 512 MiB at most.
pub const DEFAULT_MAX_STREAMS: usize = 4_096;

/// How the SQL endpoints behave. `SqlConfig::default()` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct SqlConfig {
    /// Base domain for host addressing: with `db.example.com`, a request to
    /// `acme.db.example.com` is for tenant `acme`. `None`: the `Host` header names no tenant.
    pub base_domain: Option<String>,
    /// This node's public URL (e.g. `http://node1:8080`); when set, responses carry
    /// `base_url = {public_url}/t/{tenant}/` so clients keep a stream on this node.
    pub public_url: Option<String>,
    /// The tenant SQL guard: time budget per request and reduced SQLite limits.
    pub guard: GuardConfig,
    /// Per-stream settings: the result-size cap of one request, the stored-SQL caps.
    pub stream: StreamConfig,
    /// Most live streams of one tenant; a new one past it is `429 too_many_streams`.
    pub max_streams_per_tenant: usize,
    /// Most live streams of this node; a new one past it is `503 too_many_streams`.
    pub max_streams: usize,
    /// A stream idle this long expires; an open transaction in it is rolled back.
    pub stream_idle: Duration,
    /// Largest accepted SQL request body, bytes (larger: 413).
    pub max_body_bytes: usize,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            base_domain: None,
            public_url: None,
            guard: GuardConfig::default(),
            stream: StreamConfig::default(),
            max_streams_per_tenant: DEFAULT_MAX_STREAMS_PER_TENANT,
            max_streams: DEFAULT_MAX_STREAMS,
            stream_idle: DEFAULT_STREAM_IDLE,
            max_body_bytes: DEFAULT_SQL_MAX_BODY_BYTES,
        }
    }
}

impl SqlConfig {
    /// The caps on live streams.
    pub fn stream_limits(&self) -> StreamLimits {
        StreamLimits {
            per_owner: self.max_streams_per_tenant,
            total: self.max_streams,
        }
    }

    /// The `base_url` to send for `tenant`, if this node has a public URL.
    pub fn base_url(&self, tenant: &str) -> Option<String> {
        self.public_url
            .as_deref()
            .map(|u| format!("{}/t/{tenant}/", u.trim_end_matches('/')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_has_one_slash_and_a_trailing_one() {
        let mut cfg = SqlConfig::default();
        assert_eq!(cfg.base_url("acme"), None);
        cfg.public_url = Some("http://n1:8080/".into());
        assert_eq!(
            cfg.base_url("acme").as_deref(),
            Some("http://n1:8080/t/acme/")
        );
    }
}
