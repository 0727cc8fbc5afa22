//! The HTTP face of tenantd.
//!
//! - [`app`] builds the router (tests call it directly); [`serve::serve`] runs it on a listener;
//! - [`state`]: shared state and HTTP limits; [`extract`]: tenant/source/admin extractors;
//! - [`routes`]: webhooks, events, admin, operations; [`signature`]: webhook schemes;
//! - [`sql`]: libSQL's Hrana over HTTP on every tenant, behind per-tenant tokens;
//! - [`metrics`]: admission control + Prometheus metrics; [`error`]: the one error-to-HTTP map;
//! - [`body`]: bounded body reads (size and time); [`trace`]: the request span and request id.
#![deny(missing_docs)]

pub mod body;
pub mod error;
pub mod extract;
pub mod ingest_metrics;
pub mod metrics;
pub mod process_metrics;
pub mod routes;
pub mod routing;
pub mod serve;
pub mod signature;
pub mod sql;
pub mod state;
pub mod trace;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;

pub use state::{AppState, HttpConfig};

/// Time allowed to receive a whole tenant file on import (`PUT /admin/tenants/{id}/import`).
pub const IMPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// The whole HTTP API over `state`.
///
/// Layers, outermost first: the request span (`trace`), admission and metrics (`track`), then
/// per route group the bounded body read (`body::guard`, with the group's size limit).
pub fn app(state: AppState) -> Router {
    use routes::{admin, events, hooks, ops};
    let body_rule = |limit| body::BodyRule {
        limit,
        timeout: state.http.body_read_timeout,
    };
    let sql = sql::router(&state.sql.config).layer(axum::middleware::from_fn_with_state(
        body_rule(state.sql.config.max_body_bytes),
        body::guard,
    ));
    // An import carries a whole tenant file: its own size limit (the tenant quota) and time.
    let import = Router::new()
        .route(
            "/admin/tenants/{id}/import",
            put(routes::moves::import).delete(routes::moves::drop_import),
        )
        .layer(axum::middleware::from_fn_with_state(
            body::BodyRule {
                limit: usize::try_from(state.pool.config().quota_bytes).unwrap_or(usize::MAX),
                timeout: IMPORT_TIMEOUT,
            },
            body::guard,
        ));
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/t/{tenant}/hooks/{source}", post(hooks::ingest))
        .route("/t/{tenant}/events", get(events::list))
        .route("/admin/tenants", get(admin::list))
        .route(
            "/admin/cluster",
            get(routes::cluster::show).put(routes::cluster::install),
        )
        .route(
            "/admin/tenants/{id}",
            put(admin::create).delete(admin::delete).get(admin::show),
        )
        .route(
            "/admin/tenants/{id}/hooks/{source}",
            put(admin::set_hook).delete(admin::delete_hook),
        )
        .route("/admin/tenants/{id}/policy", put(admin::set_policy))
        .route("/admin/tenants/{id}/move", post(routes::moves::fence))
        .route(
            "/admin/tenants/{id}/move/{fence}/snapshot",
            get(routes::moves::snapshot),
        )
        .route(
            "/admin/tenants/{id}/move/{fence}/commit",
            post(routes::moves::commit),
        )
        .route(
            "/admin/tenants/{id}/move/{fence}",
            axum::routing::delete(routes::moves::undo),
        )
        .route("/admin/slots", get(routes::moves::slots))
        .route(
            "/admin/tenants/{id}/tokens/revoke",
            post(routes::tokens::revoke),
        )
        .layer(axum::middleware::from_fn_with_state(
            body_rule(state.http.max_body_bytes),
            body::guard,
        ))
        .merge(sql)
        .merge(import)
        .fallback(ops::fallback)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.http.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            trace::span,
        ))
        .with_state(state)
}
