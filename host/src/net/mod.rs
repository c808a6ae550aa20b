//! The listeners: accepting TCP connections, optionally through TLS (with a
//! handshake timeout and a cap on handshakes in flight), capping open
//! connections, and serving HTTP with header and idle timeouts so a client
//! that stalls cannot hold the daemon. Both ports use it: the HTTP port
//! through hyper, the gRPC port by handing the accepted streams to tonic.

mod accept;
mod conn;
mod serve;
mod tls;

pub use accept::{AcceptLimits, spawn_acceptor};
pub use conn::Conn;
pub use serve::{HttpTimeouts, serve_http};
pub use tls::{TlsError, load_server_config};

/// An error and its sources on one line (reqwest and hyper put the cause,
/// e.g. "connection refused", in the source chain, not the message).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
