//! The data model: a Socket.IO argument is a [`Value`], JSON plus first-class bytes.
//!
//! Bytes anywhere inside a value travel as binary attachments; in the JSON text they are replaced
//! by placeholders `{"_placeholder":true,"num":N}` (see [`Value::write_json`] and
//! [`Value::from_json_with_attachments`]).

use bytes::Bytes;
use indexmap::IndexMap;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::fmt;

use crate::error::{Error, Result};

/// An ordered string-keyed map of values (key order is kept, as in JavaScript objects).
pub type Map = IndexMap<String, Value>;

/// One Socket.IO argument.
///
/// ```
/// use polysio::Value;
/// let v = Value::from(serde_json::json!({"a": [1, "x", null]}));
/// assert_eq!(v["a"][1], Value::from("x"));
/// ```
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// JSON `null` (also what `undefined` becomes on the wire).
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits in an `i64`.
    Int(i64),
    /// Any other number.
    Float(f64),
    /// A string.
    String(String),
    /// Binary data, sent as an attachment.
    Bytes(Bytes),
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Map(Map),
}

static NULL: Value = Value::Null;

/// Days since 1970-01-01 as a civil (proleptic Gregorian) date `(year, month, day)` (Howard
/// Hinnant's algorithm); for the dates Node's adapters and handshakes carry.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

impl Value {
    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    /// The integer inside, if this is an integer (or a float with an integral value).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
            _ => None,
        }
    }
    /// The number inside as a float.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
    /// The boolean inside.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// The bytes inside.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
    /// The array inside.
    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
    /// The map inside.
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
    /// True for `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    /// Map lookup; `None` for a missing key or a non-map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// True if bytes appear anywhere inside.
    pub fn has_binary(&self) -> bool {
        match self {
            Value::Bytes(_) => true,
            Value::Array(a) => a.iter().any(Value::has_binary),
            Value::Map(m) => m.values().any(Value::has_binary),
            _ => false,
        }
    }

    /// Appends this value's JSON to `out`, moving each byte string into `attachments` and writing
    /// a placeholder in its stead.
    pub fn write_json(&self, out: &mut Vec<u8>, attachments: &mut Vec<Bytes>) {
        write_json_value(self, out, attachments)
    }

    /// Parses JSON text into a value, substituting placeholders with `attachments`.
    ///
    /// A placeholder whose `num` is out of range is an error. With no attachments, placeholder
    /// objects are left as they are (a plain JSON object cannot be told from one).
    pub fn from_json_with_attachments(json: &str, attachments: &[Bytes]) -> Result<Value> {
        let mut v: Value = serde_json::from_str(json).map_err(|e| Error::Parse(e.to_string()))?;
        if !attachments.is_empty() {
            v.fill_placeholders(attachments)?;
        }
        Ok(v)
    }

    /// Replaces every `{"_placeholder":true,"num":N}` by `attachments[N]`.
    pub fn fill_placeholders(&mut self, attachments: &[Bytes]) -> Result<()> {
        match self {
            Value::Array(a) => a
                .iter_mut()
                .try_for_each(|v| v.fill_placeholders(attachments)),
            Value::Map(m) => {
                if m.get("_placeholder") == Some(&Value::Bool(true)) {
                    let num = m
                        .get("num")
                        .and_then(Value::as_i64)
                        .ok_or_else(|| Error::Parse("placeholder without num".into()))?;
                    let b = usize::try_from(num)
                        .ok()
                        .and_then(|n| attachments.get(n))
                        .ok_or_else(|| Error::Parse(format!("placeholder {num} out of range")))?;
                    *self = Value::Bytes(b.clone());
                    Ok(())
                } else {
                    m.values_mut()
                        .try_for_each(|v| v.fill_placeholders(attachments))
                }
            }
            _ => Ok(()),
        }
    }

    /// The value as JSON text, with bytes written as placeholders (numbered from 0).
    pub fn to_json_string(&self) -> String {
        let mut out = Vec::new();
        let mut att = Vec::new();
        self.write_json(&mut out, &mut att);
        // write_json only ever writes valid UTF-8.
        String::from_utf8(out).unwrap_or_default()
    }
}

impl std::ops::Index<&str> for Value {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl std::ops::Index<usize> for Value {
    type Output = Value;
    fn index(&self, i: usize) -> &Value {
        self.as_array().and_then(|a| a.get(i)).unwrap_or(&NULL)
    }
}

/// Writes `s` as a JSON string, as serde_json does (escaping `"`, `\\` and control characters
/// only). Most strings need no escape: that is checked 64 bytes at a time (vectorised) and they
/// are copied whole, several times faster than serde_json's byte-by-byte writer.
fn write_json_str(s: &str, out: &mut Vec<u8>) {
    let b = s.as_bytes();
    let escapes = b.chunks(64).any(|c| {
        c.iter().fold(false, |acc, &x| {
            acc | (x < 0x20) | (x == b'"') | (x == b'\\')
        })
    });
    if escapes {
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.reserve(b.len() + 2);
        out.push(b'"');
        out.extend_from_slice(b);
        out.push(b'"');
    }
}

fn write_json_value(v: &Value, out: &mut Vec<u8>, att: &mut Vec<Bytes>) {
    use std::io::Write;
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => {
            if f.is_finite() {
                // serde_json prints floats the way JavaScript reads them back.
                let _ = serde_json::to_writer(&mut *out, f);
            } else {
                out.extend_from_slice(b"null");
            }
        }
        Value::String(s) => write_json_str(s, out),
        Value::Bytes(b) => {
            let _ = write!(out, "{{\"_placeholder\":true,\"num\":{}}}", att.len());
            att.push(b.clone());
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_value(x, out, att);
            }
            out.push(b']');
        }
        Value::Map(m) => {
            out.push(b'{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(k, out);
                out.push(b':');
                write_json_value(x, out, att);
            }
            out.push(b'}');
        }
    }
}

impl Serialize for Value {
    /// Serializes with serde's data model; bytes go through `serialize_bytes` (which
    /// serde_json writes as an array of numbers). For the wire, use [`Value::write_json`].
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::String(x) => s.serialize_str(x),
            Value::Bytes(b) => s.serialize_bytes(b),
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for x in a {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            Value::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, x) in m {
                    map.serialize_entry(k, x)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> std::result::Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E>(self) -> std::result::Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D2: Deserializer<'de>>(
                self,
                d: D2,
            ) -> std::result::Result<Value, D2::Error> {
                Value::deserialize(d)
            }
            fn visit_bool<E>(self, b: bool) -> std::result::Result<Value, E> {
                Ok(Value::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> std::result::Result<Value, E> {
                Ok(Value::Int(i))
            }
            fn visit_u64<E>(self, u: u64) -> std::result::Result<Value, E> {
                Ok(i64::try_from(u)
                    .map(Value::Int)
                    .unwrap_or(Value::Float(u as f64)))
            }
            fn visit_f64<E>(self, f: f64) -> std::result::Result<Value, E> {
                Ok(Value::Float(f))
            }
            fn visit_str<E>(self, s: &str) -> std::result::Result<Value, E> {
                Ok(Value::String(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> std::result::Result<Value, E> {
                Ok(Value::String(s))
            }
            fn visit_bytes<E>(self, b: &[u8]) -> std::result::Result<Value, E> {
                Ok(Value::Bytes(Bytes::copy_from_slice(b)))
            }
            fn visit_byte_buf<E>(self, b: Vec<u8>) -> std::result::Result<Value, E> {
                Ok(Value::Bytes(Bytes::from(b)))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<Value, A::Error> {
                let mut v = Vec::with_capacity(a.size_hint().unwrap_or(0).min(64));
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Value::Array(v))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<Value, A::Error> {
                let mut m = Map::with_capacity(a.size_hint().unwrap_or(0).min(64));
                while let Some((k, x)) = a.next_entry::<String, Value>()? {
                    m.insert(k, x);
                }
                Ok(Value::Map(m))
            }
        }
        d.deserialize_any(V)
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Map(o.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

macro_rules! from_scalar {
    ($($t:ty => $variant:ident as $conv:ty),*) => {$(
        impl From<$t> for Value {
            fn from(x: $t) -> Self { Value::$variant(x as $conv) }
        }
    )*};
}
from_scalar!(bool => Bool as bool, i32 => Int as i64, i64 => Int as i64, u32 => Int as i64,
    u8 => Int as i64, i16 => Int as i64, u16 => Int as i64, f64 => Float as f64, f32 => Float as f64);

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<Bytes> for Value {
    fn from(b: Bytes) -> Self {
        Value::Bytes(b)
    }
}
impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(Bytes::from(b))
    }
}
impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Value::Array(a)
    }
}
impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Map(m)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Self {
        o.map(Into::into).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    proptest::proptest! {
        /// Strings and keys are written exactly as serde_json writes them.
        #[test]
        fn strings_written_as_serde_json_does(s in "(.|[\"\\\\\u{0}-\u{1f}\u{7f}é€😀]){0,200}") {
            let mut m = Map::new();
            m.insert(s.clone(), Value::from(s.as_str()));
            let mut out = Vec::new();
            Value::Map(m).write_json(&mut out, &mut Vec::new());
            let expected = serde_json::to_vec(&json!({ s.clone(): s })).unwrap();
            proptest::prop_assert_eq!(out, expected);
        }
    }

    #[test]
    fn long_strings_escaped_where_needed() {
        for s in [
            "x".repeat(4096),
            format!("{}é\"", "y".repeat(130)),
            format!("{}\u{1}z", "€".repeat(40)),
        ] {
            let mut out = Vec::new();
            Value::from(s.as_str()).write_json(&mut out, &mut Vec::new());
            assert_eq!(out, serde_json::to_vec(&s).unwrap());
        }
    }

    #[test]
    fn json_roundtrip_with_attachments() {
        let mut v = Value::from(json!({"a": [1, 2.5, "x\"y", null, true], "b": {}}));
        if let Value::Map(m) = &mut v {
            m.insert("bin".into(), Value::Bytes(Bytes::from_static(b"\x00\x01")));
        }
        let mut out = Vec::new();
        let mut att = Vec::new();
        v.write_json(&mut out, &mut att);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            r#"{"a":[1,2.5,"x\"y",null,true],"b":{},"bin":{"_placeholder":true,"num":0}}"#
        );
        assert_eq!(att.len(), 1);
        let back = Value::from_json_with_attachments(&text, &att).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn bad_placeholder_is_error() {
        let e = Value::from_json_with_attachments(
            r#"[{"_placeholder":true,"num":3}]"#,
            &[Bytes::new()],
        );
        assert!(matches!(e, Err(Error::Parse(_))));
        let e = Value::from_json_with_attachments(
            r#"[{"_placeholder":true,"num":-1}]"#,
            &[Bytes::new()],
        );
        assert!(matches!(e, Err(Error::Parse(_))));
    }

    #[test]
    fn non_finite_floats_are_null() {
        assert_eq!(Value::Float(f64::NAN).to_json_string(), "null");
        assert_eq!(
            Value::Array(vec![Value::Float(f64::INFINITY)]).to_json_string(),
            "[null]"
        );
    }
}
