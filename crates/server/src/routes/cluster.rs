//! The node's place in a cluster (docs/CLUSTER.md): `GET /admin/cluster` shows its name and
//! slot table, `PUT /admin/cluster` installs a newer table (`tenantd cluster push` sends it to
//! every node). Both need the admin token.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use cluster::table::TableFile;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::Admin;
use crate::routing::RoutingError;
use crate::state::AppState;

/// `GET /admin/cluster`: `{"node": name | null, "table": {epoch, ranges, overrides} | null}`.
pub async fn show(State(st): State<AppState>, _: Admin) -> Json<Value> {
    Json(json!({"node": st.routing.node(), "table": st.routing.table()}))
}

/// `PUT /admin/cluster` with a table: 200 `{"node", "epoch"}` once it is on disk and served;
/// 400 for a malformed table or a node without a name, 409 `stale_table` for an older epoch
/// (or the same epoch with other contents).
pub async fn install(
    State(st): State<AppState>,
    _: Admin,
    body: Result<Json<TableFile>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(file) = body.map_err(|e| super::admin::json_error(&e, st.http.max_body_bytes))?;
    let state = st.clone();
    let installed = tokio::task::spawn_blocking(move || state.routing.install(&file))
        .await
        .map_err(|e| ApiError::Internal(format!("table install task: {e}")))?;
    match installed {
        Ok(epoch) => {
            tracing::info!(epoch, "slot table installed");
            Ok(Json(json!({"node": st.routing.node(), "epoch": epoch})))
        }
        Err(e @ (RoutingError::Stale { .. } | RoutingError::Conflict(_))) => {
            Err(ApiError::StaleTable(e.to_string()))
        }
        Err(e @ RoutingError::Table(_)) => Err(ApiError::BadRequest(e.to_string())),
        Err(RoutingError::File { path, reason }) if st.routing.node().is_none() => Err(
            ApiError::BadRequest(format!("{}: {reason}", path.display())),
        ),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}
