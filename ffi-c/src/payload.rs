//! `polysio_payload`: the arguments of one event. On the wire (and in
//! `polysio_payload_from_json` / `polysio_payload_to_json`) it is a JSON array whose binary
//! parts are placeholders `{"_placeholder":true,"num":N}` into an array of attachments; the
//! builder and the JSON-pointer getters let C code build and read payloads, binary included,
//! without ever writing a placeholder.

use std::ffi::{c_char, c_double};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use polysio::{Map, Value};

use crate::error::{
    bytes, check_out, cstr, ffi, polysio_result, polysio_result::*, text, write_out, Error, Result,
};
use crate::handle::{self, kind, Borrowed};

/// The arguments of an event (a JSON array, binary parts included). Owned when made by
/// `polysio_payload_new` / `_from_json` / `_clone` or returned by a function documented so
/// (free it with `polysio_payload_free`); borrowed, read-only and valid until the callback
/// returns when passed to a callback.
#[allow(non_camel_case_types)]
pub struct polysio_payload {
    _private: [u8; 0],
}
kind!(polysio_payload, PayloadObj, Payload, "polysio_payload");

/// A `(data, len)` byte buffer: one binary attachment.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct polysio_buffer {
    /// The bytes (may be NULL when `len` is 0).
    pub data: *const u8,
    /// The number of bytes.
    pub len: usize,
}

/// The type of a value inside a payload (`polysio_payload_type`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum polysio_value_type {
    /// `null`.
    POLYSIO_VALUE_NULL = 0,
    /// `true` / `false`.
    POLYSIO_VALUE_BOOL = 1,
    /// A number that is an integer (fits in `int64_t`).
    POLYSIO_VALUE_INT = 2,
    /// Any other number.
    POLYSIO_VALUE_DOUBLE = 3,
    /// A string.
    POLYSIO_VALUE_STRING = 4,
    /// Binary data (an attachment).
    POLYSIO_VALUE_BINARY = 5,
    /// An array.
    POLYSIO_VALUE_ARRAY = 6,
    /// An object.
    POLYSIO_VALUE_OBJECT = 7,
}

pub struct PayloadObj {
    data: Mutex<Data>,
    readonly: bool,
}

struct Data {
    /// Always a `Value::Array`: the arguments.
    root: Value,
    /// The JSON text (NUL-terminated) and attachments, made on demand, dropped on change.
    encoded: Option<(Vec<u8>, Vec<Bytes>)>,
}

impl PayloadObj {
    pub(crate) fn new(args: Vec<Value>, readonly: bool) -> Arc<PayloadObj> {
        let mut root = Value::Array(args);
        terminate_strings(&mut root);
        Arc::new(PayloadObj {
            data: Mutex::new(Data {
                root,
                encoded: None,
            }),
            readonly,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_mut(&self) -> Result<MutexGuard<'_, Data>> {
        if self.readonly {
            return Err(Error::invalid(
                "this payload is read-only (passed to a callback); clone it to modify it",
            ));
        }
        let mut d = self.lock();
        d.encoded = None;
        Ok(d)
    }

    /// A copy of the arguments (strings copied, binary shared).
    pub(crate) fn args(&self) -> Vec<Value> {
        match &self.lock().root {
            Value::Array(a) => a.clone(),
            _ => Vec::new(),
        }
    }

    fn push(&self, mut v: Value) -> Result<()> {
        terminate_strings(&mut v);
        let mut d = self.lock_mut()?;
        if let Value::Array(a) = &mut d.root {
            a.push(v);
        }
        Ok(())
    }
}

/// Makes sure every string is followed by a NUL byte in its spare capacity, so the pointers
/// the getters hand out are also C strings. Done before any pointer is handed out; strings are
/// never modified afterwards (only moved, which keeps their heap buffer in place).
fn terminate_strings(v: &mut Value) {
    match v {
        Value::String(s) => {
            // SAFETY: only the spare capacity is written; the string's contents stay UTF-8.
            let vec = unsafe { s.as_mut_vec() };
            if vec.capacity() == vec.len() {
                vec.reserve_exact(1);
            }
            vec.spare_capacity_mut()[0].write(0);
        }
        Value::Array(a) => a.iter_mut().for_each(terminate_strings),
        Value::Map(m) => m.values_mut().for_each(terminate_strings),
        _ => {}
    }
}

/// The payload behind a handle that may be NULL (no arguments).
pub(crate) fn args_of(p: *const polysio_payload) -> Result<Vec<Value>> {
    if p.is_null() {
        Ok(Vec::new())
    } else {
        Ok(handle::get(p)?.args())
    }
}

/// Registers `args` as a read-only payload for the duration of a callback.
pub(crate) fn borrowed(args: Vec<Value>) -> Borrowed {
    Borrowed::new::<polysio_payload>(PayloadObj::new(args, true))
}

/// Registers an owned payload (the caller frees it) and returns its handle.
pub(crate) fn owned(args: Vec<Value>) -> *mut polysio_payload {
    handle::ptr_of(handle::insert::<polysio_payload>(PayloadObj::new(
        args, false,
    )))
}

fn parse_json(json: &str) -> Result<Value> {
    serde_json::from_str::<Value>(json)
        .map_err(|e| Error::new(POLYSIO_ERR_INVALID_JSON, format!("invalid JSON: {e}")))
}

/// Parses one JSON text into a value, the placeholders in it replaced by `attachments`.
pub(crate) fn value_from_json(json: &str, attachments: &[Bytes]) -> Result<Value> {
    let mut v = parse_json(json)?;
    // Every placeholder must name an attachment, also when there are none.
    v.fill_placeholders(attachments)
        .map_err(|e| Error::invalid(format!("bad placeholder: {e}")))?;
    Ok(v)
}

/// Splits an RFC 6901 JSON pointer into its unescaped segments.
fn segments(pointer: &str) -> Result<Vec<String>> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer.strip_prefix('/').ok_or_else(|| {
        Error::invalid(format!(
            "JSON pointer {pointer:?} must be empty or start with '/'"
        ))
    })?;
    Ok(rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn index(seg: &str, len: usize) -> Option<usize> {
    if seg.is_empty() || (seg.len() > 1 && seg.starts_with('0')) {
        return None;
    }
    seg.parse::<usize>().ok().filter(|i| *i < len)
}

fn lookup<'a>(root: &'a Value, pointer: &str) -> Result<&'a Value> {
    let mut v = root;
    for seg in segments(pointer)? {
        v = match v {
            Value::Array(a) => index(&seg, a.len()).map(|i| &a[i]),
            Value::Map(m) => m.get(&seg),
            _ => None,
        }
        .ok_or_else(|| Error::new(POLYSIO_ERR_NOT_FOUND, format!("nothing at {pointer:?}")))?;
    }
    Ok(v)
}

fn set_at(root: &mut Value, pointer: &str, new: Value) -> Result<()> {
    let mut segs = segments(pointer)?;
    let last = segs
        .pop()
        .ok_or_else(|| Error::invalid("cannot replace the whole payload; use a pointer like /0"))?;
    let mut v = root;
    for seg in segs {
        v = match v {
            Value::Array(a) => {
                let n = a.len();
                index(&seg, n).map(move |i| &mut a[i])
            }
            Value::Map(m) => m.get_mut(&seg),
            _ => None,
        }
        .ok_or_else(|| Error::new(POLYSIO_ERR_NOT_FOUND, format!("nothing at {pointer:?}")))?;
    }
    match v {
        Value::Array(a) => {
            if last == "-" || last == a.len().to_string() {
                a.push(new);
            } else {
                let i = index(&last, a.len()).ok_or_else(|| {
                    Error::new(
                        POLYSIO_ERR_NOT_FOUND,
                        format!("{pointer:?}: index out of range"),
                    )
                })?;
                a[i] = new;
            }
        }
        Value::Map(m) => {
            m.insert(last, new);
        }
        _ => {
            return Err(Error::new(
                POLYSIO_ERR_WRONG_TYPE,
                format!("{pointer:?}: the parent is neither an array nor an object"),
            ))
        }
    }
    Ok(())
}

fn type_of(v: &Value) -> polysio_value_type {
    use polysio_value_type::*;
    match v {
        Value::Null => POLYSIO_VALUE_NULL,
        Value::Bool(_) => POLYSIO_VALUE_BOOL,
        Value::Int(_) => POLYSIO_VALUE_INT,
        Value::Float(_) => POLYSIO_VALUE_DOUBLE,
        Value::String(_) => POLYSIO_VALUE_STRING,
        Value::Bytes(_) => POLYSIO_VALUE_BINARY,
        Value::Array(_) => POLYSIO_VALUE_ARRAY,
        Value::Map(_) => POLYSIO_VALUE_OBJECT,
    }
}

fn wrong_type(pointer: &str, want: &str, got: &Value) -> Error {
    Error::new(
        POLYSIO_ERR_WRONG_TYPE,
        format!("{pointer:?} is {:?}, not {want}", type_of(got)),
    )
}

/// Reads the value at `pointer` with `f`.
fn read<T>(
    payload: *const polysio_payload,
    pointer: *const c_char,
    f: impl FnOnce(&str, &Value) -> Result<T>,
) -> Result<T> {
    let p = handle::get(payload)?;
    let pointer = cstr(pointer, "pointer")?;
    let d = p.lock();
    let v = lookup(&d.root, pointer)?;
    f(pointer, v)
}

/// The body of a getter with one out-parameter: the value at `pointer`, mapped by `f`.
fn read_into<T>(
    payload: *const polysio_payload,
    pointer: *const c_char,
    out: *mut T,
    f: impl FnOnce(&str, &Value) -> Result<T>,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        write_out(out, read(payload, pointer, f)?);
        Ok(())
    })
}

/// Creates an empty payload (no arguments). Free it with `polysio_payload_free`.
///
/// ```c
/// polysio_payload *p = NULL;
/// polysio_payload_new(&p);
/// polysio_payload_push_string(p, "hello", 5);
/// polysio_payload_push_binary(p, bytes, n);     // a binary argument, no placeholder needed
/// polysio_socket_emit(socket, "chat", p);
/// polysio_payload_free(p);
/// ```
#[no_mangle]
pub extern "C" fn polysio_payload_new(out: *mut *mut polysio_payload) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        write_out(out, owned(Vec::new()));
        Ok(())
    })
}

/// Creates a payload from the wire form: `json` (`json_len` bytes of UTF-8, not necessarily
/// NUL-terminated) must be a JSON array of arguments, where `{"_placeholder":true,"num":N}`
/// stands for `attachments[N]`. The bytes are copied. Errors: `POLYSIO_ERR_INVALID_UTF8`,
/// `POLYSIO_ERR_INVALID_JSON`, `POLYSIO_ERR_INVALID_ARGUMENT` (not an array, or a placeholder
/// index out of range).
///
/// ```c
/// polysio_buffer att[1] = {{img, img_len}};
/// const char *json = "[\"photo\",{\"data\":{\"_placeholder\":true,\"num\":0}}]";
/// polysio_payload *p = NULL;
/// if (polysio_payload_from_json(json, strlen(json), att, 1, &p) != POLYSIO_OK) { ... }
/// ```
#[no_mangle]
pub extern "C" fn polysio_payload_from_json(
    json: *const c_char,
    json_len: usize,
    attachments: *const polysio_buffer,
    attachments_len: usize,
    out: *mut *mut polysio_payload,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let json = text(json, json_len, "json")?;
        let bufs: &[polysio_buffer] = if attachments_len == 0 {
            &[]
        } else if attachments.is_null() {
            return Err(Error::null("attachments"));
        } else {
            // SAFETY: the caller passes `attachments_len` buffers (the documented contract).
            unsafe { std::slice::from_raw_parts(attachments, attachments_len) }
        };
        let atts = bufs
            .iter()
            .enumerate()
            .map(|(i, b)| {
                bytes(b.data, b.len, &format!("attachments[{i}]")).map(Bytes::copy_from_slice)
            })
            .collect::<Result<Vec<_>>>()?;
        let args = match value_from_json(json, &atts)? {
            Value::Array(a) => a,
            _ => {
                return Err(Error::invalid(
                    "payload JSON must be an array (one element per argument)",
                ))
            }
        };
        write_out(out, owned(args));
        Ok(())
    })
}

/// Copies `payload` (also a borrowed one) into a new, modifiable payload the caller owns.
#[no_mangle]
pub extern "C" fn polysio_payload_clone(
    payload: *const polysio_payload,
    out: *mut *mut polysio_payload,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let args = handle::get(payload)?.args();
        write_out(out, owned(args));
        Ok(())
    })
}

/// Frees a payload the caller owns. Freeing a borrowed payload, or twice, is an error
/// (`POLYSIO_ERR_CLOSED` / `POLYSIO_ERR_INVALID_HANDLE`), never a crash.
#[no_mangle]
pub extern "C" fn polysio_payload_free(payload: *mut polysio_payload) -> polysio_result {
    ffi(|| {
        let p = handle::get(payload)?;
        if p.readonly {
            return Err(Error::invalid(
                "this payload is borrowed (passed to a callback); the library frees it",
            ));
        }
        handle::remove(payload).map(drop)
    })
}

/// Appends a `null` argument.
#[no_mangle]
pub extern "C" fn polysio_payload_push_null(payload: *mut polysio_payload) -> polysio_result {
    ffi(|| handle::get(payload)?.push(Value::Null))
}

/// Appends a boolean argument.
#[no_mangle]
pub extern "C" fn polysio_payload_push_bool(
    payload: *mut polysio_payload,
    value: bool,
) -> polysio_result {
    ffi(|| handle::get(payload)?.push(Value::Bool(value)))
}

/// Appends an integer argument.
#[no_mangle]
pub extern "C" fn polysio_payload_push_int(
    payload: *mut polysio_payload,
    value: i64,
) -> polysio_result {
    ffi(|| handle::get(payload)?.push(Value::Int(value)))
}

/// Appends a number argument (NaN and infinities travel as `null`, as in JavaScript).
#[no_mangle]
pub extern "C" fn polysio_payload_push_double(
    payload: *mut polysio_payload,
    value: c_double,
) -> polysio_result {
    ffi(|| handle::get(payload)?.push(Value::Float(value)))
}

/// Appends a string argument: `len` bytes of UTF-8 at `data` (copied).
#[no_mangle]
pub extern "C" fn polysio_payload_push_string(
    payload: *mut polysio_payload,
    data: *const c_char,
    len: usize,
) -> polysio_result {
    ffi(|| {
        let p = handle::get(payload)?;
        let s = text(data, len, "data")?;
        p.push(Value::String(s.to_owned()))
    })
}

/// Appends a binary argument: `len` bytes at `data` (copied). It travels as an attachment; the
/// receiver gets bytes, not a placeholder.
#[no_mangle]
pub extern "C" fn polysio_payload_push_binary(
    payload: *mut polysio_payload,
    data: *const u8,
    len: usize,
) -> polysio_result {
    ffi(|| {
        let p = handle::get(payload)?;
        let b = bytes(data, len, "data")?;
        p.push(Value::Bytes(Bytes::copy_from_slice(b)))
    })
}

/// Appends one argument given as JSON text (`len` bytes of UTF-8): an object, array, string,
/// number... Placeholder objects in it are plain objects; put binary inside with
/// `polysio_payload_set_binary`.
#[no_mangle]
pub extern "C" fn polysio_payload_push_json(
    payload: *mut polysio_payload,
    json: *const c_char,
    len: usize,
) -> polysio_result {
    ffi(|| {
        let p = handle::get(payload)?;
        let v = parse_json(text(json, len, "json")?)?;
        p.push(v)
    })
}

/// Appends a copy of the value at `pointer` in `src` (any payload, borrowed ones included;
/// binary parts stay binary) as a new argument: forwards arguments without re-encoding them.
///
/// ```c
/// // forward every argument but the first
/// size_t n; polysio_payload_count(args, &n);
/// for (size_t i = 1; i < n; i++) {
///     char ptr[24]; snprintf(ptr, sizeof ptr, "/%zu", i);
///     polysio_payload_push_value(rest, args, ptr);
/// }
/// ```
#[no_mangle]
pub extern "C" fn polysio_payload_push_value(
    payload: *mut polysio_payload,
    src: *const polysio_payload,
    pointer: *const c_char,
) -> polysio_result {
    ffi(|| {
        let p = handle::get(payload)?;
        // Copied out before pushing: `src` may be `payload` itself.
        let v = read(src, pointer, |_, v| Ok(v.clone()))?;
        p.push(v)
    })
}

/// Sets `new` at `pointer` in `payload`.
fn set(
    payload: *mut polysio_payload,
    pointer: *const c_char,
    new: impl FnOnce() -> Result<Value>,
) -> polysio_result {
    ffi(|| {
        let p = handle::get(payload)?;
        let pointer = cstr(pointer, "pointer")?;
        let mut v = new()?;
        terminate_strings(&mut v);
        let mut d = p.lock_mut()?;
        set_at(&mut d.root, pointer, v)
    })
}

/// Puts `len` bytes at `data` (copied) as binary at `pointer`, an RFC 6901 JSON pointer into the
/// argument array: `/1/avatar` sets key `avatar` of argument 1 (an object), `/0/list/-` appends
/// to an array, `/-` appends an argument. The parent must exist. The other `_set_` functions
/// work the same way.
///
/// ```c
/// polysio_payload_push_json(p, "{}", 2);
/// polysio_payload_set_string(p, "/0/name", name, strlen(name));  // escaped for you
/// polysio_payload_set_binary(p, "/0/data", png, png_len);        // [{"name":..., "data":<bytes>}]
/// ```
#[no_mangle]
pub extern "C" fn polysio_payload_set_binary(
    payload: *mut polysio_payload,
    pointer: *const c_char,
    data: *const u8,
    len: usize,
) -> polysio_result {
    set(payload, pointer, || {
        Ok(Value::Bytes(Bytes::copy_from_slice(bytes(
            data, len, "data",
        )?)))
    })
}

/// Puts a string (`len` bytes of UTF-8, copied) at `pointer` (see `polysio_payload_set_binary`).
#[no_mangle]
pub extern "C" fn polysio_payload_set_string(
    payload: *mut polysio_payload,
    pointer: *const c_char,
    data: *const c_char,
    len: usize,
) -> polysio_result {
    set(payload, pointer, || {
        Ok(Value::String(text(data, len, "data")?.to_owned()))
    })
}

/// Puts an integer at `pointer` (see `polysio_payload_set_binary`).
#[no_mangle]
pub extern "C" fn polysio_payload_set_int(
    payload: *mut polysio_payload,
    pointer: *const c_char,
    value: i64,
) -> polysio_result {
    set(payload, pointer, || Ok(Value::Int(value)))
}

/// Puts a number at `pointer` (see `polysio_payload_set_binary`).
#[no_mangle]
pub extern "C" fn polysio_payload_set_double(
    payload: *mut polysio_payload,
    pointer: *const c_char,
    value: c_double,
) -> polysio_result {
    set(payload, pointer, || Ok(Value::Float(value)))
}

/// Puts a boolean at `pointer` (see `polysio_payload_set_binary`).
#[no_mangle]
pub extern "C" fn polysio_payload_set_bool(
    payload: *mut polysio_payload,
    pointer: *const c_char,
    value: bool,
) -> polysio_result {
    set(payload, pointer, || Ok(Value::Bool(value)))
}

/// Puts the value of JSON text (`len` bytes; an object, array, `null`...) at `pointer` (see
/// `polysio_payload_set_binary`).
#[no_mangle]
pub extern "C" fn polysio_payload_set_json(
    payload: *mut polysio_payload,
    pointer: *const c_char,
    json: *const c_char,
    len: usize,
) -> polysio_result {
    set(payload, pointer, || parse_json(text(json, len, "json")?))
}

/// The number of arguments.
#[no_mangle]
pub extern "C" fn polysio_payload_count(
    payload: *const polysio_payload,
    out: *mut usize,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let p = handle::get(payload)?;
        let n = p.lock().root.as_array().map_or(0, Vec::len);
        write_out(out, n);
        Ok(())
    })
}

fn encoded<'a>(d: &'a mut MutexGuard<'_, Data>) -> &'a (Vec<u8>, Vec<Bytes>) {
    if d.encoded.is_none() {
        let mut json = Vec::new();
        let mut atts = Vec::new();
        d.root.write_json(&mut json, &mut atts);
        json.push(0);
        d.encoded = Some((json, atts));
    }
    d.encoded.get_or_insert_with(Default::default)
}

/// The wire form: `*json` gets the JSON array text (NUL-terminated; `*len` its length without
/// the NUL) with binary parts as placeholders numbered in order, matching
/// `polysio_payload_attachment`. The text belongs to the payload: valid until it is modified or
/// freed.
#[no_mangle]
pub extern "C" fn polysio_payload_to_json(
    payload: *const polysio_payload,
    json: *mut *const c_char,
    len: *mut usize,
) -> polysio_result {
    ffi(|| {
        check_out(json, "json")?;
        let p = handle::get(payload)?;
        let mut d = p.lock();
        let (text, _) = encoded(&mut d);
        write_out(json, text.as_ptr().cast());
        write_out(len, text.len() - 1);
        Ok(())
    })
}

/// The number of binary attachments of the wire form.
#[no_mangle]
pub extern "C" fn polysio_payload_attachment_count(
    payload: *const polysio_payload,
    out: *mut usize,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let p = handle::get(payload)?;
        let mut d = p.lock();
        write_out(out, encoded(&mut d).1.len());
        Ok(())
    })
}

/// Attachment `index` of the wire form (placeholder `num` = `index`). The bytes belong to the
/// payload: valid until it is modified or freed.
#[no_mangle]
pub extern "C" fn polysio_payload_attachment(
    payload: *const polysio_payload,
    index: usize,
    data: *mut *const u8,
    len: *mut usize,
) -> polysio_result {
    ffi(|| {
        check_out(data, "data")?;
        check_out(len, "len")?;
        let p = handle::get(payload)?;
        let mut d = p.lock();
        let atts = &encoded(&mut d).1;
        let b = atts.get(index).ok_or_else(|| {
            Error::new(
                POLYSIO_ERR_NOT_FOUND,
                format!("no attachment {index} (there are {})", atts.len()),
            )
        })?;
        write_out(data, b.as_ptr());
        write_out(len, b.len());
        Ok(())
    })
}

/// The type of the value at `pointer` (RFC 6901: `""` is the argument array, `/0` the first
/// argument, `/0/user/name` a key inside it, `/2/0` an array element). Writes a
/// `polysio_value_type`.
#[no_mangle]
pub extern "C" fn polysio_payload_type(
    payload: *const polysio_payload,
    pointer: *const c_char,
    out: *mut polysio_value_type,
) -> polysio_result {
    read_into(payload, pointer, out, |_, v| Ok(type_of(v)))
}

/// The boolean at `pointer`.
#[no_mangle]
pub extern "C" fn polysio_payload_get_bool(
    payload: *const polysio_payload,
    pointer: *const c_char,
    out: *mut bool,
) -> polysio_result {
    read_into(payload, pointer, out, |ptr, v| {
        v.as_bool().ok_or_else(|| wrong_type(ptr, "a boolean", v))
    })
}

/// The integer at `pointer` (a number with an integral value that fits in `int64_t`).
#[no_mangle]
pub extern "C" fn polysio_payload_get_int(
    payload: *const polysio_payload,
    pointer: *const c_char,
    out: *mut i64,
) -> polysio_result {
    read_into(payload, pointer, out, |ptr, v| {
        v.as_i64().ok_or_else(|| wrong_type(ptr, "an integer", v))
    })
}

/// The number at `pointer` as a double (integers too).
#[no_mangle]
pub extern "C" fn polysio_payload_get_double(
    payload: *const polysio_payload,
    pointer: *const c_char,
    out: *mut c_double,
) -> polysio_result {
    read_into(payload, pointer, out, |ptr, v| {
        v.as_f64().ok_or_else(|| wrong_type(ptr, "a number", v))
    })
}

/// The string at `pointer`: `*data` points to its UTF-8 bytes, `*len` (nullable) gets their
/// number. The bytes are followed by a NUL, so `*data` is also a C string (cut short if the
/// string itself contains a NUL). They belong to the payload: valid until it is modified or
/// freed (or the callback that received it returns).
#[no_mangle]
pub extern "C" fn polysio_payload_get_string(
    payload: *const polysio_payload,
    pointer: *const c_char,
    data: *mut *const c_char,
    len: *mut usize,
) -> polysio_result {
    ffi(|| {
        check_out(data, "data")?;
        let (ptr, n) = read(payload, pointer, |ptr, v| {
            v.as_str()
                .map(|s| (s.as_ptr(), s.len()))
                .ok_or_else(|| wrong_type(ptr, "a string", v))
        })?;
        write_out(data, ptr.cast());
        write_out(len, n);
        Ok(())
    })
}

/// The binary data at `pointer`: `*data` and `*len`. The bytes belong to the payload: valid
/// until it is modified or freed (or the callback that received it returns).
#[no_mangle]
pub extern "C" fn polysio_payload_get_binary(
    payload: *const polysio_payload,
    pointer: *const c_char,
    data: *mut *const u8,
    len: *mut usize,
) -> polysio_result {
    ffi(|| {
        check_out(data, "data")?;
        check_out(len, "len")?;
        let (ptr, n) = read(payload, pointer, |ptr, v| {
            v.as_bytes()
                .map(|b| (b.as_ptr(), b.len()))
                .ok_or_else(|| wrong_type(ptr, "binary", v))
        })?;
        write_out(data, ptr);
        write_out(len, n);
        Ok(())
    })
}

/// The length of the value at `pointer`: elements of an array, keys of an object, bytes of a
/// string or of binary data.
#[no_mangle]
pub extern "C" fn polysio_payload_get_length(
    payload: *const polysio_payload,
    pointer: *const c_char,
    out: *mut usize,
) -> polysio_result {
    read_into(payload, pointer, out, |ptr, v| match v {
        Value::Array(a) => Ok(a.len()),
        Value::Map(m) => Ok(m.len()),
        Value::String(s) => Ok(s.len()),
        Value::Bytes(b) => Ok(b.len()),
        _ => Err(wrong_type(ptr, "an array, object, string or binary", v)),
    })
}

/// Key number `index` (in order) of the object at `pointer`: `*data` / `*len` (not
/// NUL-terminated). Valid until the payload is modified or freed. With `polysio_payload_get_length`, walks
/// an object such as the handshake's headers.
#[no_mangle]
pub extern "C" fn polysio_payload_get_key(
    payload: *const polysio_payload,
    pointer: *const c_char,
    index: usize,
    data: *mut *const c_char,
    len: *mut usize,
) -> polysio_result {
    ffi(|| {
        check_out(data, "data")?;
        check_out(len, "len")?;
        let (ptr, n) = read(payload, pointer, |ptr, v| match v {
            Value::Map(m) => m
                .get_index(index)
                .map(|(k, _)| (k.as_ptr(), k.len()))
                .ok_or_else(|| {
                    Error::new(
                        POLYSIO_ERR_NOT_FOUND,
                        format!("{ptr:?} has {} keys, no key {index}", m.len()),
                    )
                }),
            _ => Err(wrong_type(ptr, "an object", v)),
        })?;
        write_out(data, ptr.cast());
        write_out(len, n);
        Ok(())
    })
}

/// A map value built from pairs, for payloads the library makes (handshakes, errors).
pub(crate) fn map(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Map>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers() {
        let root = Value::from(serde_json::json!([{"a/b": {"c~d": [1, 2]}}, "x"]));
        assert_eq!(lookup(&root, "/0/a~1b/c~0d/1").unwrap(), &Value::from(2));
        assert_eq!(lookup(&root, "/1").unwrap(), &Value::from("x"));
        assert!(lookup(&root, "/01").is_err());
        assert!(lookup(&root, "/2").is_err());
        assert!(lookup(&root, "0").is_err());
        let mut root = root;
        set_at(
            &mut root,
            "/0/bin",
            Value::Bytes(Bytes::from_static(b"\x01")),
        )
        .unwrap();
        set_at(&mut root, "/-", Value::Null).unwrap();
        set_at(&mut root, "/0/a~1b/c~0d/-", Value::from(3)).unwrap();
        assert_eq!(root[0]["bin"], Value::Bytes(Bytes::from_static(b"\x01")));
        assert_eq!(root[2], Value::Null);
        assert_eq!(root[0]["a/b"]["c~d"][2], Value::from(3));
        assert!(set_at(&mut root, "", Value::Null).is_err());
        assert!(set_at(&mut root, "/1/x", Value::Null).is_err());
    }

    #[test]
    fn strings_are_nul_terminated() {
        let p = PayloadObj::new(
            vec![
                Value::from("abc"),
                Value::from(serde_json::json!({"k": "v"})),
            ],
            true,
        );
        let d = p.lock();
        for s in [
            d.root[0].as_str().unwrap(),
            d.root[1]["k"].as_str().unwrap(),
        ] {
            // SAFETY: terminate_strings wrote a NUL right after the string.
            assert_eq!(unsafe { *s.as_ptr().add(s.len()) }, 0);
        }
    }
}
