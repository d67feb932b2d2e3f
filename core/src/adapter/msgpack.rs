//! msgpack as Node's Redis adapters write and read it (`notepack.io` 3 conventions), to and from
//! [`Value`] (feature `msgpack`, part of `redis`).
//!
//! Writing: `null` → nil, integers in their smallest form, other numbers → float64, strings →
//! str, bytes → bin (inline, never attachment placeholders), arrays, maps with string keys.
//!
//! Reading gives what a Node server would hand its clients after a notepack round trip and
//! `JSON.stringify`: bin → bytes; the timestamp extension (type -1) and notepack 2's `Date`
//! (fixext 8, type 0) → an ISO-8601 string (`2024-01-02T03:04:05.678Z`); notepack 2's
//! `undefined` (fixext 1, type 0) → left out of maps, `null` in arrays; its other ext type 0 →
//! bytes; NaN and ±Infinity → `null`; integer and boolean map keys → strings; other
//! extensions → `null`. Unsigned integers above `i64::MAX` become floats. Input must be one
//! value with nothing after it, at most 128 levels deep; anything else is an error, never a
//! panic.
//!
//! Not a public API (hidden; used by the Redis adapter and its fuzz target).
//!
//! ```
//! use polysio::adapter::msgpack;
//! use polysio::Value;
//! let v = Value::from(serde_json::json!({"a": [1, "x", null]}));
//! let mut bytes = Vec::new();
//! msgpack::write_value(&mut bytes, &v);
//! assert_eq!(msgpack::decode(&bytes).unwrap(), v);
//! ```

use bytes::Bytes;

use crate::value::{Map, Value};

/// Deepest nesting accepted when decoding.
pub const MAX_DEPTH: usize = 128;

/// Decodes one msgpack value filling all of `data`.
pub fn decode(data: &[u8]) -> Result<Value, String> {
    let mut rd = data;
    let v = rmpv::decode::read_value_with_max_depth(&mut rd, MAX_DEPTH)
        .map_err(|e| format!("msgpack: {e}"))?;
    if !rd.is_empty() {
        return Err(format!("msgpack: {} trailing bytes", rd.len()));
    }
    Ok(convert(v).unwrap_or(Value::Null))
}

/// `None` for JavaScript's `undefined`.
fn convert(v: rmpv::Value) -> Option<Value> {
    use rmpv::Value as M;
    Some(match v {
        M::Nil => Value::Null,
        M::Boolean(b) => Value::Bool(b),
        M::Integer(i) => match i.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(i.as_u64().map(|u| u as f64).unwrap_or(0.0)),
        },
        M::F32(f) => number(f64::from(f)),
        M::F64(f) => number(f),
        M::String(s) => Value::String(utf8(s)),
        M::Binary(b) => Value::Bytes(Bytes::from(b)),
        M::Array(a) => Value::Array(
            a.into_iter()
                .map(|x| convert(x).unwrap_or(Value::Null))
                .collect(),
        ),
        M::Map(entries) => {
            let mut m = Map::with_capacity(entries.len());
            for (k, v) in entries {
                let key = match k {
                    M::String(s) => utf8(s),
                    M::Integer(i) => i.to_string(),
                    M::Boolean(b) => b.to_string(),
                    M::Nil => "null".to_owned(),
                    _ => continue,
                };
                if let Some(v) = convert(v) {
                    m.insert(key, v);
                }
            }
            Value::Map(m)
        }
        M::Ext(-1, data) => timestamp(&data).map_or(Value::Null, iso_date),
        M::Ext(0, data) if data.len() == 1 => return None,
        M::Ext(0, data) if data.len() == 8 => {
            let ms = i64::from_be_bytes(data[..8].try_into().unwrap_or([0; 8]));
            iso_date(ms as f64)
        }
        M::Ext(0, data) => Value::Bytes(Bytes::from(data)),
        M::Ext(..) => Value::Null,
    })
}

/// A msgpack string; invalid UTF-8 replaced by U+FFFD, as Node's decoder does.
fn utf8(s: rmpv::Utf8String) -> String {
    String::from_utf8(s.into_bytes())
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn number(f: f64) -> Value {
    if f.is_finite() {
        Value::Float(f)
    } else {
        Value::Null
    }
}

/// The msgpack timestamp extension's payload as ms since the epoch.
fn timestamp(data: &[u8]) -> Option<f64> {
    match data.len() {
        4 => Some(f64::from(u32::from_be_bytes(data.try_into().ok()?)) * 1000.0),
        8 => {
            let v = u64::from_be_bytes(data.try_into().ok()?);
            let nanos = v >> 34;
            let secs = v & 0x3_ffff_ffff;
            Some(secs as f64 * 1000.0 + (nanos / 1_000_000) as f64)
        }
        12 => {
            let nanos = u32::from_be_bytes(data[..4].try_into().ok()?);
            let secs = i64::from_be_bytes(data[4..].try_into().ok()?);
            Some(secs as f64 * 1000.0 + f64::from(nanos / 1_000_000))
        }
        _ => None,
    }
}

/// `Date.prototype.toJSON`: the ISO string, or `null` for an invalid date.
fn iso_date(ms: f64) -> Value {
    // JavaScript's dates span ±8.64e15 ms.
    if !ms.is_finite() || ms.abs() > 8.64e15 {
        return Value::Null;
    }
    let ms = ms.floor() as i64;
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = crate::value::civil_from_days(days);
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else {
        format!("{y:+07}")
    };
    Value::String(format!(
        "{year}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    ))
}

/// Appends `v` to `out`.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    use rmp::encode as e;
    // Writing to a Vec cannot fail.
    match v {
        Value::Null => {
            let _ = e::write_nil(out);
        }
        Value::Bool(b) => {
            let _ = e::write_bool(out, *b);
        }
        Value::Int(i) => write_int(out, *i),
        Value::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                // JavaScript has one number type: integral floats travel as integers.
                write_int(out, *f as i64)
            } else {
                let _ = e::write_f64(out, *f);
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Bytes(b) => {
            let _ = e::write_bin(out, b);
        }
        Value::Array(a) => {
            write_array_len(out, a.len());
            for x in a {
                write_value(out, x);
            }
        }
        Value::Map(m) => {
            write_map_len(out, m.len());
            for (k, x) in m {
                write_str(out, k);
                write_value(out, x);
            }
        }
    }
}

/// Appends an integer in its smallest form.
pub fn write_int(out: &mut Vec<u8>, i: i64) {
    let _ = if i >= 0 {
        rmp::encode::write_uint(out, i as u64).map(|_| ())
    } else {
        rmp::encode::write_sint(out, i).map(|_| ())
    };
}

/// Appends a string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let _ = rmp::encode::write_str(out, s);
}

/// Appends an array header.
pub fn write_array_len(out: &mut Vec<u8>, n: usize) {
    let _ = rmp::encode::write_array_len(out, n as u32);
}

/// Appends a map header.
pub fn write_map_len(out: &mut Vec<u8>, n: usize) {
    let _ = rmp::encode::write_map_len(out, n as u32);
}

/// Appends a boolean.
pub fn write_bool(out: &mut Vec<u8>, b: bool) {
    let _ = rmp::encode::write_bool(out, b);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn dates_and_legacy_forms() {
        // Timestamp 32: 1700000000 s.
        let v = decode(&hex("d6ff6553f100")).unwrap();
        assert_eq!(v, Value::from("2023-11-14T22:13:20.000Z"));
        // notepack 2: fixext 8 type 0, ms as a 64-bit integer.
        let v = decode(&hex("d700000000000000007b")).unwrap();
        assert_eq!(v, Value::from("1970-01-01T00:00:00.123Z"));
        // undefined in a map is left out, in an array becomes null.
        let v = decode(&hex("82a161d40000a162c0")).unwrap();
        assert_eq!(v, Value::from(serde_json::json!({"b": null})));
        let v = decode(&hex("92d4000001")).unwrap();
        assert_eq!(v, Value::from(serde_json::json!([null, 1])));
    }

    #[test]
    fn numbers_and_keys() {
        // NaN → null; integer key → string.
        let v = decode(&hex("8101cb7ff8000000000000")).unwrap();
        assert_eq!(v, Value::from(serde_json::json!({"1": null})));
        let mut out = Vec::new();
        write_value(&mut out, &Value::Float(3.0));
        assert_eq!(out, vec![3]);
        out.clear();
        write_value(&mut out, &Value::Int(-1));
        assert_eq!(out, vec![0xff]);
    }

    #[test]
    fn trailing_bytes_and_depth_are_errors() {
        assert!(decode(&[0x01, 0x02]).is_err());
        assert!(decode(&[0x91; 200]).is_err());
        assert!(decode(&[]).is_err());
    }
}
