//! Result codes, the thread-local last error message, the panic boundary, and the checks every
//! entry point makes on the pointers it is given.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What every fallible function returns. `POLYSIO_OK` is 0; on any other code a message is
/// available from `polysio_last_error()` on the same thread.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum polysio_result {
    /// Success.
    POLYSIO_OK = 0,
    /// A required pointer argument was NULL.
    POLYSIO_ERR_NULL_ARGUMENT = 1,
    /// The handle is not a polysio handle of the expected type.
    POLYSIO_ERR_INVALID_HANDLE = 2,
    /// The handle was freed, or the socket / connection / server it names is closed.
    POLYSIO_ERR_CLOSED = 3,
    /// A string argument is not valid UTF-8.
    POLYSIO_ERR_INVALID_UTF8 = 4,
    /// A JSON argument does not parse.
    POLYSIO_ERR_INVALID_JSON = 5,
    /// An argument is out of range or unusable (bad placeholder index, reserved event name,
    /// zero timeout, read-only payload, ack already sent...).
    POLYSIO_ERR_INVALID_ARGUMENT = 6,
    /// Nothing at that JSON pointer / index / id.
    POLYSIO_ERR_NOT_FOUND = 7,
    /// The value at that JSON pointer has another type.
    POLYSIO_ERR_WRONG_TYPE = 8,
    /// The caller's buffer is too small; the needed length was written.
    POLYSIO_ERR_BUFFER_TOO_SMALL = 9,
    /// An acknowledgement did not arrive in time.
    POLYSIO_ERR_TIMEOUT = 10,
    /// The client's offline send buffer is full.
    POLYSIO_ERR_BUFFER_FULL = 11,
    /// The server refused the namespace connection.
    POLYSIO_ERR_CONNECT_REFUSED = 12,
    /// A network or operating system error (bind failed, transport error...).
    POLYSIO_ERR_IO = 13,
    /// A bug inside polysio was caught at the boundary; the call had no effect or only part of it.
    POLYSIO_ERR_PANIC = 14,
    /// TLS failed: the server's certificate is not trusted (the message says why), or a
    /// certificate or key does not load.
    POLYSIO_ERR_TLS = 15,
}

use polysio_result::*;

/// An error on its way to the caller: a code and a message.
#[derive(Debug)]
pub(crate) struct Error {
    pub code: polysio_result,
    pub message: String,
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: polysio_result, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(POLYSIO_ERR_INVALID_ARGUMENT, message)
    }
    pub fn null(what: &str) -> Error {
        Error::new(POLYSIO_ERR_NULL_ARGUMENT, format!("{what} is NULL"))
    }
}

impl From<polysio::Error> for Error {
    fn from(e: polysio::Error) -> Error {
        use polysio::Error as E;
        let code = match &e {
            E::Closed => POLYSIO_ERR_CLOSED,
            E::Timeout(_) => POLYSIO_ERR_TIMEOUT,
            E::ConnectRefused { .. } => POLYSIO_ERR_CONNECT_REFUSED,
            E::Transport(_) => POLYSIO_ERR_IO,
            E::Tls(_) => POLYSIO_ERR_TLS,
            E::BufferFull(_) => POLYSIO_ERR_BUFFER_FULL,
            _ => POLYSIO_ERR_INVALID_ARGUMENT,
        };
        Error::new(code, e.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::new(POLYSIO_ERR_IO, e.to_string())
    }
}

/// The code a core error maps to, for callbacks that report one.
pub(crate) fn code_of(e: &polysio::Error) -> polysio_result {
    Error::from(e.clone()).code
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

pub(crate) fn set_last_error(message: String) {
    let _ = LAST_ERROR.try_with(|l| *l.borrow_mut() = message);
}

/// The panic boundary of every entry point: runs `f`, turns an `Err` or a panic into a code and
/// the thread's last error message.
pub(crate) fn ffi(f: impl FnOnce() -> Result<()>) -> polysio_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => POLYSIO_OK,
        Ok(Err(e)) => {
            set_last_error(e.message);
            e.code
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(format!("internal error (panic): {what}"));
            POLYSIO_ERR_PANIC
        }
    }
}

/// A NUL-terminated UTF-8 string argument.
pub(crate) fn cstr<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::null(what));
    }
    // SAFETY: the caller passes a NUL-terminated string (the documented contract).
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|_| {
        Error::new(
            POLYSIO_ERR_INVALID_UTF8,
            format!("{what} is not valid UTF-8"),
        )
    })
}

/// Like [`cstr`], NULL allowed.
pub(crate) fn opt_cstr<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        cstr(p, what).map(Some)
    }
}

/// A `(ptr, len)` byte buffer argument; NULL is allowed when `len` is 0.
pub(crate) fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::null(what));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!("{what}: length too large")));
    }
    // SAFETY: the caller passes `len` readable bytes at `p` (the documented contract).
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A `(ptr, len)` UTF-8 text argument.
pub(crate) fn text<'a>(p: *const c_char, len: usize, what: &str) -> Result<&'a str> {
    let b = bytes(p.cast(), len, what)?;
    std::str::from_utf8(b).map_err(|e| {
        Error::new(
            POLYSIO_ERR_INVALID_UTF8,
            format!("{what} is not valid UTF-8: {e}"),
        )
    })
}

/// Checks an out-parameter before any work is done.
pub(crate) fn check_out<T>(p: *mut T, what: &str) -> Result<()> {
    if p.is_null() {
        Err(Error::null(what))
    } else {
        Ok(())
    }
}

/// Writes an out-parameter checked by [`check_out`].
pub(crate) fn write_out<T>(p: *mut T, v: T) {
    if !p.is_null() {
        // SAFETY: checked non-NULL; the caller passes writable memory for a `T`.
        unsafe { p.write(v) }
    }
}

/// Copies `s` NUL-terminated into the caller's `(buf, len)`; `out_len` (nullable) gets the
/// length without the NUL. `POLYSIO_ERR_BUFFER_TOO_SMALL` when it does not fit.
pub(crate) fn copy_out(s: &str, buf: *mut c_char, len: usize, out_len: *mut usize) -> Result<()> {
    write_out(out_len, s.len());
    if buf.is_null() || len <= s.len() {
        return Err(Error::new(
            POLYSIO_ERR_BUFFER_TOO_SMALL,
            format!("buffer of {len} bytes too small: {} needed", s.len() + 1),
        ));
    }
    // SAFETY: `buf` has room for `len > s.len()` bytes (the caller's contract).
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
        *buf.add(s.len()) = 0;
    }
    Ok(())
}

/// Copies the calling thread's last error message (NUL-terminated, truncated to fit) into
/// `buf` of `len` bytes and returns the message's full length (without the NUL), like
/// `snprintf`. Returns 0 when the thread has seen no error. `buf` may be NULL when `len` is 0.
#[no_mangle]
pub extern "C" fn polysio_last_error(buf: *mut c_char, len: usize) -> usize {
    catch_unwind(|| {
        LAST_ERROR
            .try_with(|l| {
                let l = l.borrow();
                if !buf.is_null() && len > 0 {
                    let n = l.len().min(len - 1);
                    // SAFETY: `buf` has room for `len` bytes (the caller's contract).
                    unsafe {
                        std::ptr::copy_nonoverlapping(l.as_ptr(), buf.cast::<u8>(), n);
                        *buf.add(n) = 0;
                    }
                }
                l.len()
            })
            .unwrap_or(0)
    })
    .unwrap_or(0)
}

/// The name of a result code (`"POLYSIO_ERR_CLOSED"`...), a static string; `"POLYSIO_UNKNOWN"`
/// for a value that is not a code.
#[no_mangle]
pub extern "C" fn polysio_result_name(result: u32) -> *const c_char {
    let s: &'static CStr = match result {
        0 => c"POLYSIO_OK",
        1 => c"POLYSIO_ERR_NULL_ARGUMENT",
        2 => c"POLYSIO_ERR_INVALID_HANDLE",
        3 => c"POLYSIO_ERR_CLOSED",
        4 => c"POLYSIO_ERR_INVALID_UTF8",
        5 => c"POLYSIO_ERR_INVALID_JSON",
        6 => c"POLYSIO_ERR_INVALID_ARGUMENT",
        7 => c"POLYSIO_ERR_NOT_FOUND",
        8 => c"POLYSIO_ERR_WRONG_TYPE",
        9 => c"POLYSIO_ERR_BUFFER_TOO_SMALL",
        10 => c"POLYSIO_ERR_TIMEOUT",
        11 => c"POLYSIO_ERR_BUFFER_FULL",
        12 => c"POLYSIO_ERR_CONNECT_REFUSED",
        13 => c"POLYSIO_ERR_IO",
        14 => c"POLYSIO_ERR_PANIC",
        15 => c"POLYSIO_ERR_TLS",
        _ => c"POLYSIO_UNKNOWN",
    };
    s.as_ptr()
}
