//! Moving tenants between nodes, the node's endpoints (docs/CLUSTER.md "Moving tenants";
//! `tenantd cluster move` drives them). All need the admin token.
//!
//! Source: `POST /admin/tenants/{id}/move` fences (or renews), `GET …/move/{fence}/snapshot`
//! streams the consistent copy, `POST …/move/{fence}/commit` retires it here, `DELETE
//! …/move/{fence}` undoes. Target: `PUT /admin/tenants/{id}/import` receives and installs a
//! copy, `DELETE /admin/tenants/{id}/import` drops one this node does not serve. Per-slot
//! listings for slot moves and rebalancing: `GET /admin/slots`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::{json, Value};
use store::handoff::{self, FenceError, HandoffError, Incoming, Undone};
use store::TenantId;

use crate::error::ApiError;
use crate::extract::{Admin, AnyTenant};
use crate::state::AppState;

/// Header with the snapshot's sha256 (hex), on the snapshot and the import.
pub const SHA256_HEADER: &str = "x-tenantd-sha256";
/// Header with the snapshot's size in bytes.
pub const BYTES_HEADER: &str = "x-tenantd-bytes";
/// Header with the id the tenant's next event must get (at least) on the target.
pub const NEXT_EVENT_HEADER: &str = "x-tenantd-next-event-id";
/// Default life of a fence unless renewed.
pub const DEFAULT_FENCE_TTL: Duration = Duration::from_secs(30);
/// Longest fence a mover may ask for.
pub const MAX_FENCE_TTL: Duration = Duration::from_secs(600);
/// How long the snapshot waits for the tenant to become quiet (appends, an open transaction).
const QUIET_WAIT: Duration = Duration::from_secs(10);

/// `POST /admin/tenants/{id}/move` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FenceRequest {
    /// The node the tenant moves to.
    pub to: String,
    /// Life of the fence, ms (default 30,000; at most 600,000).
    pub ttl_ms: Option<u64>,
    /// Renew this fence instead of taking a new one.
    pub fence: Option<String>,
}

fn parse_token(raw: &str) -> Result<u64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::BadRequest(format!("bad fence token {raw:?}")))
}

fn handoff_error(e: HandoffError) -> ApiError {
    match e {
        HandoffError::Fence(FenceError::Moved { to }) => ApiError::MovedAway { owner: to },
        HandoffError::Fence(e @ FenceError::Held { .. }) => ApiError::TenantBusy(e.to_string()),
        HandoffError::Fence(e @ FenceError::Expired) => ApiError::FenceExpired(e.to_string()),
        e @ HandoffError::Busy(..) => ApiError::TenantBusy(e.to_string()),
        e @ (HandoffError::Checksum { .. } | HandoffError::Unsound(_)) => {
            ApiError::ImportRefused(e.to_string())
        }
        HandoffError::Store(e) => e.into(),
        HandoffError::Inbox(e) => e.into(),
    }
}

/// `POST /admin/tenants/{id}/move` `{"to", "ttl_ms"?, "fence"?}`: fences the tenant for a
/// move (writes wait, then get 503 `tenant_moving`), or renews the fence named. 200 `{"fence",
/// "ttl_ms"}`; 421 when this node does not serve it (or it moved: `owner` says where), 404
/// without a file, 409 `tenant_busy` when another move holds it.
pub async fn fence(
    State(st): State<AppState>,
    _: Admin,
    AnyTenant(id): AnyTenant,
    body: Result<Json<FenceRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body.map_err(|e| super::admin::json_error(&e, st.http.max_body_bytes))?;
    st.check_owner(&id)?;
    TenantId::parse(&req.to)
        .map_err(|e| ApiError::BadRequest(format!("`to` is not a node name: {e}")))?;
    let ttl = Duration::from_millis(req.ttl_ms.unwrap_or(DEFAULT_FENCE_TTL.as_millis() as u64));
    if ttl.is_zero() || ttl > MAX_FENCE_TTL {
        return Err(ApiError::BadRequest(format!(
            "ttl_ms must be 1..={}",
            MAX_FENCE_TTL.as_millis()
        )));
    }
    let renew = req.fence.as_deref().map(parse_token).transpose()?;
    if !st.pool.path_of(&id).exists() {
        return Err(ApiError::TenantNotFound);
    }
    let now = tokio::time::Instant::now();
    let grant = st
        .pool
        .fences()
        .fence(&id, &req.to, ttl, renew, now)
        .map_err(|e| handoff_error(e.into()))?;
    if renew.is_none() {
        tracing::info!(tenant = %id, to = %req.to, ttl_ms = ttl.as_millis() as u64, "tenant fenced for a move");
    }
    Ok(Json(json!({
        "fence": grant.token.to_string(),
        "ttl_ms": grant.ttl.as_millis() as u64,
    })))
}

/// `GET /admin/tenants/{id}/move/{fence}/snapshot`: the tenant's consistent copy as the body,
/// with its size, sha256 and next event id in headers. 409 `fence_expired` if the fence is gone.
pub async fn snapshot(
    State(st): State<AppState>,
    _: Admin,
    AnyTenant(id): AnyTenant,
    Path((_, token)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let token = parse_token(&token)?;
    let snap = handoff::export(&st.inbox, &id, token, QUIET_WAIT)
        .await
        .map_err(handoff_error)?;
    // Opened, then unlinked: the open file is streamed and its space freed when sent.
    let file = tokio::fs::File::open(&snap.path)
        .await
        .map_err(|e| ApiError::Internal(format!("snapshot: {e}")))?;
    let _ = tokio::fs::remove_file(&snap.path).await;
    tracing::info!(tenant = %id, bytes = snap.bytes, "snapshot taken for a move");
    let mut resp = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 256 << 10))
        .into_response();
    let h = resp.headers_mut();
    h.insert(SHA256_HEADER, header_value(&snap.sha256));
    h.insert(BYTES_HEADER, header_value(&snap.bytes.to_string()));
    h.insert(
        NEXT_EVENT_HEADER,
        header_value(&snap.next_event_id.to_string()),
    );
    h.insert(
        axum::http::header::CONTENT_LENGTH,
        header_value(&snap.bytes.to_string()),
    );
    h.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.sqlite3"),
    );
    Ok(resp)
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("digits and hex are header-safe")
}

/// `POST /admin/tenants/{id}/move/{fence}/commit`: the tenant is retired here (kept for the
/// grace period) and answers 421 with its new owner from now on. 200 `{"moved_to"}` (also when
/// committed before: a rerun); 409 `fence_expired`.
pub async fn commit(
    State(st): State<AppState>,
    _: Admin,
    AnyTenant(id): AnyTenant,
    Path((_, token)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let token = parse_token(&token)?;
    let to = match handoff::commit(&st.inbox, &id, token).await {
        Ok(to) => to,
        Err(HandoffError::Fence(FenceError::Moved { to })) => to,
        Err(e) => return Err(handoff_error(e)),
    };
    tracing::info!(tenant = %id, to = %to, "tenant moved away");
    Ok(Json(json!({"moved_to": to})))
}

/// `DELETE /admin/tenants/{id}/move/{fence}`: undoes a move that gave up — lifts the fence,
/// or after a commit puts the retired file back, which needs this node's table to still give
/// it the tenant (409 otherwise: the target may have taken writes). 200 `{"undone":
/// "lifted"|"restored"|"nothing"}`.
pub async fn undo(
    State(st): State<AppState>,
    _: Admin,
    AnyTenant(id): AnyTenant,
    Path((_, token)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let token = parse_token(&token)?;
    if st.pool.fences().moved_to(&id).is_some() && st.routing.check(&id).is_err() {
        return Err(ApiError::TenantBusy(
            "this node's table no longer gives it the tenant: the move went ahead; finish it"
                .into(),
        ));
    }
    let undone = handoff::undo(&st.inbox, &id, token)
        .await
        .map_err(handoff_error)?;
    let word = match undone {
        Undone::Lifted => "lifted",
        Undone::Restored => "restored",
        Undone::Nothing => "nothing",
    };
    tracing::info!(tenant = %id, undone = word, "move undone");
    Ok(Json(json!({"undone": word})))
}

fn required<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::BadRequest(format!("header {name} is required")))
}

/// `PUT /admin/tenants/{id}/import` with the snapshot as the body and its sha256, size and
/// next event id in headers: verified, installed, catalogued. 201 `{"id", "bytes", "events",
/// "next_event_id"}`; 409 `tenant_exists` when this node serves the tenant and has it; 413
/// over the tenant quota; 422 `import_refused` (checksum, size, `integrity_check`, not a
/// tenant file): nothing is installed.
pub async fn import(
    State(st): State<AppState>,
    _: Admin,
    AnyTenant(id): AnyTenant,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let sha256 = required(&headers, SHA256_HEADER)?.to_string();
    let parse = |name: &str| -> Result<i64, ApiError> {
        required(&headers, name)?
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::BadRequest(format!("header {name}: expected an integer")))
    };
    let bytes = parse(BYTES_HEADER)? as u64;
    let next_event_id = parse(NEXT_EVENT_HEADER)?;
    let quota = st.pool.config().quota_bytes;
    if bytes > quota {
        return Err(ApiError::PayloadTooLarge(quota as usize));
    }
    if st.check_owner(&id).is_ok() && st.pool.path_of(&id).exists() {
        return Err(ApiError::TenantExists);
    }
    let data = st.pool.config().data_dir.clone();
    let internal = |e: std::io::Error| ApiError::Internal(format!("import of {id}: {e}"));
    let mut incoming = Incoming::create(&data, &id).await.map_err(internal)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("import body: {e}")))?;
        if incoming.bytes() + chunk.len() as u64 > bytes {
            return Err(ApiError::ImportRefused(format!(
                "more than the announced {bytes} bytes arrived"
            )));
        }
        incoming.write(&chunk).await.map_err(internal)?;
    }
    let received = incoming.finish().await.map_err(internal)?;
    let installed = handoff::install(&st.inbox, &id, received, &sha256, bytes, next_event_id)
        .await
        .map_err(handoff_error)?;
    tracing::info!(tenant = %id, bytes = installed.bytes, events = installed.events, "tenant imported");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id.as_str(),
            "bytes": installed.bytes,
            "events": installed.events,
            "next_event_id": installed.next_event_id,
        })),
    ))
}

/// `DELETE /admin/tenants/{id}/import`: removes a copy this node holds but does not serve (a
/// move that gave up after the import). 204; 409 when this node serves the tenant (delete it
/// with `DELETE /admin/tenants/{id}` instead); 404 without a copy.
pub async fn drop_import(
    State(st): State<AppState>,
    _: Admin,
    AnyTenant(id): AnyTenant,
) -> Result<StatusCode, ApiError> {
    if st.routing.check(&id).is_ok() && st.pool.fences().moved_to(&id).is_none() {
        return Err(ApiError::TenantBusy(
            "this node serves the tenant: this is not a leftover import".into(),
        ));
    }
    st.pool.delete(&id).await?;
    st.inbox.tenant_deleted(&id)?;
    tracing::info!(tenant = %id, "leftover import dropped");
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /admin/slots`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotsQuery {
    /// List each slot's tenant ids too.
    #[serde(default)]
    pub ids: bool,
}

/// `GET /admin/slots[?ids=true]`: `{"node", "slots": {"N": {"tenants", "bytes"[, "ids"]}}}` for
/// every slot that has a tenant here (from the catalog; bytes: the files on disk with their
/// WAL). `tenantd cluster rebalance` weighs slots by it; `move-slot` lists tenants with it.
pub async fn slots(
    State(st): State<AppState>,
    _: Admin,
    query: Result<Query<SlotsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let per_slot = tenants_by_slot(&st).await?;
    let slots: BTreeMap<String, Value> = per_slot
        .into_iter()
        .map(|(slot, tenants)| {
            let bytes: u64 = tenants.iter().map(|(_, b)| b).sum();
            let mut v = json!({"tenants": tenants.len(), "bytes": bytes});
            if q.ids {
                v["ids"] = tenants.iter().map(|(id, _)| id.as_str()).collect();
            }
            (slot.to_string(), v)
        })
        .collect();
    Ok(Json(json!({"node": st.routing.node(), "slots": slots})))
}

/// The catalog's tenants grouped by slot, with their bytes on disk.
async fn tenants_by_slot(st: &AppState) -> Result<BTreeMap<u16, Vec<(TenantId, u64)>>, ApiError> {
    let st = st.clone();
    tokio::task::spawn_blocking(move || {
        let ids = st
            .inbox
            .catalog()
            .tenant_ids()
            .map_err(|e| ApiError::Internal(format!("catalog: {e}")))?;
        let mut out: BTreeMap<u16, Vec<(TenantId, u64)>> = BTreeMap::new();
        for id in ids {
            let slot = cluster::slot::slot_of(&id);
            let path = st.pool.path_of(&id);
            let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
            let [wal, _] = store::layout::companion_paths(&path);
            let bytes = size(&path) + size(&wal);
            out.entry(slot).or_default().push((id, bytes));
        }
        Ok(out)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("slot listing: {e}")))?
}

/// Every how often retired tenants past their grace period are deleted.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// Deletes retired tenants (moved away more than `grace` ago) now and every
/// [`SWEEP_INTERVAL`]; the task ends with the runtime.
pub fn spawn_sweep(st: &AppState, grace: Duration) {
    let st = st.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            every.tick().await;
            let s = st.clone();
            let swept = tokio::task::spawn_blocking(move || {
                let cutoff = std::time::SystemTime::now() - grace;
                let data = &s.pool.config().data_dir;
                handoff::sweep_retired(data, s.pool.fences(), cutoff)
            })
            .await;
            match swept {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(
                    tenants = n,
                    "retired tenants deleted after the grace period"
                ),
                Ok(Err(e)) => tracing::warn!(error = %e, "sweeping retired tenants failed"),
                Err(e) => tracing::warn!(error = %e, "sweeping retired tenants failed"),
            }
        }
    });
}
