//! Serving HTTP (1.1 and 2) on accepted connections with hyper, with a
//! header-read timeout (a client that sends half its headers and stalls is
//! cut) and graceful shutdown that waits for in-flight requests.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Conn;

/// Timeouts of the HTTP port.
#[derive(Debug, Clone, Copy)]
pub struct HttpTimeouts {
    /// Time to receive a request's headers.
    pub header_read: Duration,
}

/// Serves `router` on every connection `rx` yields until `shutdown`, then
/// lets in-flight requests finish (up to `grace`).
pub async fn serve_http(
    mut rx: mpsc::Receiver<Conn>,
    router: Router,
    timeouts: HttpTimeouts,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    loop {
        let conn = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = rx.recv() => match next {
                Some(c) => c,
                None => break,
            },
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(conn), service);
        let watched = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!("HTTP connection ended: {e}");
            }
        });
    }
    drop(rx);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after the grace period");
    }
}
