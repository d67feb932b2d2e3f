//! The ack requests JavaScript owes. Each event that asks for an ack reaches JavaScript with an
//! id (see `dispatch.rs`); the JavaScript layer answers with [`ack`], or, when the handler's ack
//! function was garbage-collected unanswered, gives the request up with [`drop_ack`].
//!
//! One table for the process (ids are unique across JavaScript realms), only touched by
//! JavaScript threads; plain functions rather than methods, which napi-rs calls with less glue.

use std::sync::Mutex;

use napi::bindgen_prelude::Unknown;
use napi::{Env, JsValue};
use napi_derive::napi;
use polysio::client::AckResponder;
use polysio::server::AckSender;
use rustc_hash::FxHashMap;

use crate::convert::args_from_js;
use crate::error::{core_error, Result};

/// Who asked for the ack.
pub enum Asker {
    /// A client, answered by a server socket.
    Client(AckSender),
    /// A server, answered by a client socket.
    Server(AckResponder),
}

struct Pending {
    last: u64,
    askers: Option<FxHashMap<u64, Asker>>,
}

static PENDING: Mutex<Pending> = Mutex::new(Pending {
    last: 0,
    askers: None,
});

/// Keeps `asker` until JavaScript answers; returns its id (0 for none).
pub(crate) fn keep(asker: Option<Asker>) -> u64 {
    let Some(a) = asker else { return 0 };
    let Ok(mut p) = PENDING.lock() else { return 0 };
    // 2^53 ids (JavaScript numbers) are never used up.
    p.last += 1;
    let id = p.last;
    p.askers
        .get_or_insert_with(FxHashMap::default)
        .insert(id, a);
    id
}

fn take(id: f64) -> Option<Asker> {
    PENDING.lock().ok()?.askers.as_mut()?.remove(&(id as u64))
}

/// Answers the ack request `id` with `args` (an array). Returns false when it was already
/// answered or dropped; an ack for a peer that is gone is dropped silently (true). Throws when
/// `args` cannot be sent (the request is over all the same).
#[napi]
pub fn ack(env: Env, id: f64, args: Unknown<'_>) -> Result<bool> {
    // Taken first: a reply that cannot be converted ends the request too (JavaScript calls
    // once per request).
    let asker = take(id);
    let args = unsafe { args_from_js(env.raw(), args.raw())? };
    let Some(asker) = asker else {
        return Ok(false);
    };
    let sent = match asker {
        Asker::Client(a) => a.send(args),
        Asker::Server(a) => a.send(args),
    };
    match sent {
        Ok(()) | Err(polysio::Error::Closed) => Ok(true),
        Err(e) => Err(core_error(e)),
    }
}

/// Gives up the ack request `id` unanswered (its function was garbage-collected).
#[napi]
pub fn drop_ack(id: f64) {
    drop(take(id));
}

/// How many ack requests JavaScript still owes (diagnostics and tests).
#[napi]
pub fn pending_acks() -> u32 {
    PENDING
        .lock()
        .ok()
        .and_then(|p| p.askers.as_ref().map(|a| a.len() as u32))
        .unwrap_or(0)
}
