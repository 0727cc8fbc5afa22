//! Shared state of the HTTP server: the pool, the admin token, limits and metrics.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use store::TenantPool;

use crate::metrics::Metrics;

/// Default request body limit, bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Default cap on requests in flight across all tenants.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// Default time a client has to send its request headers.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest `limit` accepted by the events API.
pub const MAX_EVENTS_PAGE: u32 = 1000;

/// HTTP-level limits. `HttpConfig::default()` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest accepted request body, bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Requests in flight past which new ones get 503 + `Retry-After`.
    pub max_in_flight: usize,
    /// Time allowed to receive request headers (slow clients are disconnected).
    pub header_read_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
        }
    }
}

/// Everything a handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

/// The contents of [`AppState`].
pub struct Shared {
    /// The tenant pool.
    pub pool: TenantPool,
    /// The admin bearer token.
    pub admin_token: String,
    /// HTTP limits.
    pub http: HttpConfig,
    /// Request metrics.
    pub metrics: Metrics,
    /// False once shutdown began (`/readyz` answers 503).
    pub ready: AtomicBool,
}

impl AppState {
    /// State over `pool`, ready to serve.
    pub fn new(pool: TenantPool, admin_token: String, http: HttpConfig) -> Self {
        AppState(Arc::new(Shared {
            pool,
            admin_token,
            http,
            metrics: Metrics::default(),
            ready: AtomicBool::new(true),
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
