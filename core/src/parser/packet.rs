//! Socket.IO v5 packets: `<type>[<attachments>-][<nsp>,][<ack id>][JSON]`, with binary
//! attachments following as separate Engine.IO binary messages. Pure code, no I/O.

use bytes::Bytes;

use crate::engine::packet::Frame;
use crate::error::{Error, Result};
use crate::value::Value;

/// Event names the protocol reserves; a peer may not emit them.
pub const RESERVED_EVENTS: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// What a packet carries.
#[derive(Clone, Debug, PartialEq)]
pub enum PacketData {
    /// `0`: namespace connect; the client's auth payload or the server's `{"sid":...}` reply.
    Connect(Option<Value>),
    /// `1`: namespace disconnect.
    Disconnect,
    /// `2`/`5`: an event name and its arguments.
    Event(String, Vec<Value>),
    /// `3`/`6`: acknowledgement arguments.
    Ack(Vec<Value>),
    /// `4`: namespace connection refused (`{"message":...,"data":...}` or a string).
    ConnectError(Value),
}

/// One Socket.IO packet.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    /// The namespace, `/` by default.
    pub nsp: String,
    /// Ack id for EVENT (asks for an ack) and ACK packets.
    pub id: Option<u64>,
    /// The payload.
    pub data: PacketData,
}

impl Packet {
    /// An EVENT packet.
    pub fn event(nsp: &str, name: &str, args: Vec<Value>) -> Packet {
        Packet {
            nsp: nsp.to_owned(),
            id: None,
            data: PacketData::Event(name.to_owned(), args),
        }
    }
    /// Encodes the packet into Engine.IO message frames: one text frame (with the Engine.IO `4`
    /// prefix) followed by one binary frame per attachment.
    pub fn encode(&self) -> Vec<Frame> {
        let mut out = Vec::with_capacity(64);
        out.push(b'4');
        let mut att = Vec::new();
        let type_pos = out.len();
        out.push(b'0');
        let mut body = Vec::with_capacity(64);
        let kind = match &self.data {
            PacketData::Connect(v) => {
                if let Some(v) = v {
                    v.write_json(&mut body, &mut att);
                }
                0
            }
            PacketData::Disconnect => 1,
            PacketData::Event(name, args) => {
                body.push(b'[');
                let _ = serde_json::to_writer(&mut body, name.as_str());
                for a in args {
                    body.push(b',');
                    a.write_json(&mut body, &mut att);
                }
                body.push(b']');
                if att.is_empty() {
                    2
                } else {
                    5
                }
            }
            PacketData::Ack(args) => {
                Value::write_array(args, &mut body, &mut att);
                if att.is_empty() {
                    3
                } else {
                    6
                }
            }
            PacketData::ConnectError(v) => {
                v.write_json(&mut body, &mut att);
                4
            }
        };
        out[type_pos] = b'0' + kind;
        if !att.is_empty() {
            out.extend_from_slice(att.len().to_string().as_bytes());
            out.push(b'-');
        }
        write_tail(&mut out, &self.nsp, self.id, &body);
        // Only valid UTF-8 was written (JSON output and the namespace string).
        let text = String::from_utf8(out).unwrap_or_default();
        let mut frames = Vec::with_capacity(1 + att.len());
        frames.push(Frame::Text(text.into()));
        frames.extend(att.into_iter().map(Frame::Binary));
        frames
    }
}

impl Value {
    /// Writes `args` as a JSON array (bytes become placeholders collected in `att`).
    pub fn write_array(args: &[Value], out: &mut Vec<u8>, att: &mut Vec<Bytes>) {
        out.push(b'[');
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            a.write_json(out, att);
        }
        out.push(b']');
    }
}

/// Writes the namespace, the ack id and the JSON `body` of a packet after its type.
fn write_tail(out: &mut Vec<u8>, nsp: &str, id: Option<u64>, body: &[u8]) {
    if names(nsp) {
        out.extend_from_slice(nsp.as_bytes());
        if id.is_some() || !body.is_empty() {
            out.push(b',');
        }
    }
    if let Some(id) = id {
        out.extend_from_slice(id.to_string().as_bytes());
    }
    out.extend_from_slice(body);
}

/// Whether packets of namespace `nsp` name it (all but the main namespace's).
fn names(nsp: &str) -> bool {
    nsp != "/" && !nsp.is_empty()
}

/// The frame of an ACK packet whose arguments are JSON text already (`args_json`: a JSON array
/// without binary placeholders, written as is).
pub(crate) fn ack_frame(nsp: &str, id: u64, args_json: &str) -> Frame {
    use std::fmt::Write;
    let mut out = String::with_capacity(args_json.len() + nsp.len() + 24);
    out.push_str("43");
    if names(nsp) {
        out.push_str(nsp);
        out.push(',');
    }
    let _ = write!(out, "{id}");
    out.push_str(args_json);
    Frame::Text(out.into())
}

/// Reassembles packets from Engine.IO messages, binary attachments included.
#[derive(Debug)]
pub struct Decoder {
    max_attachments: usize,
    max_attachment_bytes: usize,
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    packet: Packet,
    expected: usize,
    attachments: Vec<Bytes>,
    /// Bytes of `attachments`.
    bytes: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_ATTACHMENTS)
    }
}

/// Attachments one packet may announce before it is refused as a parse error (10, as
/// socket.io-parser 4.2.6+, CVE-2026-33151).
pub const DEFAULT_MAX_ATTACHMENTS: usize = 10;

impl Decoder {
    /// A decoder refusing packets that announce more than `max_attachments` attachments.
    pub fn new(max_attachments: usize) -> Self {
        Decoder::with_limits(max_attachments, usize::MAX)
    }

    /// Like [`Decoder::new`], also refusing a packet whose attachments add up to more than
    /// `max_attachment_bytes` (a server passes its `maxHttpBufferSize`: one packet may not hold
    /// more than one message may).
    pub fn with_limits(max_attachments: usize, max_attachment_bytes: usize) -> Self {
        Decoder {
            max_attachments,
            max_attachment_bytes,
            pending: None,
        }
    }

    /// True while a binary packet waits for its attachments.
    pub fn is_waiting(&self) -> bool {
        self.pending.is_some()
    }

    /// Feeds a text message; returns a packet when one is complete.
    pub fn decode_text(&mut self, s: &str) -> Result<Option<Packet>> {
        if self.pending.is_some() {
            self.pending = None;
            return Err(Error::Parse(
                "got plaintext data when reconstructing a packet".into(),
            ));
        }
        let (packet, attachments) = decode_str(s)?;
        if attachments == 0 {
            return Ok(Some(packet));
        }
        if attachments > self.max_attachments {
            return Err(Error::Parse(format!(
                "too many attachments: {attachments} (max {})",
                self.max_attachments
            )));
        }
        self.pending = Some(Pending {
            packet,
            expected: attachments,
            attachments: Vec::new(),
            bytes: 0,
        });
        Ok(None)
    }

    /// Feeds a binary message (an attachment).
    pub fn decode_binary(&mut self, b: Bytes) -> Result<Option<Packet>> {
        let Some(p) = self.pending.as_mut() else {
            return Err(Error::Parse(
                "got binary data when not reconstructing a packet".into(),
            ));
        };
        p.bytes = p.bytes.saturating_add(b.len());
        if p.bytes > self.max_attachment_bytes {
            self.pending = None;
            return Err(Error::Parse(format!(
                "attachments over {} bytes",
                self.max_attachment_bytes
            )));
        }
        p.attachments.push(b);
        if p.attachments.len() < p.expected {
            return Ok(None);
        }
        let Some(Pending {
            mut packet,
            attachments,
            ..
        }) = self.pending.take()
        else {
            return Ok(None);
        };
        match &mut packet.data {
            PacketData::Event(_, args) | PacketData::Ack(args) => {
                for a in args.iter_mut() {
                    a.fill_placeholders(&attachments)?;
                }
            }
            PacketData::Connect(Some(v)) | PacketData::ConnectError(v) => {
                v.fill_placeholders(&attachments)?
            }
            _ => {}
        }
        Ok(Some(packet))
    }
}

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// The header of packet text `s`: its type, attachment count, namespace, ack id, and where its
/// JSON payload starts (`s.len()` when it has none).
fn header(s: &str) -> Result<(u8, usize, &str, Option<u64>, usize)> {
    let bytes = s.as_bytes();
    let bad = |m: &str| Error::Parse(m.to_owned());
    let kind = match bytes.first() {
        Some(b) if (b'0'..=b'6').contains(b) => b - b'0',
        _ => return Err(bad("unknown packet type")),
    };
    let mut i = 1;
    let mut attachments = 0usize;
    if kind == 5 || kind == 6 {
        let start = i;
        while i < bytes.len() && is_digit(bytes[i]) {
            i += 1;
        }
        if i == start || i >= bytes.len() || bytes[i] != b'-' {
            return Err(bad("illegal attachments"));
        }
        attachments = s[start..i]
            .parse()
            .map_err(|_| bad("illegal attachments"))?;
        // A binary packet without attachments is refused, as socket.io-parser 4.2.7.
        if attachments == 0 {
            return Err(bad("illegal attachments"));
        }
        i += 1;
    }
    let mut nsp = "/";
    if bytes.get(i) == Some(&b'/') {
        let start = i;
        while i < bytes.len() && bytes[i] != b',' {
            i += 1;
        }
        nsp = &s[start..i];
        if i < bytes.len() {
            i += 1; // the comma
        }
    }
    let mut id = None;
    if bytes.get(i).copied().is_some_and(is_digit) {
        let start = i;
        while i < bytes.len() && is_digit(bytes[i]) {
            i += 1;
        }
        id = Some(
            s[start..i]
                .parse::<u64>()
                .map_err(|_| bad("invalid ack id"))?,
        );
    }
    Ok((kind, attachments, nsp, id, i))
}

/// The JSON payload of packet text `s` (a packet [`decode_str`] accepted), as received: for an
/// event, `[name, ...args]`.
pub(crate) fn payload_text(s: &str) -> &str {
    header(s).map(|h| &s[h.4..]).unwrap_or("")
}

/// Parses the text part of a packet; returns the packet (placeholders unfilled) and how many
/// attachments it announces.
pub fn decode_str(s: &str) -> Result<(Packet, usize)> {
    let bad = |m: &str| Error::Parse(m.to_owned());
    let (kind, attachments, nsp, id, i) = header(s)?;
    let rest = &s[i..];
    let payload: Option<Value> = if rest.is_empty() {
        None
    } else {
        Some(serde_json::from_str(rest).map_err(|_| bad("invalid payload"))?)
    };
    let data = match (kind, payload) {
        (0, None) => PacketData::Connect(None),
        (0, Some(v @ Value::Map(_))) => PacketData::Connect(Some(v)),
        (1, None) => PacketData::Disconnect,
        (2 | 5, Some(Value::Array(mut a))) if !a.is_empty() => {
            let name = match a.remove(0) {
                Value::String(n) if !RESERVED_EVENTS.contains(&n.as_str()) => n,
                Value::Int(n) => n.to_string(),
                Value::Float(n) => n.to_string(),
                _ => return Err(bad("invalid payload")),
            };
            PacketData::Event(name, a)
        }
        (3 | 6, Some(Value::Array(a))) => PacketData::Ack(a),
        (4, Some(v @ (Value::Map(_) | Value::String(_)))) => PacketData::ConnectError(v),
        _ => return Err(bad("invalid payload")),
    };
    if matches!(kind, 3 | 6) && id.is_none() {
        return Err(bad("ack without id"));
    }
    Ok((
        Packet {
            nsp: nsp.to_owned(),
            id,
            data,
        },
        attachments,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn text(f: &Frame) -> &str {
        match f {
            Frame::Text(t) => &t[1..],
            _ => panic!("not text"),
        }
    }

    fn roundtrip(p: &Packet) -> Packet {
        let frames = p.encode();
        let mut d = Decoder::default();
        let mut out = d.decode_text(text(&frames[0])).unwrap();
        for f in &frames[1..] {
            let Frame::Binary(b) = f else { panic!() };
            assert!(out.is_none());
            out = d.decode_binary(b.clone()).unwrap();
        }
        out.unwrap()
    }

    #[test]
    fn spec_examples() {
        let p = Packet {
            nsp: "/".into(),
            id: None,
            data: PacketData::Connect(None),
        };
        assert_eq!(text(&p.encode()[0]), "0");
        let p = Packet {
            nsp: "/admin".into(),
            id: None,
            data: PacketData::Connect(Some(Value::from(json!({"token":"123"})))),
        };
        assert_eq!(text(&p.encode()[0]), "0/admin,{\"token\":\"123\"}");
        let p = Packet {
            nsp: "/admin".into(),
            id: None,
            data: PacketData::Disconnect,
        };
        assert_eq!(text(&p.encode()[0]), "1/admin");
        let p = Packet {
            nsp: "/".into(),
            id: Some(12),
            data: PacketData::Event("foo".into(), vec![Value::from("bar")]),
        };
        assert_eq!(text(&p.encode()[0]), "212[\"foo\",\"bar\"]");
        let p = Packet {
            nsp: "/admin".into(),
            id: Some(13),
            data: PacketData::Ack(vec![Value::from("bar")]),
        };
        assert_eq!(text(&p.encode()[0]), "3/admin,13[\"bar\"]");
        let p = Packet {
            nsp: "/".into(),
            id: None,
            data: PacketData::Event(
                "baz".into(),
                vec![Value::Bytes(Bytes::from_static(&[1, 2, 3]))],
            ),
        };
        let f = p.encode();
        assert_eq!(
            text(&f[0]),
            "51-[\"baz\",{\"_placeholder\":true,\"num\":0}]"
        );
        assert_eq!(f[1], Frame::Binary(Bytes::from_static(&[1, 2, 3])));
        assert_eq!(roundtrip(&p), p);
        let p = Packet {
            nsp: "/admin".into(),
            id: Some(15),
            data: PacketData::Ack(vec![Value::Bytes(Bytes::from_static(&[3]))]),
        };
        assert_eq!(
            text(&p.encode()[0]),
            "61-/admin,15[{\"_placeholder\":true,\"num\":0}]"
        );
        assert_eq!(roundtrip(&p), p);
    }

    #[test]
    fn decode_variants() {
        let (p, _) = decode_str("0/custom").unwrap();
        assert_eq!(p.nsp, "/custom");
        assert_eq!(p.data, PacketData::Connect(None));
        let (p, _) = decode_str("0/custom,").unwrap();
        assert_eq!(p.nsp, "/custom");
        let (p, _) = decode_str("2[1,2]").unwrap();
        assert_eq!(p.data, PacketData::Event("1".into(), vec![Value::Int(2)]));
        let (p, _) = decode_str("4{\"message\":\"no\"}").unwrap();
        assert_eq!(
            p.data,
            PacketData::ConnectError(Value::from(json!({"message":"no"})))
        );
    }

    #[test]
    fn malformed_packets() {
        for bad in [
            "",
            "7",
            "x",
            "2",
            "2[]",
            "2{}",
            "2\"a\"",
            "2[null]",
            "2[\"connect\"]",
            "0[1]",
            "1{}",
            "3[1]",
            "31{}",
            "5[\"a\"]",
            "5x-[\"a\"]",
            "2[\"a\"",
            "4",
            "4 1",
            "299999999999999999999999[\"a\"]",
        ] {
            assert!(decode_str(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn attachment_bounds() {
        let mut d = Decoder::default();
        assert!(d
            .decode_text("51000000000-[\"a\",{\"_placeholder\":true,\"num\":0}]")
            .is_err());
        assert!(d.decode_binary(Bytes::new()).is_err());
        assert!(d.decode_text("52-[\"a\"]").unwrap().is_none());
        assert!(
            d.decode_text("2[\"a\"]").is_err(),
            "text during reconstruction"
        );
        assert!(d
            .decode_text("51-[\"a\",{\"_placeholder\":true,\"num\":5}]")
            .unwrap()
            .is_none());
        assert!(
            d.decode_binary(Bytes::new()).is_err(),
            "placeholder out of range"
        );
        assert!(d.decode_text("50-[\"a\"]").is_err(), "zero attachments");
        assert!(d.decode_text("511-[\"a\"]").is_err(), "over 10 attachments");
        assert!(d.decode_text("510-[\"a\"]").unwrap().is_none());
    }

    #[test]
    fn attachment_bytes_are_bounded_per_packet() {
        let mut d = Decoder::with_limits(10, 100);
        let two = "52-[\"a\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]";
        assert!(d.decode_text(two).unwrap().is_none());
        assert!(d.decode_binary(Bytes::from(vec![0; 60])).unwrap().is_none());
        assert!(
            d.decode_binary(Bytes::from(vec![0; 60])).is_err(),
            "120 > 100"
        );
        assert!(!d.is_waiting(), "the packet is dropped");
        assert!(d.decode_text(two).unwrap().is_none());
        assert!(d.decode_binary(Bytes::from(vec![0; 50])).unwrap().is_none());
        assert!(d.decode_binary(Bytes::from(vec![0; 50])).unwrap().is_some());
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            (-1_000_000i64..1_000_000).prop_map(|i| Value::Float(i as f64 + 0.25)),
            ".*".prop_map(Value::String),
            proptest::collection::vec(any::<u8>(), 0..16).prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(("[a-z_]{0,6}", inner), 0..4).prop_map(|kv| Value::Map(
                    kv.into_iter()
                        .filter(|(k, _)| k != "_placeholder")
                        .collect()
                )),
            ]
        })
    }

    proptest! {
        #[test]
        fn packet_roundtrip(
            nsp in prop_oneof![Just("/".to_string()), "/[a-z]{1,8}"],
            id in proptest::option::of(any::<u64>()),
            name in "[a-z]{1,10}",
            args in proptest::collection::vec(value(), 0..4),
            ack in any::<bool>(),
        ) {
            let data = if ack { PacketData::Ack(args) } else { PacketData::Event(name, args) };
            let id = if ack { Some(id.unwrap_or(0)) } else { id };
            let p = Packet { nsp, id, data };
            prop_assert_eq!(roundtrip(&p), p);
        }
    }
}
