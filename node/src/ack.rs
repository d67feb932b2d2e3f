//! The ack function handed to JavaScript handlers, on both sides.

use std::sync::Mutex;

use napi::bindgen_prelude::Unknown;
use napi::{Env, JsValue};
use napi_derive::napi;
use polysio::client::AckResponder;
use polysio::server::AckSender;

use crate::convert::args_from_js;
use crate::error::{core_error, Result};

/// Who asked for the ack.
pub enum Asker {
    /// A client, answered by a server socket.
    Client(AckSender),
    /// A server, answered by a client socket.
    Server(AckResponder),
}

/// Answers an ack request: the function a handler gets as last argument calls `send`.
#[napi]
pub struct NativeAck {
    asker: Mutex<Option<Asker>>,
}

impl NativeAck {
    pub(crate) fn new(asker: Asker) -> Self {
        NativeAck {
            asker: Mutex::new(Some(asker)),
        }
    }
}

#[napi]
impl NativeAck {
    /// Sends the ack with `args` (an array). Later calls do nothing and return false; an ack
    /// for a peer that is gone is dropped silently (true).
    #[napi]
    pub fn send(&self, env: Env, args: Unknown<'_>) -> Result<bool> {
        let args = unsafe { args_from_js(env.raw(), args.raw())? };
        let Some(asker) = self.asker.lock().ok().and_then(|mut a| a.take()) else {
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
}
