//! The HTTP face of tenantd.
//!
//! - [`app`] builds the router (tests call it directly); [`serve::serve`] runs it on a listener;
//! - [`state`]: shared state and HTTP limits; [`extract`]: tenant/source/admin extractors;
//! - [`routes`]: webhooks, events, admin, operations; [`signature`]: webhook schemes;
//! - [`sql`]: libSQL's Hrana over HTTP on every tenant, behind per-tenant tokens;
//! - [`metrics`]: admission control + Prometheus metrics; [`error`]: the one error-to-HTTP map.
#![deny(missing_docs)]

pub mod error;
pub mod extract;
pub mod metrics;
pub mod routes;
pub mod serve;
pub mod signature;
pub mod sql;
pub mod state;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;

pub use state::{AppState, HttpConfig};

/// The whole HTTP API over `state`.
pub fn app(state: AppState) -> Router {
    use routes::{admin, events, hooks, ops};
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/t/{tenant}/hooks/{source}", post(hooks::ingest))
        .route("/t/{tenant}/events", get(events::list))
        .route("/admin/tenants", get(admin::list))
        .route(
            "/admin/tenants/{id}",
            put(admin::create).delete(admin::delete).get(admin::show),
        )
        .route("/admin/tenants/{id}/hooks/{source}", put(admin::set_hook))
        .route(
            "/admin/tenants/{id}/tokens/revoke",
            post(routes::tokens::revoke),
        )
        .merge(sql::router(&state.sql.config))
        .fallback(ops::fallback)
        .layer(DefaultBodyLimit::max(state.http.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}
