//! Core errors as the Python exceptions of `polysio.exceptions` (defined in Python, so that the
//! pure-Python layer and the native module raise the very same classes).

use pyo3::prelude::*;

use crate::convert::PyValue;

pyo3::import_exception!(polysio.exceptions, SocketIOError);
pyo3::import_exception!(polysio.exceptions, ConnectionError);
pyo3::import_exception!(polysio.exceptions, ConnectionRefusedError);
pyo3::import_exception!(polysio.exceptions, TimeoutError);
pyo3::import_exception!(polysio.exceptions, DisconnectedError);
pyo3::import_exception!(polysio.exceptions, InvalidArgumentError);
pyo3::import_exception!(polysio.exceptions, BufferFullError);
pyo3::import_exception!(polysio.exceptions, ShutdownError);
pyo3::import_exception!(polysio.exceptions, BadNamespaceError);

/// Converts a core error into the matching Python exception.
pub(crate) trait IntoPyErr {
    /// The Python exception for this error.
    fn into_py_err(self) -> PyErr;
}

impl IntoPyErr for polysio::Error {
    fn into_py_err(self) -> PyErr {
        use polysio::Error as E;
        let msg = self.to_string();
        match self {
            E::Closed => DisconnectedError::new_err(msg),
            E::Timeout(_) => TimeoutError::new_err(msg),
            E::ConnectRefused { message, data } => match data {
                Some(d) => ConnectionRefusedError::new_err((message, PyValue(d))),
                None => ConnectionRefusedError::new_err((message,)),
            },
            E::Transport(_) | E::Tls(_) => ConnectionError::new_err(msg),
            E::InvalidArgument(m) => InvalidArgumentError::new_err(m),
            E::BufferFull(_) => BufferFullError::new_err(msg),
            _ => SocketIOError::new_err(msg),
        }
    }
}

/// `Result<T, polysio::Error>` to `PyResult<T>`.
pub(crate) trait ResultExt<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> ResultExt<T> for polysio::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(IntoPyErr::into_py_err)
    }
}
