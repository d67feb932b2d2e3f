//! Direct conversion between Python objects and [`Value`] (no JSON text in between).
//!
//! Python → value: `None`, `bool`, `int` (64-bit), `float`, `str`, `bytes` / `bytearray` /
//! `memoryview` (binary attachments), `list` / `tuple` (arrays) and `dict` (maps, keys converted
//! the way `json.dumps` does), nested anywhere. Anything else raises `TypeError` naming the type.
//! Value → Python: `None`, `bool`, `int`, `float`, `str`, `bytes`, `list`, `dict`.

use bytes::Bytes;
use polysio::{Map, Value};
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple,
};

/// Deeper than this is refused (it is almost always a container that contains itself).
const MAX_DEPTH: usize = 256;

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .qualname()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "?".into())
}

fn unsupported(obj: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "Object of type {} cannot be sent by polysio (supported: dict, list, tuple, str, int, \
         float, bool, None, bytes, bytearray, memoryview)",
        type_name(obj)
    ))
}

/// Converts one Python object to a value.
pub(crate) fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    convert(obj, 0)
}

/// Converts a list or tuple of arguments.
pub(crate) fn to_args(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Value>> {
    if let Ok(l) = obj.cast::<PyList>() {
        l.iter().map(|x| convert(&x, 1)).collect()
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        t.iter().map(|x| convert(&x, 1)).collect()
    } else {
        Err(PyTypeError::new_err(format!(
            "arguments must be a list or a tuple, not {}",
            type_name(obj)
        )))
    }
}

fn convert(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "value nested more than {MAX_DEPTH} levels deep (circular reference?)"
        )));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.cast::<PyInt>().is_ok() {
        return match obj.extract::<i64>() {
            Ok(i) => Ok(Value::Int(i)),
            Err(_) => Err(PyOverflowError::new_err(format!(
                "int {} does not fit in 64 bits",
                obj.str().map(|s| s.to_string()).unwrap_or_default()
            ))),
        };
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Bytes(Bytes::copy_from_slice(b.as_bytes())));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Value::Bytes(Bytes::from(b.to_vec())));
    }
    if obj.cast::<PyMemoryView>().is_ok() {
        let b = obj.call_method0("tobytes")?;
        let b = b.cast::<PyBytes>()?;
        return Ok(Value::Bytes(Bytes::copy_from_slice(b.as_bytes())));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut m = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            m.insert(key(&k)?, convert(&v, depth + 1)?);
        }
        return Ok(Value::Map(m));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l
            .iter()
            .map(|x| convert(&x, depth + 1))
            .collect::<PyResult<Vec<_>>>()
            .map(Value::Array);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .map(|x| convert(&x, depth + 1))
            .collect::<PyResult<Vec<_>>>()
            .map(Value::Array);
    }
    Err(unsupported(obj))
}

/// A dict key as `json.dumps` writes it.
fn key(k: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = k.cast::<PyString>() {
        return Ok(s.to_cow()?.into_owned());
    }
    if k.is_none() {
        return Ok("null".into());
    }
    if let Ok(b) = k.cast::<PyBool>() {
        return Ok(if b.is_true() { "true" } else { "false" }.into());
    }
    if k.cast::<PyInt>().is_ok() || k.cast::<PyFloat>().is_ok() {
        return Ok(k.repr()?.to_cow()?.into_owned());
    }
    Err(PyTypeError::new_err(format!(
        "dict keys must be str, int, float, bool or None, not {}",
        type_name(k)
    )))
}

/// Converts a value to a Python object.
pub(crate) fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        Value::Array(a) => {
            let items = a
                .iter()
                .map(|x| to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Map(m) => {
            let d = PyDict::new(py);
            for (k, x) in m {
                d.set_item(k, to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// A list of arguments as a Python list.
pub(crate) fn args_to_py<'py>(py: Python<'py>, args: &[Value]) -> PyResult<Bound<'py, PyList>> {
    let items = args
        .iter()
        .map(|x| to_py(py, x))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

/// A value that converts to Python with [`to_py`] (for exception arguments and returns).
pub(crate) struct PyValue(pub Value);

impl<'py> IntoPyObject<'py> for PyValue {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.0)
    }
}
