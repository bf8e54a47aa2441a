//! Python objects to and from JSON-shaped values: arguments are read into the library's serde
//! types (so a wrong type is reported with the field that holds it), and results, which the
//! library serialises for every face alike, become plain dicts and lists.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

use crate::errors;

/// Deepest nesting accepted in an argument (a cycle or a hostile structure stops here).
const MAX_DEPTH: usize = 64;

/// Reads a Python argument (None, bool, int, float, str, list, tuple, dict with str keys).
pub(crate) fn to_value(object: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    read(object, what, 0)
}

fn read(object: &Bound<'_, PyAny>, path: &str, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyTypeError::new_err(format!("{path}: nested more than {MAX_DEPTH} levels deep")));
    }
    if object.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: Python's bool is an int.
    if let Ok(flag) = object.cast::<PyBool>() {
        return Ok(Value::Bool(flag.is_true()));
    }
    if object.is_instance_of::<PyInt>() {
        if let Ok(n) = object.extract::<i64>() {
            return Ok(Value::from(n));
        }
        if let Ok(n) = object.extract::<u64>() {
            return Ok(Value::from(n));
        }
        return Err(PyTypeError::new_err(format!("{path}: integer out of range")));
    }
    if let Ok(number) = object.cast::<PyFloat>() {
        return Number::from_f64(number.value())
            .map(Value::Number)
            .ok_or_else(|| PyTypeError::new_err(format!("{path}: must be a finite number")));
    }
    if let Ok(text) = object.cast::<PyString>() {
        return Ok(Value::String(text.to_str()?.to_owned()));
    }
    if let Ok(dict) = object.cast::<PyDict>() {
        let mut map = Map::new();
        for (key, item) in dict.iter() {
            let key: String =
                key.extract().map_err(|_| PyTypeError::new_err(format!("{path}: keys must be strings")))?;
            let value = read(&item, &format!("{path}.{key}"), depth + 1)?;
            map.insert(key, value);
        }
        return Ok(Value::Object(map));
    }
    if object.is_instance_of::<PyList>() || object.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in object.try_iter()?.enumerate() {
            items.push(read(&item?, &format!("{path}[{i}]"), depth + 1)?);
        }
        return Ok(Value::Array(items));
    }
    let kind = object.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".to_owned());
    Err(PyTypeError::new_err(format!(
        "{path}: a value of type {kind} is not accepted (use str, int, float, bool, None, list or dict)"
    )))
}

/// Reads an argument into a library type; a mismatch is `capibara.InvalidInput` naming the field.
pub(crate) fn from_py<T: DeserializeOwned>(object: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let value = to_value(object, what)?;
    from_value(value, what)
}

/// Reads a value into a library type; a mismatch is `capibara.InvalidInput` naming the field.
pub(crate) fn from_value<T: DeserializeOwned>(value: Value, what: &str) -> PyResult<T> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let place = if path == "." { what.to_owned() } else { format!("{what}.{path}") };
        errors::to_py(capibara_core::Error::invalid(format!("{place}: {}", error.inner())))
    })
}
