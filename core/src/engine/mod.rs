//! Engine.IO v4: packet codecs, the protocol rules ([`rules`]), and the server transports
//! (long-polling, WebSocket, upgrade) behind one host boundary ([`host`]) that every way of
//! serving goes through: polysio's own hyper listener, the tower layer, and the bindings' hosts
//! (ASGI, aiohttp, Node's http.Server, C servers).

pub mod config;
pub(crate) mod gate;
pub mod host;
mod hyper_host;
mod outbox;
pub mod packet;
pub mod rules;
pub mod server;
pub mod socket;
mod websocket;
mod ws_io;

use std::net::SocketAddr;

pub use config::{
    CookieConfig, CorsConfig, CorsOrigin, EngineConfig, ListenerConfig, TransportType,
};
pub use gate::Held;
pub use server::EngineServer;
pub(crate) use socket::FlushBatch;
pub use socket::{CloseReason, ConnHandler, Cork, EngineHandler, EngineSocket, Message};

/// The HTTP request that opened a session, as handlers see it.
#[derive(Clone, Debug)]
pub struct Handshake {
    /// Request headers.
    pub headers: http::HeaderMap,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// The request URL (path and query).
    pub url: String,
    /// The peer's address.
    pub address: Option<SocketAddr>,
    /// When the handshake happened, in ms since the Unix epoch.
    pub issued: u64,
    /// Whether the connection was over TLS.
    pub secure: bool,
}

impl Handshake {
    /// The first query value named `key`.
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}
