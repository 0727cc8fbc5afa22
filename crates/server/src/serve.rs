//! Serving the router on a bound listener: HTTP/1.1 with a header read timeout, and graceful
//! shutdown (stop accepting, let in-flight requests finish, then close every tenant cleanly).

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::state::AppState;

/// How long shutdown waits for in-flight requests, then for open tenants to close.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves, then drains and closes the pool.
/// Accept errors (e.g. out of fds) are logged and retried after a short pause.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(state.http.header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let svc = TowerToHyperService::new(app.clone());
                let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), svc));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    state.ready.store(false, Ordering::Release);
    tracing::info!("shutting down: draining requests");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after the grace period");
    }
    // Streams left open by clients hold tenants' writers: roll them back now, so every tenant
    // can be closed cleanly.
    let abandoned = state
        .sql
        .streams
        .expire_at(std::time::Instant::now(), Duration::ZERO)
        .await;
    if abandoned > 0 {
        tracing::info!(abandoned, "rolled back open SQL streams");
    }
    state.pool.shutdown(SHUTDOWN_GRACE).await;
    tracing::info!("shut down cleanly");
    Ok(())
}
