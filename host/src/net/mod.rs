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
