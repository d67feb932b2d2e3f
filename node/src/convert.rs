//! Direct conversion between JavaScript values and [`polysio::Value`], with Node-API calls (no
//! JSON text in between).
//!
//! JavaScript → Value follows `JSON.stringify` (what socket.io does), except that binary data is
//! kept: `Buffer`, any typed array, `DataView` and `ArrayBuffer` become bytes, nested anywhere.
//! `undefined`, functions and symbols are dropped from objects and become `null` elsewhere;
//! objects with a `toJSON` method (e.g. `Date`) are replaced by its result; integral numbers in
//! the safe range become integers. BigInts are refused (`ERR_INVALID_ARG_TYPE`), as are values
//! nested deeper than [`MAX_DEPTH`] (which is also how circular objects end,
//! `ERR_INVALID_ARG_VALUE`).
//!
//! Value → JavaScript gives plain objects and arrays, and `Buffer`s for bytes (as socket.io does
//! in Node). Events without bytes reach JavaScript as JSON text instead (`dispatch.rs`), which
//! `JSON.parse` turns into the same values; ack replies holding objects (no bytes) come as
//! `JSON.stringify` text (`ack.rs`), which gives the same JSON.

use std::ffi::c_void;
use std::ptr;

use bytes::Bytes;
use napi::sys;
use polysio::{Map, Value};

use crate::error::{err, Code, Result};

/// How deep an argument may nest (arrays and objects). The core's decoder refuses deeper JSON.
pub const MAX_DEPTH: usize = 100;

/// The largest integer a JavaScript number represents exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

fn check(status: sys::napi_status, what: &str) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(err(
            Code::Napi,
            format!("{what} failed (Node-API status {status})"),
        ))
    }
}

/// The `typeof` of a value.
pub(crate) unsafe fn type_of(env: sys::napi_env, v: sys::napi_value) -> Result<i32> {
    let mut t = 0;
    check(unsafe { sys::napi_typeof(env, v, &mut t) }, "napi_typeof")?;
    Ok(t)
}

/// Reads a JavaScript string, in one pass: its UTF-16 length (known to V8 without a scan)
/// bounds its UTF-8 length (3 bytes per unit at most), so no first pass measures it.
pub(crate) unsafe fn get_string(env: sys::napi_env, v: sys::napi_value) -> Result<String> {
    let mut units = 0usize;
    check(
        unsafe { sys::napi_get_value_string_utf16(env, v, ptr::null_mut(), 0, &mut units) },
        "napi_get_value_string_utf16",
    )?;
    let cap = units * 3 + 1;
    let mut buf = Vec::<u8>::with_capacity(cap);
    let mut written = 0usize;
    check(
        unsafe {
            sys::napi_get_value_string_utf8(env, v, buf.as_mut_ptr().cast(), cap, &mut written)
        },
        "napi_get_value_string_utf8",
    )?;
    // Node wrote `written` bytes (and a terminating zero, not counted): well-formed UTF-8
    // (V8 replaces lone surrogates with U+FFFD and never splits a character; the buffer has
    // room for the whole string), so it is not checked again.
    unsafe { buf.set_len(written.min(cap)) };
    debug_assert!(std::str::from_utf8(&buf).is_ok());
    Ok(unsafe { String::from_utf8_unchecked(buf) })
}

unsafe fn is(
    env: sys::napi_env,
    v: sys::napi_value,
    f: unsafe fn(sys::napi_env, sys::napi_value, *mut bool) -> sys::napi_status,
) -> Result<bool> {
    let mut b = false;
    check(unsafe { f(env, v, &mut b) }, "type check")?;
    Ok(b)
}

unsafe fn copy_bytes(data: *const c_void, len: usize) -> Bytes {
    if data.is_null() || len == 0 {
        Bytes::new()
    } else {
        Bytes::copy_from_slice(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
    }
}

/// The bytes of a typed array, `DataView` or `ArrayBuffer`; `None` for anything else.
unsafe fn binary(env: sys::napi_env, v: sys::napi_value) -> Result<Option<Bytes>> {
    if unsafe { is(env, v, sys::napi_is_typedarray)? } {
        let (mut kind, mut len, mut data) = (0, 0usize, ptr::null_mut());
        let (mut ab, mut offset) = (ptr::null_mut(), 0usize);
        check(
            unsafe {
                sys::napi_get_typedarray_info(
                    env,
                    v,
                    &mut kind,
                    &mut len,
                    &mut data,
                    &mut ab,
                    &mut offset,
                )
            },
            "napi_get_typedarray_info",
        )?;
        use sys::TypedarrayType as T;
        let size = match kind {
            T::int8_array | T::uint8_array | T::uint8_clamped_array => 1,
            T::int16_array | T::uint16_array => 2,
            T::int32_array | T::uint32_array | T::float32_array => 4,
            _ => 8,
        };
        return Ok(Some(unsafe { copy_bytes(data, len * size) }));
    }
    if unsafe { is(env, v, sys::napi_is_arraybuffer)? } {
        let (mut data, mut len) = (ptr::null_mut(), 0usize);
        check(
            unsafe { sys::napi_get_arraybuffer_info(env, v, &mut data, &mut len) },
            "napi_get_arraybuffer_info",
        )?;
        return Ok(Some(unsafe { copy_bytes(data, len) }));
    }
    if unsafe { is(env, v, sys::napi_is_dataview)? } {
        let (mut len, mut data, mut ab, mut offset) =
            (0usize, ptr::null_mut(), ptr::null_mut(), 0usize);
        check(
            unsafe {
                sys::napi_get_dataview_info(env, v, &mut len, &mut data, &mut ab, &mut offset)
            },
            "napi_get_dataview_info",
        )?;
        return Ok(Some(unsafe { copy_bytes(data, len) }));
    }
    Ok(None)
}

/// A JavaScript value as a [`Value`]; `undefined`, functions and symbols give `None` (dropped
/// from objects, `null` elsewhere).
unsafe fn convert(env: sys::napi_env, v: sys::napi_value, depth: usize) -> Result<Option<Value>> {
    use sys::ValueType as V;
    Ok(Some(match unsafe { type_of(env, v)? } {
        V::napi_undefined | V::napi_function | V::napi_symbol | V::napi_external => {
            return Ok(None)
        }
        V::napi_null => Value::Null,
        V::napi_boolean => {
            let mut b = false;
            check(
                unsafe { sys::napi_get_value_bool(env, v, &mut b) },
                "napi_get_value_bool",
            )?;
            Value::Bool(b)
        }
        V::napi_number => {
            let mut f = 0f64;
            check(
                unsafe { sys::napi_get_value_double(env, v, &mut f) },
                "napi_get_value_double",
            )?;
            number(f)
        }
        V::napi_string => Value::String(unsafe { get_string(env, v)? }),
        V::napi_bigint => {
            return Err(err(
                Code::InvalidArgType,
                "a BigInt cannot be sent (JSON has no BigInt); convert it to a string or number",
            ))
        }
        _ => {
            if depth >= MAX_DEPTH {
                return Err(err(
                    Code::InvalidArgValue,
                    format!("value nested deeper than {MAX_DEPTH} levels (or circular)"),
                ));
            }
            if let Some(b) = unsafe { binary(env, v)? } {
                return Ok(Some(Value::Bytes(b)));
            }
            if unsafe { is(env, v, sys::napi_is_array)? } {
                unsafe { array(env, v, depth)? }
            } else if let Some(j) = unsafe { to_json(env, v)? } {
                return unsafe { convert(env, j, depth + 1) };
            } else {
                unsafe { object(env, v, depth)? }
            }
        }
    }))
}

fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER && !(f == 0.0 && f.is_sign_negative()) {
        Value::Int(f as i64)
    } else {
        Value::Float(f)
    }
}

unsafe fn array(env: sys::napi_env, v: sys::napi_value, depth: usize) -> Result<Value> {
    let mut len = 0u32;
    check(
        unsafe { sys::napi_get_array_length(env, v, &mut len) },
        "napi_get_array_length",
    )?;
    let mut out = Vec::with_capacity(len.min(1 << 16) as usize);
    for i in 0..len {
        let mut e = ptr::null_mut();
        check(
            unsafe { sys::napi_get_element(env, v, i, &mut e) },
            "napi_get_element",
        )?;
        out.push(unsafe { convert(env, e, depth + 1)? }.unwrap_or(Value::Null));
    }
    Ok(Value::Array(out))
}

/// The result of `v.toJSON()` when `v` has such a method (e.g. a `Date`).
unsafe fn to_json(env: sys::napi_env, v: sys::napi_value) -> Result<Option<sys::napi_value>> {
    let mut f = ptr::null_mut();
    check(
        unsafe { sys::napi_get_named_property(env, v, c"toJSON".as_ptr(), &mut f) },
        "reading toJSON",
    )?;
    if unsafe { type_of(env, f)? } != sys::ValueType::napi_function {
        return Ok(None);
    }
    let mut out = ptr::null_mut();
    check(
        unsafe { sys::napi_call_function(env, v, f, 0, ptr::null(), &mut out) },
        "calling toJSON",
    )?;
    Ok(Some(out))
}

unsafe fn object(env: sys::napi_env, v: sys::napi_value, depth: usize) -> Result<Value> {
    let mut keys = ptr::null_mut();
    check(
        unsafe {
            sys::napi_get_all_property_names(
                env,
                v,
                sys::KeyCollectionMode::own_only,
                sys::KeyFilter::enumerable | sys::KeyFilter::skip_symbols,
                sys::KeyConversion::numbers_to_strings,
                &mut keys,
            )
        },
        "napi_get_all_property_names",
    )?;
    let mut len = 0u32;
    check(
        unsafe { sys::napi_get_array_length(env, keys, &mut len) },
        "napi_get_array_length",
    )?;
    let mut m = Map::with_capacity(len.min(1 << 16) as usize);
    for i in 0..len {
        let mut k = ptr::null_mut();
        check(
            unsafe { sys::napi_get_element(env, keys, i, &mut k) },
            "napi_get_element",
        )?;
        let mut x = ptr::null_mut();
        check(
            unsafe { sys::napi_get_property(env, v, k, &mut x) },
            "napi_get_property",
        )?;
        if let Some(val) = unsafe { convert(env, x, depth + 1)? } {
            m.insert(unsafe { get_string(env, k)? }, val);
        }
    }
    Ok(Value::Map(m))
}

/// One argument (top level: `undefined` becomes `null`).
pub(crate) unsafe fn from_js(env: sys::napi_env, v: sys::napi_value) -> Result<Value> {
    Ok(unsafe { convert(env, v, 0)? }.unwrap_or(Value::Null))
}

/// The elements of a JavaScript array, each converted with [`from_js`].
pub(crate) unsafe fn args_from_js(env: sys::napi_env, v: sys::napi_value) -> Result<Vec<Value>> {
    if !unsafe { is(env, v, sys::napi_is_array)? } {
        return Err(err(Code::InvalidArgType, "arguments must be an array"));
    }
    match unsafe { array(env, v, 0)? } {
        Value::Array(a) => Ok(a),
        _ => Ok(Vec::new()),
    }
}

/// A [`Value`] as a JavaScript value.
pub(crate) unsafe fn to_js(env: sys::napi_env, v: &Value) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    let status = match v {
        Value::Null => unsafe { sys::napi_get_null(env, &mut out) },
        Value::Bool(b) => unsafe { sys::napi_get_boolean(env, *b, &mut out) },
        Value::Int(i) => unsafe { sys::napi_create_int64(env, *i, &mut out) },
        Value::Float(f) => unsafe { sys::napi_create_double(env, *f, &mut out) },
        Value::String(s) => unsafe { string(env, s.as_bytes(), &mut out) },
        Value::Bytes(b) => {
            let mut data = ptr::null_mut();
            unsafe {
                sys::napi_create_buffer_copy(env, b.len(), b.as_ptr().cast(), &mut data, &mut out)
            }
        }
        Value::Array(a) => {
            check(
                unsafe { sys::napi_create_array_with_length(env, a.len(), &mut out) },
                "napi_create_array_with_length",
            )?;
            for (i, x) in a.iter().enumerate() {
                let e = unsafe { to_js(env, x)? };
                check(
                    unsafe { sys::napi_set_element(env, out, i as u32, e) },
                    "napi_set_element",
                )?;
            }
            sys::Status::napi_ok
        }
        Value::Map(m) => {
            check(
                unsafe { sys::napi_create_object(env, &mut out) },
                "napi_create_object",
            )?;
            for (k, x) in m {
                let mut key = ptr::null_mut();
                check(
                    unsafe { string(env, k.as_bytes(), &mut key) },
                    "creating a key",
                )?;
                let e = unsafe { to_js(env, x)? };
                check(
                    unsafe { sys::napi_set_property(env, out, key, e) },
                    "napi_set_property",
                )?;
            }
            sys::Status::napi_ok
        }
    };
    check(status, "converting a value")?;
    Ok(out)
}

unsafe fn string(env: sys::napi_env, s: &[u8], out: *mut sys::napi_value) -> sys::napi_status {
    unsafe { sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, out) }
}

/// A JavaScript string.
pub(crate) unsafe fn js_string(env: sys::napi_env, s: &str) -> Result<sys::napi_value> {
    unsafe { js_string_utf8(env, s.as_bytes()) }
}

/// A JavaScript string from UTF-8 bytes, unchecked (Node replaces invalid sequences).
pub(crate) unsafe fn js_string_utf8(env: sys::napi_env, s: &[u8]) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(
        unsafe { string(env, s, &mut out) },
        "napi_create_string_utf8",
    )?;
    Ok(out)
}

/// A JavaScript string from Latin-1 bytes (ASCII included): copied, nothing decoded.
pub(crate) unsafe fn js_string_latin1(env: sys::napi_env, s: &[u8]) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(
        unsafe {
            sys::napi_create_string_latin1(env, s.as_ptr().cast(), s.len() as isize, &mut out)
        },
        "napi_create_string_latin1",
    )?;
    Ok(out)
}

/// A JavaScript array of the given values.
pub(crate) unsafe fn js_array(
    env: sys::napi_env,
    items: &[sys::napi_value],
) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(
        unsafe { sys::napi_create_array_with_length(env, items.len(), &mut out) },
        "napi_create_array_with_length",
    )?;
    for (i, x) in items.iter().enumerate() {
        check(
            unsafe { sys::napi_set_element(env, out, i as u32, *x) },
            "napi_set_element",
        )?;
    }
    Ok(out)
}

/// `null`.
pub(crate) unsafe fn js_null(env: sys::napi_env) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(
        unsafe { sys::napi_get_null(env, &mut out) },
        "napi_get_null",
    )?;
    Ok(out)
}

/// A number.
pub(crate) unsafe fn js_number(env: sys::napi_env, n: f64) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    check(
        unsafe { sys::napi_create_double(env, n, &mut out) },
        "napi_create_double",
    )?;
    Ok(out)
}
