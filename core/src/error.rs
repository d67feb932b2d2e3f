//! The one error type of the core.

use std::time::Duration;

/// Everything that can go wrong in polysio, server or client side.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A packet from the peer could not be decoded.
    #[error("parse error: {0}")]
    Parse(String),
    /// A payload exceeded a configured limit (`maxHttpBufferSize`, attachment count, buffer size).
    #[error("payload too large: {0}")]
    TooLarge(String),
    /// The socket or connection is closed; nothing more can be sent on it.
    #[error("socket closed")]
    Closed,
    /// An acknowledgement did not arrive in time.
    #[error("operation has timed out after {0:?}")]
    Timeout(Duration),
    /// The server refused the namespace connection (CONNECT_ERROR); the message and optional data.
    #[error("connection refused: {message}")]
    ConnectRefused {
        /// The `message` field of the CONNECT_ERROR packet.
        message: String,
        /// The `data` field, if any.
        data: Option<crate::Value>,
    },
    /// An I/O or transport level failure (socket, HTTP, WebSocket).
    #[error("transport error: {0}")]
    Transport(String),
    /// The caller passed something the API cannot use (bad event name, bad option...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A bounded buffer is full (the client's offline send buffer).
    #[error("buffer full: {0}")]
    BufferFull(String),
    /// TLS failed: the server's certificate is not trusted (the reason says why), a
    /// certificate or key could not be read, or the handshake failed.
    #[error("TLS error: {0}")]
    Tls(String),
    /// A cluster adapter could not do what was asked: Redis cannot be reached, or a request to
    /// the other nodes failed (the reason says which).
    #[error("adapter error: {0}")]
    Adapter(String),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Transport(e.to_string())
    }
}

/// Shorthand for `Result<T, polysio::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
