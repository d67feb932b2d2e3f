//! Fuzzing entry points: one function per decoder a peer can reach, each taking arbitrary bytes.
//!
//! They are called by the cargo-fuzz targets in `fuzz/` (libFuzzer, nightly) and by
//! `core/tests/fuzz_corpora.rs`, which replays the committed corpora on stable. Every function
//! calls the real decoder(s) and checks cheap invariants (mostly decode → encode → decode giving
//! back what was decoded); none may panic, whatever the input: a panic is a bug.
//!
//! Not a public API: hidden from the documentation, it may change at any time.

use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::client::transport::{encode_component, parse_handshake, Incoming};
use crate::engine::config::{CorsConfig, CorsOrigin, EngineConfig, TransportType};
use crate::engine::host::{handshake_of, HttpRequest, Reply};
use crate::engine::packet::{self as eio, Frame};
use crate::engine::rules::{self, ProbeInput, ProbeStep, Route};
use crate::engine::server::parse_query;
use crate::engine::{ConnHandler, EngineHandler, EngineServer, EngineSocket};
use crate::parser::packet::{self as sio, Decoder, Packet, PacketData};
use crate::value::Value;

/// The default `maxHttpBufferSize`.
const DEFAULT_MAX_BUFFER: usize = 1_000_000;

/// Value equality that lets floats differ in their last bits: serde_json (without its
/// `float_roundtrip` feature) does not always parse back the shortest representation it writes to
/// the very same float.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            x == y || (x - y).abs() <= f64::EPSILON * 4.0 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && same_value(vx, vy))
        }
        _ => a == b,
    }
}

fn same_values(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(x, y))
}

fn same_packet(a: &Packet, b: &Packet) -> bool {
    a.nsp == b.nsp
        && a.id == b.id
        && match (&a.data, &b.data) {
            (PacketData::Connect(Some(x)), PacketData::Connect(Some(y))) => same_value(x, y),
            (PacketData::Event(n, x), PacketData::Event(m, y)) => n == m && same_values(x, y),
            (PacketData::Ack(x), PacketData::Ack(y)) => same_values(x, y),
            (PacketData::ConnectError(x), PacketData::ConnectError(y)) => same_value(x, y),
            (x, y) => x == y,
        }
}

/// Engine.IO v4 packet decoding: `data` as one WebSocket text frame (when it is UTF-8) and as one
/// binary frame, and the upgrade probe's reading of a text frame.
pub fn engine_packet(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = eio::decode_text(s) {
            let Frame::Text(t) = p.to_frame() else {
                panic!("a text packet encoded as binary");
            };
            let back = eio::decode_text(&t).expect("an encoded packet decodes");
            assert_eq!(back, p, "decode(encode(p)) != p for {s:?}");
            assert!(t.len() <= s.len(), "encoding grew the packet");
        }
        let step = rules::Probe::new().on_message(ProbeInput::Text(s));
        assert_eq!(
            step == ProbeStep::Fail,
            s != "2probe" && s != "5",
            "probe step for {s:?}"
        );
    }
    let bin = eio::Packet::Binary(Bytes::copy_from_slice(data));
    assert_eq!(bin.to_frame(), Frame::Binary(Bytes::copy_from_slice(data)));
}

/// Polling payload decoding, as the server reads a POST body (bounded by a `maxHttpBufferSize`
/// taken from the first two bytes, little endian; `0xffff` means the default) and as the client
/// reads a GET response.
pub fn engine_payload(data: &[u8]) {
    let (max, body) = match data {
        [a, b, rest @ ..] => match u16::from_le_bytes([*a, *b]) {
            u16::MAX => (DEFAULT_MAX_BUFFER, rest),
            n => (usize::from(n), rest),
        },
        _ => (DEFAULT_MAX_BUFFER, data),
    };
    // The server: the POST is refused before its body is read when Content-Length is over the
    // limit, and the body is cut off at the limit when there is no Content-Length.
    let len = body.len() as u64;
    if rules::check_post(false, Some(b"text/plain;charset=UTF-8"), Some(len), max).is_err() {
        assert!(body.len() > max);
        return;
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    let Ok(packets) = eio::decode_payload(text) else {
        return;
    };
    assert_eq!(
        packets.len(),
        text.split(eio::RECORD_SEPARATOR as char).count(),
        "one packet per record"
    );
    let binary: usize = packets
        .iter()
        .map(|p| match p {
            eio::Packet::Binary(b) => b.len(),
            _ => 0,
        })
        .sum();
    assert!(binary <= body.len(), "base64 decodes to less than it takes");
    let frames: Vec<Frame> = packets.iter().map(eio::Packet::to_frame).collect();
    let encoded = eio::encode_payload(&frames);
    let again = std::str::from_utf8(&encoded).expect("an encoded payload is UTF-8");
    let back = eio::decode_payload(again).expect("an encoded payload decodes");
    assert_eq!(back, packets, "decode(encode(p)) != p");
    // The client reads the same payloads into owned packets.
    for p in packets {
        let _ = Incoming::from(p);
    }
}

/// Splits fuzz input into a sequence of WebSocket-like frames: each frame is a header byte (bit 0
/// set: binary, clear: text), a little-endian `u16` length (cut to what is left), then the data.
/// Text frames are made valid UTF-8 (lossily), as WebSocket text frames and polling records are.
fn frames(mut data: &[u8]) -> Vec<Result<String, Bytes>> {
    let mut out = Vec::new();
    while let [h, rest @ ..] = data {
        let (len, rest) = match rest {
            [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
            [a] => (usize::from(*a), &[][..]),
            [] => (0, rest),
        };
        let (frame, rest) = rest.split_at(len.min(rest.len()));
        out.push(if h & 1 == 0 {
            Ok(String::from_utf8_lossy(frame).into_owned())
        } else {
            Err(Bytes::copy_from_slice(frame))
        });
        data = rest;
    }
    out
}

/// Feeds the frames of an encoded packet to a fresh decoder.
fn decode_frames(encoded: &[Frame], max_attachments: usize) -> Option<Packet> {
    let mut d = Decoder::new(max_attachments);
    let mut out = None;
    for (i, f) in encoded.iter().enumerate() {
        assert!(out.is_none(), "a packet completed before its last frame");
        out = match f {
            Frame::Text(t) => {
                assert_eq!(i, 0, "the text frame comes first");
                let t = t.strip_prefix('4').expect("a message frame");
                d.decode_text(t).expect("an encoded packet decodes")
            }
            Frame::Binary(b) => d.decode_binary(b.clone()).expect("an attachment decodes"),
        };
    }
    out
}

/// Checks a packet the decoder completed: it encodes into frames that decode back to it.
fn check_sio_packet(p: &Packet, text: Option<&str>) {
    assert!(p.nsp.starts_with('/'), "namespace {:?}", p.nsp);
    if let PacketData::Event(name, _) = &p.data {
        assert!(!sio::RESERVED_EVENTS.contains(&name.as_str()));
    }
    if matches!(p.data, PacketData::Ack(_)) {
        assert!(p.id.is_some(), "an ack without id");
    }
    if let Some(t) = text {
        // The server hands the payload text on as received (no attachments here).
        let payload = sio::payload_text(t);
        if !payload.is_empty() {
            serde_json::from_str::<Value>(payload).expect("the payload of a packet is JSON");
        }
    }
    let encoded = p.encode();
    let back = decode_frames(&encoded, encoded.len()).expect("an encoded packet completes");
    assert!(
        same_packet(&back, p),
        "decode(encode(p)) != p: {p:?} / {back:?}"
    );
}

/// The Socket.IO v5 decoder with binary attachments: the first byte is the attachment limit
/// (modulo 16), the second the byte limit (`n * 64`, `0xff` for none); the rest is a sequence of
/// text and binary frames (see `frames`) fed one by one to one decoder.
pub fn sio_decoder(data: &[u8]) {
    let [max_att, max_bytes, rest @ ..] = data else {
        return;
    };
    let max_att = usize::from(*max_att % 16);
    let max_bytes = match max_bytes {
        0xff => usize::MAX,
        n => usize::from(*n) * 64,
    };
    let mut d = Decoder::with_limits(max_att, max_bytes);
    for f in frames(rest) {
        match f {
            Ok(text) => {
                let was_waiting = d.is_waiting();
                let r = d.decode_text(&text);
                if was_waiting {
                    assert!(r.is_err(), "text while reconstructing is refused");
                    assert!(!d.is_waiting());
                    continue;
                }
                match r {
                    Ok(Some(p)) => check_sio_packet(&p, Some(&text)),
                    Ok(None) => {
                        assert!(d.is_waiting());
                        let (_, n) = sio::decode_str(&text).expect("accepted text parses");
                        assert!(n >= 1 && n <= max_att, "{n} attachments (max {max_att})");
                    }
                    Err(_) => assert!(!d.is_waiting()),
                }
            }
            Err(bin) => match d.decode_binary(bin) {
                Ok(Some(p)) => check_sio_packet(&p, None),
                Ok(None) => assert!(d.is_waiting()),
                Err(_) => assert!(!d.is_waiting(), "a refused attachment drops the packet"),
            },
        }
    }
}

/// The JSON value reader of event payloads (serde_json into [`Value`]), with placeholders filled
/// from attachments: the first byte is the number of attachments (modulo 4), the rest the JSON.
pub fn json_value(data: &[u8]) {
    let [n, json @ ..] = data else {
        return;
    };
    let attachments: Vec<Bytes> = (0..*n % 4).map(|i| Bytes::from(vec![i; 3])).collect();
    let from_slice = serde_json::from_slice::<Value>(json);
    let Ok(text) = std::str::from_utf8(json) else {
        assert!(from_slice.is_err(), "JSON that is not UTF-8 accepted");
        return;
    };
    assert_eq!(
        from_slice.is_ok(),
        serde_json::from_str::<Value>(text).is_ok()
    );
    let Ok(v) = Value::from_json_with_attachments(text, &attachments) else {
        return;
    };
    let mut out = Vec::new();
    let mut att = Vec::new();
    v.write_json(&mut out, &mut att);
    assert_eq!(v.has_binary(), !att.is_empty());
    let written = std::str::from_utf8(&out).expect("write_json writes UTF-8");
    if !v.has_binary() {
        // The fast string writer writes what serde_json writes.
        let serde = serde_json::to_string(&v).expect("a value without bytes serializes");
        assert_eq!(written, serde, "write_json differs from serde_json");
        assert_eq!(written, v.to_json_string());
    }
    let back = Value::from_json_with_attachments(written, &att).expect("written JSON parses");
    assert!(
        same_value(&back, &v),
        "{v:?} written as {written} reads {back:?}"
    );
    // The accessors the handlers use.
    let _ = (
        v.as_str(),
        v.as_i64(),
        v.as_f64(),
        v.as_bool(),
        v.as_bytes(),
    );
    let _ = (&v["sid"], &v[0], v.get("_placeholder"), v.is_null());
}

/// The client's decoding of what a server sends: the handshake JSON alone, the open packet of a
/// WebSocket (`data` as one text frame), and a polling handshake response (an open packet, then
/// any packets, Socket.IO ones decoded as the client does: CONNECT's `sid`/`pid`, CONNECT_ERROR's
/// `message`/`data`).
pub fn client_handshake(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    check_handshake(s);
    if let Ok(eio::Packet::Open(d)) = eio::decode_text(s) {
        check_handshake(d);
    }
    let Ok(packets) = eio::decode_payload(s) else {
        return;
    };
    let mut packets = packets.into_iter();
    if let Some(eio::Packet::Open(d)) = packets.next() {
        check_handshake(d);
    }
    let mut decoder = Decoder::default();
    for p in packets {
        let r = match Incoming::from(p) {
            Incoming::Message(text) => decoder.decode_text(&text),
            Incoming::Binary(b) => decoder.decode_binary(b),
            _ => continue,
        };
        let Ok(Some(p)) = r else { continue };
        match &p.data {
            PacketData::Connect(d) => {
                let field = |f: &str| d.as_ref().and_then(|d| d.get(f)).and_then(Value::as_str);
                let _ = (field("sid"), field("pid"));
            }
            PacketData::ConnectError(v) => {
                let _ = (v.get("message").and_then(Value::as_str), v.get("data"));
            }
            PacketData::Event(_, args) => {
                let _ = args.last().and_then(Value::as_str);
            }
            PacketData::Ack(_) | PacketData::Disconnect => {}
        }
        check_sio_packet(&p, None);
    }
}

fn check_handshake(s: &str) {
    let Ok(hs) = parse_handshake(s) else { return };
    assert!(!hs.sid.is_empty());
    assert!(hs.max_payload > 0);
    let limit = std::time::Duration::from_millis(1_000_000_000_000);
    assert!(hs.ping_interval < limit && hs.ping_timeout < limit);
    let _ = hs.ping_interval.saturating_add(hs.ping_timeout);
}

struct NoSessions;

impl EngineHandler for NoSessions {
    fn on_open(&self, _: &EngineSocket) -> Box<dyn ConnHandler> {
        unreachable!("the routing target never opens a session")
    }
}

/// Three servers (no CORS; CORS mirroring the origin; CORS with an origin list), on a runtime
/// that never runs: the requests routed through them open no session and spawn no task.
fn servers() -> &'static (tokio::runtime::Runtime, [EngineServer; 3]) {
    static SERVERS: OnceLock<(tokio::runtime::Runtime, [EngineServer; 3])> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let server = |path: &str, cors: Option<CorsConfig>| {
            let config = EngineConfig {
                path: path.into(),
                cors,
                ..EngineConfig::default()
            };
            EngineServer::with_runtime(config, std::sync::Arc::new(NoSessions), rt.handle().clone())
        };
        let mirror = CorsConfig {
            origin: CorsOrigin::Mirror,
            credentials: true,
            max_age: Some(600),
            ..CorsConfig::default()
        };
        let list = CorsConfig {
            origin: CorsOrigin::List(vec!["https://example.com".into()]),
            allowed_headers: vec!["X-A".into(), "Content-Type".into()],
            exposed_headers: vec!["X-B".into()],
            ..CorsConfig::default()
        };
        let servers = [
            server("/socket.io/", None),
            server("/engine.io", Some(mirror)),
            server("/", Some(list)),
        ];
        (rt, servers)
    })
}

/// The host boundary's HTTP routing: how a request's method, path, query and headers become a
/// routed request. The first byte holds flags (bits 0-1: the transport of the session the `sid`
/// names, if any; bits 2-3: which server; bit 4: a POST in progress); the rest is lines: the
/// method, the request target (path and query), then `name: value` headers. The target is both
/// parsed as a URI (as hyper does) and split at `?` as raw strings (as the bindings' hosts give
/// them).
pub fn http_routing(data: &[u8]) {
    let [flags, rest @ ..] = data else {
        return;
    };
    let session = match flags & 3 {
        1 => Some(TransportType::Polling),
        2 => Some(TransportType::Websocket),
        _ => None,
    };
    let (_, servers) = servers();
    let server = &servers[usize::from((flags >> 2) & 3) % 3];
    let busy = flags & 16 != 0;
    let mut lines = rest.split(|&b| b == b'\n');
    let method = lines
        .next()
        .and_then(|m| Method::from_bytes(m).ok())
        .unwrap_or(Method::GET);
    let target = lines.next().unwrap_or(b"");
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    // As a bindings' host gives it: raw strings.
    let raw = String::from_utf8_lossy(target);
    let (path, query) = raw.split_once('?').unwrap_or((&raw, ""));
    let req = HttpRequest {
        method: method.clone(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers: headers.clone(),
        remote: None,
        secure: false,
    };
    route_one(server, req, session, busy);
    // As hyper gives it: a parsed URI.
    if let Ok(uri) = http::Uri::try_from(target) {
        let mut builder = http::Request::builder().method(method).uri(uri);
        if let Some(h) = builder.headers_mut() {
            *h = headers;
        }
        if let Ok(r) = builder.body(()) {
            let (parts, ()) = r.into_parts();
            route_one(
                server,
                HttpRequest::from_parts(&parts, None, false),
                session,
                busy,
            );
        }
    }
}

fn route_one(server: &EngineServer, req: HttpRequest, session: Option<TransportType>, busy: bool) {
    let config = server.config();
    let base = config.path.trim_end_matches('/');
    if server.matches(&req.path) {
        assert!(req.path.starts_with(base), "{:?} under {base:?}", req.path);
    }
    let _ = req.url();
    let query = parse_query(&req.query);
    assert!(query.len() <= req.query.split('&').count());
    // What the client encodes, the server decodes.
    let encoded: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect();
    assert_eq!(parse_query(&encoded.join("&")), query, "query round trip");
    let is_upgrade = req.is_upgrade();
    let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let route = rules::route(config, &req.method, &query, is_upgrade, |_| session);
    match &route {
        Route::Poll(sid) | Route::Post(sid) | Route::Upgrade(sid) => {
            assert_eq!(Some(sid.as_str()), q("sid"));
            assert!(session.is_some() && q("EIO") == Some("4"));
        }
        Route::Open { transport, eio_ok } => {
            assert_eq!(req.method, Method::GET);
            assert_eq!(*eio_ok, q("EIO") == Some("4"));
            assert!(*transport == TransportType::Polling || is_upgrade);
            let hs = handshake_of(&req, query.clone(), 0);
            assert_eq!(hs.query_value("transport"), Some(transport.as_str()));
        }
        Route::Preflight => assert_eq!(req.method, Method::OPTIONS),
        Route::Refuse(_) | Route::OtherMethod => {}
    }
    if matches!(route, Route::Post(_)) {
        let content_type = req.headers.get(http::header::CONTENT_TYPE);
        let length = req
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let _ = rules::check_post(
            busy,
            content_type.map(HeaderValue::as_bytes),
            length,
            config.max_http_buffer_size,
        );
    }
    // The server itself, for every request that would not open a session (it has none, so a
    // `sid` is unknown to it).
    let open = rules::route(config, &req.method, &query, is_upgrade, |_| None);
    if matches!(open, Route::Open { .. }) {
        return;
    }
    let Reply::Ready(r) = server.request(req) else {
        panic!("a request to a server without sessions got more than a response");
    };
    assert!(
        [
            StatusCode::OK,
            StatusCode::NO_CONTENT,
            StatusCode::BAD_REQUEST,
            StatusCode::FORBIDDEN,
            StatusCode::INTERNAL_SERVER_ERROR,
        ]
        .contains(&r.status),
        "status {}",
        r.status
    );
    let json = r
        .headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|t| t == "application/json");
    if json {
        serde_json::from_slice::<serde_json::Value>(&r.body).expect("an error body is JSON");
    }
}

/// The decoder of the Redis adapter's classic format (`@socket.io/redis-adapter`; feature
/// `msgpack`, part of `redis`): the bytes go through every reader a message from another node
/// reaches, as a broadcast (msgpack `[uid, packet, opts]`) and as a request or response (JSON
/// or msgpack), with the fields the handlers use. Invariants: msgpack decoding is a fixed point
/// after one round trip (`decode ∘ encode` gives back what it was given, once integral floats
/// became integers), and an accepted broadcast, written again by polysio, reads back the same.
#[cfg(feature = "msgpack")]
pub fn redis_classic_message(data: &[u8]) {
    use crate::adapter::classic_wire as wire;
    use crate::adapter::msgpack as mp;

    if let Ok(v) = mp::decode(data) {
        let mut once = Vec::new();
        mp::write_value(&mut once, &v);
        let v1 = mp::decode(&once).expect("polysio's msgpack reads back");
        let mut twice = Vec::new();
        mp::write_value(&mut twice, &v1);
        assert_eq!(once, twice, "msgpack encoding is not stable: {v:?}");
    }
    if let Ok(b) = wire::parse_broadcast(data) {
        let uid = b.uid.clone().unwrap_or_default();
        let bytes = wire::encode_broadcast(&uid, &b.nsp, &b.event, &b.args, &b.opts);
        let back = wire::parse_broadcast(&bytes).expect("polysio's broadcast reads back");
        assert_eq!(back.nsp, b.nsp);
        assert_eq!(back.event, b.event);
        assert_eq!(back.opts.rooms, b.opts.rooms);
        assert_eq!(back.opts.except, b.opts.except);
        assert_eq!(back.opts.flags.volatile, b.opts.flags.volatile);
        assert_eq!(back.args.len(), b.args.len());
    }
    if let Ok(req) = wire::decode_message(data) {
        // What the request and response handlers read.
        let _ = req["type"].as_i64();
        let _ = req["requestId"].as_str();
        let _ = wire::rooms_of(&req["rooms"]);
        let _ = wire::room_of(&req["room"]);
        if let Some(opts) = wire::parse_opts(&req["opts"]) {
            let back = wire::parse_opts(&wire::opts_value(&opts)).expect("opts read back");
            assert_eq!((back.rooms, back.except), (opts.rooms, opts.except));
        }
        let _ = wire::event_of(&req["packet"]["data"]);
        if let Some(a) = req["sockets"].as_array() {
            for s in a {
                if let Some(info) = wire::socket_info_of(s) {
                    let back = wire::socket_info_of(&wire::socket_info_value(&info));
                    assert_eq!(back.as_ref(), Some(&info));
                }
            }
        }
        // serde_json stops at 128 levels, msgpack decoding at 128 too: a message near the limit
        // may not read back as JSON.
        if depth(&req) < 100 {
            let out = wire::encode_message(&req);
            assert!(
                wire::decode_message(&out).is_ok(),
                "an encoded message reads back"
            );
        }
    }
}

#[cfg(feature = "msgpack")]
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Map(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}
