//! [`Conn`]: a plain or TLS connection behind one type, as hyper and tonic
//! want one stream type per listener.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use std::future::Future;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::server::TlsStream;

/// The transport under a connection.
pub enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An accepted connection; it counts as open (against `max_connections`)
/// until dropped.
pub struct Conn {
    io: Io,
    peer: SocketAddr,
    _open: OwnedSemaphorePermit,
    // Set by the first read that returns bytes: a connection that never
    // sends any is closed at the header deadline (see `serve_http`).
    spoke: Arc<AtomicBool>,
    /// When set, reads fail once it fires before the first byte came.
    silence: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Conn {
    /// Wraps an accepted transport.
    pub fn new(io: Io, peer: SocketAddr, open: OwnedSemaphorePermit) -> Self {
        Self {
            io,
            peer,
            _open: open,
            spoke: Arc::new(AtomicBool::new(false)),
            silence: None,
        }
    }

    /// Makes reads fail (which ends the connection) when the peer has sent
    /// nothing `after` from now. For servers, like tonic's HTTP/2, that
    /// wait for a client's first bytes without a deadline: a client that
    /// connects and stays silent would hold a `max_connections` slot for
    /// ever. Needs a Tokio runtime.
    pub fn with_first_byte_deadline(mut self, after: Duration) -> Self {
        self.silence = Some(Box::pin(tokio::time::sleep(after)));
        self
    }

    /// Becomes true once the peer has sent a byte (after TLS, a byte of
    /// the request).
    pub fn spoke(&self) -> Arc<AtomicBool> {
        self.spoke.clone()
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if buf.filled().len() > before {
            this.spoke.store(true, Ordering::Relaxed);
            this.silence = None;
        } else if polled.is_pending()
            && let Some(deadline) = this.silence.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            this.silence = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer sent nothing before the deadline",
            )));
        }
        polled
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// What tonic records about a connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        ConnInfo { peer: self.peer() }
    }
}
