//! `GET /t/{tenant}/events?after=ID&limit=N&source=S`: read stored events in id order.

use axum::extract::{Query, State};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use store::events;
use store::SourceName;

use crate::error::ApiError;
use crate::extract::{Admin, Tenant};
use crate::state::{AppState, MAX_EVENTS_PAGE};

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
/// pass as `after` for the next page (or to poll for new events); `more` says the page was full.
/// A body that is valid UTF-8 is returned as `body`, any other as `body_base64`.
pub async fn list(
    State(st): State<AppState>,
    _: Admin,
    Tenant(tenant): Tenant,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let after = q.after.unwrap_or(0);
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_EVENTS_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1..={MAX_EVENTS_PAGE}"
        )));
    }
    let source = match q.source.as_deref() {
        Some(s) => Some(SourceName::parse(s).map_err(ApiError::InvalidSource)?),
        None => None,
    };
    let page = st
        .pool
        .read(&tenant, move |conn| {
            Ok(events::list_events(
                conn,
                after,
                limit,
                source.as_ref().map(|s| s.as_str()),
            )?)
        })
        .await?;
    let next_after = page.last().map_or(after, |e| e.id);
    let more = page.len() == limit as usize;
    let events: Vec<serde_json::Value> = page.into_iter().map(event_json).collect();
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
