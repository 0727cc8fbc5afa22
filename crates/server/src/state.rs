//! Shared state of the HTTP server: the pool, the admin token, limits, metrics, and the SQL
//! endpoints' state (token keys, open streams, settings).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use store::inbox::Inbox;
use store::TenantPool;

use crate::metrics::Metrics;
use crate::sql::{SqlConfig, SqlState};

/// Default request body limit, bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Default cap on requests in flight across all tenants.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// Default time a client has to send its request headers.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a client has to send its whole request body (past it: 408).
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time between `/readyz` turning 503 and the listener closing at shutdown.
pub const DEFAULT_SHUTDOWN_DELAY: Duration = Duration::ZERO;
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
    /// Time allowed to receive the whole request body, from the end of the headers (past it:
    /// `408 request_timeout`, and the in-flight slot is freed).
    pub body_read_timeout: Duration,
    /// At shutdown, how long `/readyz` answers 503 while requests are still accepted, so a load
    /// balancer stops routing here before the listener closes.
    pub shutdown_delay: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            shutdown_delay: DEFAULT_SHUTDOWN_DELAY,
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
    /// The webhook ingest path: node log, catalog, backlog and appliers (attached to `pool`).
    pub inbox: Inbox,
    /// The admin bearer token.
    pub admin_token: String,
    /// HTTP limits.
    pub http: HttpConfig,
    /// Request metrics.
    pub metrics: Metrics,
    /// False once shutdown began (`/readyz` answers 503).
    pub ready: AtomicBool,
    /// The SQL endpoints: token keys, open streams, settings.
    pub sql: SqlState,
    /// This node's name and slot table (cluster mode); every tenant is ours without one.
    pub routing: crate::routing::Routing,
    /// The continuous backup, if configured (set once at start, before serving).
    pub backup: std::sync::OnceLock<backup::Backup>,
}

impl AppState {
    /// State over `pool`, ready to serve, with default SQL settings and a fresh in-memory
    /// token key pair (tests; `tenantd serve` uses [`AppState::with_sql`]).
    pub fn new(pool: TenantPool, inbox: Inbox, admin_token: String, http: HttpConfig) -> Self {
        let sql = SqlState::new(SqlConfig::default(), auth::Keys::generate());
        Self::with_sql(pool, inbox, admin_token, http, sql)
    }

    /// State over `pool`, ready to serve, with the given SQL state, on one node (no cluster).
    /// Start its stream expiry with [`crate::sql::spawn_expiry`].
    pub fn with_sql(
        pool: TenantPool,
        inbox: Inbox,
        admin_token: String,
        http: HttpConfig,
        sql: SqlState,
    ) -> Self {
        Self::with_routing(
            pool,
            inbox,
            admin_token,
            http,
            sql,
            crate::routing::Routing::single(),
        )
    }

    /// [`AppState::with_sql`] for a node of a cluster: `routing` decides which tenants it serves.
    pub fn with_routing(
        pool: TenantPool,
        inbox: Inbox,
        admin_token: String,
        http: HttpConfig,
        sql: SqlState,
        routing: crate::routing::Routing,
    ) -> Self {
        AppState(Arc::new(Shared {
            pool,
            inbox,
            admin_token,
            http,
            metrics: Metrics::default(),
            ready: AtomicBool::new(true),
            sql,
            routing,
            backup: std::sync::OnceLock::new(),
        }))
    }
}

impl AppState {
    /// `Ok` when this node serves `tenant`: its table gives it here (else `421` with the
    /// owner and epoch) and it has not moved away (else `421` with its new owner).
    pub fn check_owner(&self, tenant: &store::TenantId) -> Result<(), crate::error::ApiError> {
        self.routing.check(tenant)?;
        match self.pool.fences().moved_to(tenant) {
            Some(owner) => Err(crate::error::ApiError::MovedAway { owner }),
            None => Ok(()),
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
