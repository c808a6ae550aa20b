//! The accept loop: bounded open connections, TLS handshakes with a timeout
//! and a cap on how many run at once, accepted streams handed on through a
//! channel. Refusals are counted, never silent.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::Conn;
use super::conn::Io;
use crate::metrics::{Metrics, ReasonLabel};

/// Bounds of one listener.
#[derive(Debug, Clone, Copy)]
pub struct AcceptLimits {
    /// Open connections at most; more are closed at once.
    pub max_connections: usize,
    /// TLS handshakes in flight at most; more wait.
    pub max_handshakes: usize,
    /// A handshake not done by then is dropped.
    pub handshake_timeout: Duration,
}

/// Accepts on `listener` until `shutdown`, handing connections on. The
/// receiver end closes when the loop ends.
pub fn spawn_acceptor(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: AcceptLimits,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> mpsc::Receiver<Conn> {
    let (tx, rx) = mpsc::channel(64);
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let handshakes = Arc::new(Semaphore::new(limits.max_handshakes.max(1)));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off a bit.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = open.clone().try_acquire_owned() else {
                metrics.connections_refused(ConnRefusal::TooMany);
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            match &tls {
                None => {
                    if tx
                        .send(Conn::new(Io::Plain(stream), peer, permit))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Some(acceptor) => {
                    let (acceptor, tx, handshakes, metrics) = (
                        acceptor.clone(),
                        tx.clone(),
                        handshakes.clone(),
                        metrics.clone(),
                    );
                    tokio::spawn(async move {
                        let Ok(_slot) = handshakes.acquire_owned().await else {
                            return;
                        };
                        match tokio::time::timeout(
                            limits.handshake_timeout,
                            acceptor.accept(stream),
                        )
                        .await
                        {
                            Ok(Ok(s)) => {
                                let _ =
                                    tx.send(Conn::new(Io::Tls(Box::new(s)), peer, permit)).await;
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, "TLS handshake failed: {e}");
                                metrics.connections_refused(ConnRefusal::Handshake);
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                metrics.connections_refused(ConnRefusal::HandshakeTimeout);
                            }
                        }
                    });
                }
            }
        }
    });
    rx
}

/// Why a connection was closed before serving anything.
#[derive(Debug, Clone, Copy)]
pub enum ConnRefusal {
    TooMany,
    Handshake,
    HandshakeTimeout,
}

impl Metrics {
    /// Counts a connection closed before serving.
    pub fn connections_refused(&self, why: ConnRefusal) {
        let reason = match why {
            ConnRefusal::TooMany => "too_many_connections",
            ConnRefusal::Handshake => "tls_handshake_failed",
            ConnRefusal::HandshakeTimeout => "tls_handshake_timeout",
        };
        self.connections_refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }
}
