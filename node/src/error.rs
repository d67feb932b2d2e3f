//! Errors thrown into JavaScript: an `Error` whose `code` is one of the stable strings below.

use napi::Status;

/// The stable `code` of every error this module throws or rejects with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// A value of the wrong type (a BigInt, a Symbol as event name...).
    InvalidArgType,
    /// A value of the right type that cannot be used (a reserved event name, a bad URL, a
    /// circular object...).
    InvalidArgValue,
    /// The socket, client or server is closed.
    Closed,
    /// An acknowledgement did not arrive in time.
    Timeout,
    /// A payload exceeded a limit.
    TooLarge,
    /// A peer sent something that could not be decoded.
    Parse,
    /// A network-level failure.
    Transport,
    /// TLS failed: a certificate not trusted, a certificate or key that cannot be read.
    Tls,
    /// The server refused the namespace connection.
    ConnectRefused,
    /// The client's offline buffer is full.
    BufferFull,
    /// Binding a port failed (in use, no permission...).
    Listen,
    /// The runtime could not be started, or was configured too late.
    Runtime,
    /// A failure inside the Node-API layer itself.
    Napi,
}

impl Code {
    /// The string JavaScript sees as `error.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArgType => "ERR_INVALID_ARG_TYPE",
            Code::InvalidArgValue => "ERR_INVALID_ARG_VALUE",
            Code::Closed => "ERR_CLOSED",
            Code::Timeout => "ERR_TIMEOUT",
            Code::TooLarge => "ERR_TOO_LARGE",
            Code::Parse => "ERR_PARSE",
            Code::Transport => "ERR_TRANSPORT",
            Code::Tls => "ERR_TLS",
            Code::ConnectRefused => "ERR_CONNECT_REFUSED",
            Code::BufferFull => "ERR_BUFFER_FULL",
            Code::Listen => "ERR_LISTEN",
            Code::Runtime => "ERR_RUNTIME",
            Code::Napi => "ERR_NAPI",
        }
    }
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<Status> for Code {
    fn from(_: Status) -> Self {
        Code::Napi
    }
}

/// An error with a stable code.
pub type Error = napi::Error<Code>;
/// The result of every exported function.
pub type Result<T> = std::result::Result<T, Error>;

/// Builds an error.
pub fn err(code: Code, msg: impl Into<String>) -> Error {
    napi::Error::new(code, msg.into())
}

/// Converts core errors (and Node-API ones) into coded errors.
pub trait IntoJsError<T> {
    /// The coded error.
    fn js(self) -> Result<T>;
}

impl<T> IntoJsError<T> for std::result::Result<T, polysio::Error> {
    fn js(self) -> Result<T> {
        self.map_err(core_error)
    }
}

impl<T> IntoJsError<T> for napi::Result<T> {
    fn js(self) -> Result<T> {
        self.map_err(|e| err(Code::Napi, e.reason.clone()))
    }
}

/// The code of a core error.
pub fn core_code(e: &polysio::Error) -> Code {
    use polysio::Error as E;
    match e {
        E::Parse(_) => Code::Parse,
        E::TooLarge(_) => Code::TooLarge,
        E::Closed => Code::Closed,
        E::Timeout(_) => Code::Timeout,
        E::ConnectRefused { .. } => Code::ConnectRefused,
        E::Transport(_) => Code::Transport,
        E::Tls(_) => Code::Tls,
        E::InvalidArgument(_) => Code::InvalidArgValue,
        E::BufferFull(_) => Code::BufferFull,
        _ => Code::Transport,
    }
}

/// A core error as a coded error. Timeouts read as socket.io's ("operation has timed out").
pub fn core_error(e: polysio::Error) -> Error {
    let msg = match &e {
        polysio::Error::Timeout(_) => "operation has timed out".to_owned(),
        other => other.to_string(),
    };
    err(core_code(&e), msg)
}
