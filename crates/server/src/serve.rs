//! Serving the router on a bound listener: HTTP/1.1 with a header read timeout, and graceful
//! shutdown: `/readyz` turns 503 at once, requests are still accepted for `shutdown_delay` (so a
//! load balancer sees the 503 and stops routing here), then the listener closes, in-flight
//! requests finish, and every tenant is closed cleanly.

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
/// How long shutdown lets the last backup round run.
pub const BACKUP_GRACE: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` resolves, then turns unready, keeps serving for
/// `shutdown_delay`, drains and closes the pool. Accept errors are logged and retried.
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
    let accept = Acceptor {
        listener: &listener,
        http: &http,
        graceful: &graceful,
        app: &app,
    };
    accept.until(shutdown).await;
    state.ready.store(false, Ordering::Release);
    let delay = state.http.shutdown_delay;
    if !delay.is_zero() {
        tracing::info!(
            ?delay,
            "shutting down: readiness is 503, still accepting for the delay"
        );
        accept.until(tokio::time::sleep(delay)).await;
    }
    drop(listener);
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
    // Every acknowledged webhook goes to its tenant file (and the log is released) before the
    // tenants close.
    if let Err(e) = state.inbox.close(SHUTDOWN_GRACE).await {
        tracing::error!(error = %e, "ingest: clean stop failed; the next start replays the log");
    }
    // A last backup round, so a clean stop leaves no change only on this disk.
    if let Some(backup) = state.backup.get() {
        backup.stop(BACKUP_GRACE).await;
    }
    state.pool.shutdown(SHUTDOWN_GRACE).await;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Accepts connections and serves them until a future resolves.
struct Acceptor<'a> {
    listener: &'a TcpListener,
    http: &'a hyper::server::conn::http1::Builder,
    graceful: &'a GracefulShutdown,
    app: &'a Router,
}

impl Acceptor<'_> {
    /// Serves every connection accepted before `stop` resolves. Accept errors (e.g. out of fds)
    /// are logged and retried after a short pause.
    async fn until(&self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, _) = match accepted {
                        Ok(conn) => conn,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let svc = TowerToHyperService::new(self.app.clone());
                    let conn = self
                        .graceful
                        .watch(self.http.serve_connection(TokioIo::new(stream), svc));
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                () = &mut stop => return,
            }
        }
    }
}
