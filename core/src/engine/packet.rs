//! Engine.IO v4 packets and the HTTP long-polling payload codec. Pure functions, no I/O.
//!
//! Outgoing packets are held as [`Frame`]s already in WebSocket wire form (a text frame carries
//! its packet-type digit, a binary frame is a raw message), so one encoded frame can be queued to
//! many sockets without copying.

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::error::{Error, Result};

/// The separator between packets in a polling payload.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// Engine.IO packet types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketType {
    /// `0`: handshake.
    Open,
    /// `1`: close the session.
    Close,
    /// `2`: heartbeat ping (or `2probe`).
    Ping,
    /// `3`: heartbeat pong (or `3probe`).
    Pong,
    /// `4`: a message.
    Message,
    /// `5`: upgrade done.
    Upgrade,
    /// `6`: no-op (ends a pending poll during the upgrade).
    Noop,
}

impl PacketType {
    /// The digit on the wire.
    pub fn as_char(self) -> char {
        (b'0' + self as u8) as char
    }
    /// Parses the leading digit.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            b'0' => Self::Open,
            b'1' => Self::Close,
            b'2' => Self::Ping,
            b'3' => Self::Pong,
            b'4' => Self::Message,
            b'5' => Self::Upgrade,
            b'6' => Self::Noop,
            _ => return None,
        })
    }
}

/// One outgoing Engine.IO packet in WebSocket wire form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A text packet including its type digit, e.g. `"4hello"` or `"2"`.
    Text(Utf8Bytes),
    /// A binary message (type 4 implied).
    Binary(Bytes),
}

impl Frame {
    /// A text packet of `kind` with `data` after the digit.
    pub fn text(kind: PacketType, data: &str) -> Frame {
        let mut s = String::with_capacity(1 + data.len());
        s.push(kind.as_char());
        s.push_str(data);
        Frame::Text(s.into())
    }
    /// A text message (`4` + data).
    pub fn message(data: &str) -> Frame {
        Frame::text(PacketType::Message, data)
    }
    /// Size on the wire, for buffer accounting.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(t) => t.len(),
            Frame::Binary(b) => b.len(),
        }
    }
    /// True when the frame is empty (never for a valid packet).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One incoming Engine.IO packet, borrowing from the received data where it can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// `0` with the handshake JSON (client side).
    Open(&'a str),
    /// `1`.
    Close,
    /// `2`, with `probe` or empty data.
    Ping(&'a str),
    /// `3`, with `probe` or empty data.
    Pong(&'a str),
    /// `4` text message.
    Text(&'a str),
    /// Binary message.
    Binary(Bytes),
    /// `5`.
    Upgrade,
    /// `6`.
    Noop,
}

impl Packet<'_> {
    /// The text packet as a [`Frame`] to send (used by the client for its own packets).
    pub fn to_frame(&self) -> Frame {
        match self {
            Packet::Open(d) => Frame::text(PacketType::Open, d),
            Packet::Close => Frame::text(PacketType::Close, ""),
            Packet::Ping(d) => Frame::text(PacketType::Ping, d),
            Packet::Pong(d) => Frame::text(PacketType::Pong, d),
            Packet::Text(d) => Frame::text(PacketType::Message, d),
            Packet::Binary(b) => Frame::Binary(b.clone()),
            Packet::Upgrade => Frame::text(PacketType::Upgrade, ""),
            Packet::Noop => Frame::text(PacketType::Noop, ""),
        }
    }
}

/// Decodes a text packet (a WebSocket text frame or one polling record that is not `b...`).
pub fn decode_text(s: &str) -> Result<Packet<'_>> {
    let first = *s
        .as_bytes()
        .first()
        .ok_or_else(|| Error::Parse("empty packet".into()))?;
    let kind = PacketType::from_byte(first)
        .ok_or_else(|| Error::Parse(format!("unknown packet type {:?}", first as char)))?;
    // The type digit is ASCII, so index 1 is a char boundary (not so before the check: `é`).
    let data = &s[1..];
    Ok(match kind {
        PacketType::Open => Packet::Open(data),
        PacketType::Close => Packet::Close,
        PacketType::Ping => Packet::Ping(data),
        PacketType::Pong => Packet::Pong(data),
        PacketType::Message => Packet::Text(data),
        PacketType::Upgrade => Packet::Upgrade,
        PacketType::Noop => Packet::Noop,
    })
}

/// Decodes a polling payload: records separated by `\x1e`, binary records as `b` + base64.
pub fn decode_payload(body: &str) -> Result<Vec<Packet<'_>>> {
    if body.is_empty() {
        return Err(Error::Parse("empty payload".into()));
    }
    body.split(RECORD_SEPARATOR as char)
        .map(|rec| {
            if let Some(b64) = rec.strip_prefix('b') {
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map(|v| Packet::Binary(Bytes::from(v)))
                    .map_err(|e| Error::Parse(format!("bad base64: {e}")))
            } else {
                decode_text(rec)
            }
        })
        .collect()
}

/// Encodes frames as one polling payload.
pub fn encode_payload<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> Bytes {
    let mut out = BytesMut::new();
    for (i, f) in frames.into_iter().enumerate() {
        if i > 0 {
            out.put_u8(RECORD_SEPARATOR);
        }
        match f {
            Frame::Text(t) => out.extend_from_slice(t.as_bytes()),
            Frame::Binary(b) => {
                out.put_u8(b'b');
                let start = out.len();
                let n = base64::encoded_len(b.len(), true).unwrap_or(0);
                out.resize(start + n, 0);
                let w = base64::engine::general_purpose::STANDARD
                    .encode_slice(b, &mut out[start..])
                    .unwrap_or(0);
                out.truncate(start + w);
            }
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn payload_examples() {
        let frames = vec![
            Frame::message("hello"),
            Frame::Binary(Bytes::from_static(&[1, 2, 3, 4])),
            Frame::text(PacketType::Ping, ""),
        ];
        let p = encode_payload(&frames);
        assert_eq!(&p[..], b"4hello\x1ebAQIDBA==\x1e2");
        let back = decode_payload(std::str::from_utf8(&p).unwrap()).unwrap();
        assert_eq!(
            back,
            vec![
                Packet::Text("hello"),
                Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])),
                Packet::Ping("")
            ]
        );
    }

    #[test]
    fn malformed() {
        assert!(decode_payload("").is_err());
        assert!(decode_payload("abc").is_err());
        assert!(decode_payload("4a\x1e").is_err());
        assert!(decode_payload("b!!!").is_err());
        assert!(decode_text("9").is_err());
        assert!(
            decode_text("é").is_err(),
            "a multi-byte first char is an error, not a panic"
        );
        assert!(decode_payload("4a\x1eé").is_err());
    }

    fn frame() -> impl Strategy<Value = Frame> {
        prop_oneof![
            (0u8..7, "[^\x1e]*").prop_map(|(k, s)| {
                // close, upgrade and noop carry no data
                let s = if matches!(k, 1 | 5 | 6) {
                    String::new()
                } else {
                    s
                };
                Frame::text(PacketType::from_byte(b'0' + k).unwrap(), &s)
            }),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(|v| Frame::Binary(v.into())),
        ]
    }

    proptest! {
        #[test]
        fn payload_roundtrip(frames in proptest::collection::vec(frame(), 1..8)) {
            let p = encode_payload(&frames);
            let text = std::str::from_utf8(&p).unwrap();
            let back: Vec<Frame> = decode_payload(text).unwrap().iter().map(Packet::to_frame).collect();
            prop_assert_eq!(back, frames);
        }
    }
}
