//! `GET /t/{tenant}/events?after=ID&limit=N&source=S`: read stored events in id order, with
//! the admin token or the tenant's own token (read-only tokens included; same epoch check as
//! the SQL API). A page is cut by count (`limit`) and by the size of its bodies
//! ([`MAX_PAGE_BODY_BYTES`]), so one response stays bounded.

use axum::extract::{Query, State};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use store::events;
use store::SourceName;

use crate::error::ApiError;
use crate::sql::{SqlError, SqlTenant};
use crate::state::{AppState, MAX_EVENTS_PAGE};

/// Bodies per page, bytes: past it the page ends early with `more: true` (it always holds at
/// least one event). Without it, `limit=1000` of 1 MiB bodies would be a ~1 GiB response.
pub const MAX_PAGE_BODY_BYTES: usize = 8 << 20;

/// Query parameters of the events API.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// Return events with id greater than this (default 0).
    pub after: Option<i64>,
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<u32>,
    /// Only events of this source.
    pub source: Option<String>,
}

/// Answers `{"events": [...], "next_after": ID, "more": bool}`. `next_after` is the cursor to
/// pass as `after` for the next page (or to poll for new events); `more` says the page was full
/// (by count, or by [`MAX_PAGE_BODY_BYTES`]). A body that is valid UTF-8 is returned as `body`,
/// any other as `body_base64`. Errors: token (401/403), bad query (400), the pool's.
pub async fn list(
    State(st): State<AppState>,
    tenant: SqlTenant,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, SqlError> {
    let tenant = tenant.id;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let after = q.after.unwrap_or(0);
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_EVENTS_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be 1..={MAX_EVENTS_PAGE}")).into());
    }
    let source = match q.source.as_deref() {
        Some(s) => Some(SourceName::parse(s).map_err(ApiError::InvalidSource)?),
        None => None,
    };
    let page = st
        .pool
        .read(&tenant, move |conn| {
            Ok(events::list_page(
                conn,
                after,
                limit,
                source.as_ref().map(|s| s.as_str()),
                MAX_PAGE_BODY_BYTES,
            )?)
        })
        .await?;
    let next_after = page.events.last().map_or(after, |e| e.id);
    let more = page.cut_by_bytes || page.events.len() == limit as usize;
    let events: Vec<serde_json::Value> = page.events.into_iter().map(event_json).collect();
    Ok(Json(
        serde_json::json!({"events": events, "next_after": next_after, "more": more}),
    ))
}

fn event_json(e: events::Event) -> serde_json::Value {
    let mut v = serde_json::to_value(&e).expect("events serialize");
    match String::from_utf8(e.body) {
        Ok(text) => v["body"] = text.into(),
        Err(raw) => {
            v["body_base64"] = base64::engine::general_purpose::STANDARD
                .encode(raw.into_bytes())
                .into()
        }
    }
    v
}
