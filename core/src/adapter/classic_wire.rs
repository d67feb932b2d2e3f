#![cfg_attr(not(feature = "redis"), allow(dead_code))]
//! The classic `@socket.io/redis-adapter` 8.3 wire format, without the Redis client: how
//! broadcasts, requests and responses are written and read (feature `msgpack`, part of `redis`;
//! the fuzz target of the decoder builds it alone). Everything that reads takes bytes or a
//! [`Value`] from another node and never panics: what it cannot use is an `Err` / `None`.

use crate::adapter::msgpack as mp;
use crate::adapter::{BroadcastOptions, Room, Sid, SocketInfo};
use crate::value::{Map, Value};

// Request types of the classic format.
pub(crate) const SOCKETS: i64 = 0;
pub(crate) const ALL_ROOMS: i64 = 1;
pub(crate) const REMOTE_JOIN: i64 = 2;
pub(crate) const REMOTE_LEAVE: i64 = 3;
pub(crate) const REMOTE_DISCONNECT: i64 = 4;
pub(crate) const REMOTE_FETCH: i64 = 5;
pub(crate) const SERVER_SIDE_EMIT: i64 = 6;
pub(crate) const BROADCAST: i64 = 7;
pub(crate) const BROADCAST_CLIENT_COUNT: i64 = 8;
pub(crate) const BROADCAST_ACK: i64 = 9;

/// `s` with the glob characters of a Redis pattern escaped.
pub(crate) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A room name as it travels: strings, and numbers (Node lets apps join numeric rooms).
pub(crate) fn room_of(v: &Value) -> Option<Room> {
    match v {
        Value::String(s) => Some(Room::from(s.as_str())),
        Value::Int(i) => Some(Room::from(i.to_string())),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
            Some(Room::from((*f as i64).to_string()))
        }
        Value::Float(f) => Some(Room::from(f.to_string())),
        _ => None,
    }
}

/// A list of rooms (missing: empty; not an array: `None`).
pub(crate) fn rooms_of(v: &Value) -> Option<Vec<Room>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(a) => Some(a.iter().filter_map(room_of).collect()),
        _ => None,
    }
}

/// `{rooms, except, flags}` as received.
pub(crate) fn parse_opts(v: &Value) -> Option<BroadcastOptions> {
    if !matches!(v, Value::Map(_)) {
        return None;
    }
    let mut opts = BroadcastOptions {
        rooms: rooms_of(&v["rooms"])?,
        except: rooms_of(&v["except"])?,
        ..Default::default()
    };
    opts.flags.volatile = v["flags"]["volatile"].as_bool().unwrap_or(false);
    opts.flags.timeout = v["flags"]["timeout"]
        .as_i64()
        .and_then(|t| u64::try_from(t).ok());
    Some(opts)
}

pub(crate) fn rooms_value(rooms: &[Room]) -> Value {
    Value::Array(rooms.iter().map(|r| Value::String(r.to_string())).collect())
}

/// `{rooms, except}`: the `opts` of requests.
pub(crate) fn opts_value(opts: &BroadcastOptions) -> Value {
    let mut m = Map::new();
    m.insert("rooms".into(), rooms_value(&opts.rooms));
    m.insert("except".into(), rooms_value(&opts.except));
    Value::Map(m)
}

pub(crate) fn write_rooms(out: &mut Vec<u8>, rooms: &[Room]) {
    mp::write_array_len(out, rooms.len());
    for r in rooms {
        mp::write_str(out, r);
    }
}

/// msgpack `{rooms, except, flags}` of a broadcast.
pub(crate) fn write_broadcast_opts(out: &mut Vec<u8>, opts: &BroadcastOptions) {
    mp::write_map_len(out, 3);
    mp::write_str(out, "rooms");
    write_rooms(out, &opts.rooms);
    mp::write_str(out, "except");
    write_rooms(out, &opts.except);
    mp::write_str(out, "flags");
    let n = usize::from(opts.flags.volatile) + usize::from(opts.flags.timeout.is_some());
    mp::write_map_len(out, n);
    if opts.flags.volatile {
        mp::write_str(out, "volatile");
        mp::write_bool(out, true);
    }
    if let Some(t) = opts.flags.timeout {
        mp::write_str(out, "timeout");
        mp::write_int(out, t.min(i64::MAX as u64) as i64);
    }
}

/// msgpack `{type: 2, data: [event, ...args], nsp}`.
pub(crate) fn write_packet(out: &mut Vec<u8>, nsp: &str, event: &str, args: &[Value]) {
    mp::write_map_len(out, 3);
    mp::write_str(out, "type");
    mp::write_int(out, 2);
    mp::write_str(out, "data");
    mp::write_array_len(out, args.len() + 1);
    mp::write_str(out, event);
    for a in args {
        mp::write_value(out, a);
    }
    mp::write_str(out, "nsp");
    mp::write_str(out, nsp);
}

/// The broadcast message `[uid, packet, opts]`.
pub(crate) fn encode_broadcast(
    uid: &str,
    nsp: &str,
    event: &str,
    args: &[Value],
    opts: &BroadcastOptions,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    mp::write_array_len(&mut out, 3);
    mp::write_str(&mut out, uid);
    write_packet(&mut out, nsp, event, args);
    write_broadcast_opts(&mut out, opts);
    out
}

/// A request or response: JSON when it starts with `{`, msgpack otherwise.
pub(crate) fn decode_message(payload: &[u8]) -> std::result::Result<Value, String> {
    let v = if payload.first() == Some(&b'{') {
        serde_json::from_slice::<Value>(payload).map_err(|e| format!("JSON: {e}"))?
    } else {
        mp::decode(payload)?
    };
    if matches!(v, Value::Map(_)) {
        Ok(v)
    } else {
        Err("not a map".into())
    }
}

/// JSON, or msgpack when `v` holds binary (JSON would lose it).
pub(crate) fn encode_message(v: &Value) -> Vec<u8> {
    if v.has_binary() {
        let mut out = Vec::new();
        mp::write_value(&mut out, v);
        out
    } else {
        v.to_json_string().into_bytes()
    }
}

/// The event name and arguments of a packet's `data`.
pub(crate) fn event_of(data: &Value) -> Option<(String, Vec<Value>)> {
    let a = data.as_array()?;
    let name = a.first()?.as_str()?.to_owned();
    Some((name, a[1..].to_vec()))
}

pub(crate) fn socket_info_value(s: &SocketInfo) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(s.id.to_string()));
    m.insert("handshake".into(), s.handshake.clone());
    m.insert("rooms".into(), rooms_value(&s.rooms));
    m.insert("data".into(), s.data.clone());
    Value::Map(m)
}

pub(crate) fn socket_info_of(v: &Value) -> Option<SocketInfo> {
    Some(SocketInfo {
        id: Sid::from(v["id"].as_str()?),
        handshake: v["handshake"].clone(),
        rooms: rooms_of(&v["rooms"])?,
        data: v["data"].clone(),
    })
}

pub(crate) fn map_of(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// A broadcast received on `P#N#` or `P#N#<room>#`: `[uid, {type: 2, data, nsp}, opts]`.
#[derive(Debug, PartialEq)]
pub(crate) struct Broadcast {
    /// The sender's uid (`"emitter"` from the classic emitter; absent: `None`).
    pub(crate) uid: Option<String>,
    /// `packet.nsp`, `/` when missing (as Node's adapter).
    pub(crate) nsp: String,
    pub(crate) event: String,
    pub(crate) args: Vec<Value>,
    pub(crate) opts: BroadcastOptions,
}

/// Decodes a broadcast message (msgpack), checking every field a receiver uses.
pub(crate) fn parse_broadcast(payload: &[u8]) -> std::result::Result<Broadcast, String> {
    let msg = mp::decode(payload)?;
    let Some([uid, packet, opts]) = msg.as_array().and_then(|a| a.get(..3)) else {
        return Err("not an array [uid, packet, opts]".into());
    };
    if packet.as_map().is_none() {
        return Err("the packet is not a map".into());
    }
    let nsp = match &packet["nsp"] {
        Value::Null => "/".to_owned(),
        Value::String(s) => s.clone(),
        _ => return Err("the packet's nsp is not a string".into()),
    };
    let (event, args) =
        event_of(&packet["data"]).ok_or("the packet has no [event, ...args] data")?;
    let opts = parse_opts(opts).ok_or("bad rooms/except options")?;
    Ok(Broadcast {
        uid: uid.as_str().map(str::to_owned),
        nsp,
        event,
        args,
        opts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_message_shape() {
        let opts = BroadcastOptions {
            rooms: vec![Room::from("r1")],
            except: vec![Room::from("x")],
            ..Default::default()
        };
        let msg = encode_broadcast("abc123", "/", "ev", &[Value::Int(1)], &opts);
        let v = mp::decode(&msg).unwrap();
        assert_eq!(
            v,
            Value::from(serde_json::json!([
                "abc123",
                {"type": 2, "data": ["ev", 1], "nsp": "/"},
                {"rooms": ["r1"], "except": ["x"], "flags": {}}
            ]))
        );
        assert_eq!(parse_opts(&v[2]).unwrap(), opts);
    }

    #[test]
    fn numeric_rooms_and_bad_options() {
        let v = Value::from(serde_json::json!({"rooms": [12, "a"], "except": null}));
        let o = parse_opts(&v).unwrap();
        assert_eq!(o.rooms, vec![Room::from("12"), Room::from("a")]);
        assert!(parse_opts(&Value::from(serde_json::json!({"rooms": 3}))).is_none());
        assert!(parse_opts(&Value::Null).is_none());
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("socket.io#/a*[b]#"), "socket.io#/a\\*\\[b\\]#");
    }
}
