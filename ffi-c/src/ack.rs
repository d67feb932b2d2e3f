//! Acknowledgements both ways: `polysio_ack` answers an event the peer sent with an ack
//! request; `polysio_ack_cb` receives the answer to an event this side emitted with one.

use std::ffi::c_void;
use std::sync::{Arc, Mutex, Weak};

use polysio::Value;

use crate::dispatch::Dispatch;
use crate::error::{
    check_out, code_of, ffi, polysio_result, polysio_result::*, set_last_error, write_out, Error,
};
use crate::handle::{self, kind, Borrowed};
use crate::payload::{self, polysio_payload};

/// The pending answer to an event the peer emitted with an acknowledgement request. Passed
/// (borrowed) to event callbacks, and to `polysio_server_side_cb` when the other node waits for
/// an answer (`serverSideEmitWithAck`); answer it with `polysio_ack_send`, during the callback
/// or, after `polysio_ack_clone`, later from any thread.
#[allow(non_camel_case_types)]
pub struct polysio_ack {
    _private: [u8; 0],
}
kind!(polysio_ack, AckObj, Ack, "polysio_ack");

/// Receives the answer to an emit with acknowledgement: `result` is `POLYSIO_OK` and `args` the
/// peer's ack arguments (borrowed for the call), or `POLYSIO_ERR_TIMEOUT` /
/// `POLYSIO_ERR_CLOSED` (or another error) with `args` NULL; `polysio_last_error` then reads
/// the error's message during the call. Called exactly once, unless the server or client is
/// freed first (then never). For a broadcast, `args` holds one argument per socket that
/// answered: the array of that socket's ack arguments; for
/// `polysio_namespace_server_side_emit_with_ack`, one argument per other node: its answer.
#[allow(non_camel_case_types)]
pub type polysio_ack_cb = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        result: polysio_result,
        args: *const polysio_payload,
    ),
>;

pub(crate) enum Responder {
    Server(polysio::server::AckSender),
    Client(polysio::client::AckResponder),
    /// A `serverSideEmitWithAck` from another node: one value goes back.
    ServerSide(polysio::server::ServerSideAck),
}

pub struct AckObj {
    responder: Mutex<Option<Responder>>,
}

impl AckObj {
    pub(crate) fn new(r: Responder) -> Arc<AckObj> {
        Arc::new(AckObj {
            responder: Mutex::new(Some(r)),
        })
    }
}

/// Registers an ack responder for the duration of a callback (NULL when there is none).
pub(crate) fn borrowed(r: Option<Responder>) -> Option<Borrowed> {
    r.map(|r| Borrowed::new::<polysio_ack>(AckObj::new(r)))
}

/// Sends the acknowledgement with `args` (NULL: no arguments). Only the first answer is sent: a
/// second one is `POLYSIO_ERR_INVALID_ARGUMENT`; after the socket disconnected,
/// `POLYSIO_ERR_CLOSED`. The answer to another node's `serverSideEmitWithAck` is one value, as
/// socket.io's: the first argument of `args` (null when there is none).
#[no_mangle]
pub extern "C" fn polysio_ack_send(
    ack: *const polysio_ack,
    args: *const polysio_payload,
) -> polysio_result {
    ffi(|| {
        let a = handle::get(ack)?;
        let args = payload::args_of(args)?;
        let r = a
            .responder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| Error::invalid("this acknowledgement was already sent"))?;
        match r {
            Responder::Server(s) => s.send(args)?,
            Responder::Client(c) => c.send(args)?,
            Responder::ServerSide(s) => s.send(args.into_iter().next().unwrap_or(Value::Null)),
        }
        Ok(())
    })
}

/// A new handle to the same pending acknowledgement, owned by the caller (free it with
/// `polysio_ack_free`), to answer after the callback returned.
#[no_mangle]
pub extern "C" fn polysio_ack_clone(
    ack: *const polysio_ack,
    out: *mut *mut polysio_ack,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let a = handle::get(ack)?;
        write_out(out, handle::ptr_of(handle::insert::<polysio_ack>(a)));
        Ok(())
    })
}

/// Frees a handle made by `polysio_ack_clone` (an unanswered ack is simply never answered).
#[no_mangle]
pub extern "C" fn polysio_ack_free(ack: *mut polysio_ack) -> polysio_result {
    ffi(|| handle::remove(ack).map(drop))
}

/// A C callback and its user data, sent to library threads.
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub *mut c_void);
// SAFETY: the header's threading contract makes the C side responsible for `user_data` being
// usable from the library's threads.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

/// The completion of one emit with acknowledgement: calls the C callback exactly once through
/// the owner's dispatcher; if the core drops it unanswered, reports `POLYSIO_ERR_CLOSED`.
pub(crate) struct AckCall {
    cb: Option<(
        unsafe extern "C" fn(*mut c_void, polysio_result, *const polysio_payload),
        UserData,
    )>,
    dispatch: Weak<Dispatch>,
}

impl AckCall {
    pub fn new(cb: polysio_ack_cb, user_data: *mut c_void, dispatch: &Arc<Dispatch>) -> AckCall {
        AckCall {
            cb: cb.map(|f| (f, UserData(user_data))),
            dispatch: Arc::downgrade(dispatch),
        }
    }

    fn fire(&mut self, r: polysio::Result<Vec<Value>>, later: bool) {
        let Some((f, ud)) = self.cb.take() else {
            return;
        };
        let Some(d) = self.dispatch.upgrade() else {
            return;
        };
        let job = move || {
            let ud = ud;
            match r {
                Ok(args) => {
                    let p = payload::borrowed(args);
                    // SAFETY: a C callback with the arguments its type documents.
                    unsafe { f(ud.0, POLYSIO_OK, p.ptr()) }
                }
                Err(e) => {
                    // The callback may read the message with `polysio_last_error`.
                    set_last_error(e.to_string());
                    // SAFETY: as above.
                    unsafe { f(ud.0, code_of(&e), std::ptr::null()) }
                }
            }
        };
        if later {
            d.deliver_later(job)
        } else {
            d.deliver(job)
        }
    }

    pub fn complete(mut self, r: polysio::Result<Vec<Value>>) {
        self.fire(r, false)
    }

    /// Drops it without calling the C callback (the emit failed and said so).
    pub fn disarm(mut self) {
        self.cb = None;
    }
}

impl Drop for AckCall {
    fn drop(&mut self) {
        self.fire(Err(polysio::Error::Closed), true)
    }
}
