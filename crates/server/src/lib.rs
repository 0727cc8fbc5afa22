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
        .route(
            "/admin/tenants/{id}/tokens/revoke",
            post(routes::tokens::revoke),
        )
        .layer(axum::middleware::from_fn_with_state(
            body_rule(state.http.max_body_bytes),
            body::guard,
        ))
        .merge(sql)
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
