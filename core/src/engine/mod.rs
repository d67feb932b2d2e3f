//! Engine.IO v4: packet codecs, and the server transports (long-polling, WebSocket, upgrade).

pub mod packet;
