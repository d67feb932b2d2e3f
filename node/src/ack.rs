//! The ack requests JavaScript owes. Each event that asks for an ack reaches JavaScript with an
//! id (see `dispatch.rs`); the JavaScript layer answers with [`ack`], or, when the handler's ack
//! function was garbage-collected unanswered, gives the request up with [`drop_ack`].
//!
//! One table for the process (ids are unique across JavaScript realms), only touched by
//! JavaScript threads; plain functions rather than methods, which napi-rs calls with less glue.

use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Another node of the cluster (`serverSideEmitWithAck`), answered with one value.
    Node(polysio::server::ServerSideAck),
}

/// The last id given (2^53 ids, JavaScript numbers, are never used up).
static LAST: AtomicU64 = AtomicU64::new(0);

static PENDING: Mutex<Option<FxHashMap<u64, Asker>>> = Mutex::new(None);

/// An id for `asker` (0 for none); it is kept by [`keep`] before JavaScript sees the id.
pub(crate) fn id_for(asker: &Option<Asker>) -> u64 {
    match asker {
        Some(_) => LAST.fetch_add(1, Ordering::Relaxed) + 1,
        None => 0,
    }
}

/// Keeps `askers` (by id) until JavaScript answers. Called on the JavaScript thread before it
/// sees the ids, so the runtime threads never take this lock.
pub(crate) fn keep(askers: Vec<(u64, Asker)>) {
    if askers.is_empty() {
        return;
    }
    if let Ok(mut p) = PENDING.lock() {
        p.get_or_insert_with(FxHashMap::default).extend(askers);
    }
}

fn take(id: f64) -> Option<Asker> {
    PENDING.lock().ok()?.as_mut()?.remove(&(id as u64))
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
        Asker::Node(a) => {
            a.send(args.into_iter().next().unwrap_or(polysio::Value::Null));
            Ok(())
        }
    };
    match sent {
        Ok(()) | Err(polysio::Error::Closed) => Ok(true),
        Err(e) => Err(core_error(e)),
    }
}

/// Answers the ack request `id` with `args`, the JSON text of an array without binary data
/// (`JSON.stringify` of the reply: one string crossing instead of a walk through every value).
/// Returns as [`ack`] does.
#[napi(ts_args_type = "id: number, args: string")]
pub fn ack_json(env: Env, id: f64, args: Unknown<'_>) -> Result<bool> {
    let asker = take(id);
    if unsafe { crate::convert::type_of(env.raw(), args.raw())? }
        != napi::sys::ValueType::napi_string
    {
        return Err(crate::error::err(
            crate::error::Code::InvalidArgType,
            "ack JSON must be a string",
        ));
    }
    let text = unsafe { crate::convert::get_string(env.raw(), args.raw())? };
    if !(text.starts_with('[') && text.ends_with(']')) {
        return Err(crate::error::err(
            crate::error::Code::InvalidArgValue,
            "ack JSON must be an array",
        ));
    }
    let Some(asker) = asker else {
        return Ok(false);
    };
    let sent = match asker {
        Asker::Client(a) => a.send_json(&text),
        Asker::Server(a) => match serde_json::from_str::<Vec<polysio::Value>>(&text) {
            Ok(args) => a.send(args),
            Err(e) => {
                return Err(crate::error::err(
                    crate::error::Code::InvalidArgValue,
                    format!("ack JSON is not an array: {e}"),
                ))
            }
        },
        Asker::Node(a) => match serde_json::from_str::<Vec<polysio::Value>>(&text) {
            Ok(args) => {
                a.send(args.into_iter().next().unwrap_or(polysio::Value::Null));
                Ok(())
            }
            Err(e) => {
                return Err(crate::error::err(
                    crate::error::Code::InvalidArgValue,
                    format!("ack JSON is not an array: {e}"),
                ))
            }
        },
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
        .and_then(|p| p.as_ref().map(|a| a.len() as u32))
        .unwrap_or(0)
}
