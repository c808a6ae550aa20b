//! Serving HTTP (1.1 and 2) on accepted connections with hyper, with a
//! header-read timeout (a client that sends half its headers and stalls is
//! cut) and graceful shutdown that waits for in-flight requests.

use std::sync::atomic::Ordering;
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
        let spoke = conn.spoke();
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(conn), service);
        let watched = graceful.watch(connection.into_owned());
        let silent_for = timeouts.header_read;
        tokio::spawn(async move {
            tokio::pin!(watched);
            // hyper's header deadline starts with the first bytes (it reads
            // them to choose HTTP/1 or 2): a client that connects and says
            // nothing would hold a `max_connections` slot for ever. Dropping
            // the connection closes it.
            let ended = tokio::select! {
                ended = &mut watched => Some(ended),
                () = tokio::time::sleep(silent_for) => None,
            };
            let ended = match ended {
                Some(ended) => ended,
                None if !spoke.load(Ordering::Relaxed) => {
                    tracing::debug!("closed a connection that sent nothing in {silent_for:?}");
                    return;
                }
                None => watched.await,
            };
            if let Err(e) = ended {
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
