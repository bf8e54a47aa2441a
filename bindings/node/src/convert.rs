//! JavaScript arguments to JSON-shaped values, then to the library's serde types. A value that
//! cannot be read (a function, a symbol, `NaN`, a typed array, a structure nested too deep) or
//! does not fit the type (a wrong type, an unknown option) is `invalid_input`, naming where it is
//! (`options.maxTokens: …`, `documents[3].text: …`).

use napi::ValueType;
use napi::bindgen_prelude::{Array, FromNapiValue, JsValue, Object, Unknown};
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

use crate::errors::Failure;

/// Deepest nesting accepted in an argument (a cyclic structure stops here).
const MAX_DEPTH: usize = 64;

/// Most values (objects, arrays and scalars together) read from one argument.
const MAX_VALUES: usize = 1_000_000;

/// Integers up to this magnitude are exact in a JavaScript number.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Reads a JavaScript value; `undefined` reads as `null`, object properties holding `undefined`
/// are left out (as `JSON.stringify` does).
pub fn to_value(value: Unknown<'_>, what: &str) -> Result<Value, Failure> {
    let mut budget = MAX_VALUES;
    Reader { budget: &mut budget }.read(value, what, 0)
}

/// Whether an argument was left out (`undefined` or `null`).
pub fn is_absent(value: &Unknown<'_>) -> bool {
    matches!(value.get_type(), Ok(ValueType::Undefined | ValueType::Null))
}

/// The JavaScript type of a value, for messages (`undefined`, `number`, `array`, …).
pub fn type_name(value: &Unknown<'_>) -> &'static str {
    match value.get_type() {
        Ok(ValueType::Undefined) => "undefined",
        Ok(ValueType::Null) => "null",
        Ok(ValueType::Boolean) => "boolean",
        Ok(ValueType::Number) => "number",
        Ok(ValueType::String) => "string",
        Ok(ValueType::Symbol) => "symbol",
        Ok(ValueType::BigInt) => "bigint",
        Ok(ValueType::Function) => "function",
        Ok(ValueType::Object) if value.is_array().unwrap_or(false) => "array",
        Ok(ValueType::Object) => "object",
        _ => "value of an unknown type",
    }
}

/// A string argument; anything else is `invalid_input` naming what was given.
pub fn string(value: Unknown<'_>, what: &str) -> Result<String, Failure> {
    if value.get_type().ok() != Some(ValueType::String) {
        return Err(Failure::invalid(format!("{what}: expected a string, got {}", type_name(&value))));
    }
    String::from_unknown(value).map_err(|e| Failure::invalid(format!("{what}: {e}")))
}

/// Reads an argument into a library type.
pub fn from_js<T: DeserializeOwned>(value: Unknown<'_>, what: &str) -> Result<T, Failure> {
    from_value(to_value(value, what)?, what)
}

/// Reads a JSON-shaped value into a library type; a mismatch names the field that holds it.
pub fn from_value<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, Failure> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let place = match path.as_str() {
            "." => what.to_owned(),
            _ if path.starts_with('[') => format!("{what}{path}"),
            _ => format!("{what}.{path}"),
        };
        Failure::invalid(format!("{place}: {}", error.inner()))
    })
}

struct Reader<'a> {
    /// Values that may still be read.
    budget: &'a mut usize,
}

impl Reader<'_> {
    fn read(&mut self, value: Unknown<'_>, path: &str, depth: usize) -> Result<Value, Failure> {
        if *self.budget == 0 {
            return Err(Failure::invalid(format!("{path}: more than {MAX_VALUES} values in one argument")));
        }
        *self.budget -= 1;
        let kind = value.get_type().map_err(|e| Failure::invalid(format!("{path}: {e}")))?;
        let unreadable = |e: napi::Error| Failure::invalid(format!("{path}: {e}"));
        match kind {
            ValueType::Undefined | ValueType::Null => Ok(Value::Null),
            ValueType::Boolean => bool::from_unknown(value).map(Value::Bool).map_err(unreadable),
            ValueType::Number => number(f64::from_unknown(value).map_err(unreadable)?, path),
            ValueType::String => String::from_unknown(value).map(Value::String).map_err(unreadable),
            ValueType::Object => {
                if depth >= MAX_DEPTH {
                    return Err(Failure::invalid(format!(
                        "{path}: nested more than {MAX_DEPTH} levels deep (is it cyclic?)"
                    )));
                }
                if value.is_array().map_err(unreadable)? {
                    self.array(Array::from_unknown(value).map_err(unreadable)?, path, depth)
                } else if is_binary(&value).map_err(unreadable)? {
                    Err(Failure::invalid(format!(
                        "{path}: binary data (a Buffer or typed array) is not accepted; pass text"
                    )))
                } else {
                    self.object(Object::from_unknown(value).map_err(unreadable)?, path, depth)
                }
            }
            other => Err(Failure::invalid(format!(
                "{path}: a {} is not accepted (use a string, number, boolean, null, array or object)",
                match other {
                    ValueType::Function => "function",
                    ValueType::Symbol => "symbol",
                    ValueType::BigInt => "bigint",
                    _ => "value of this type",
                }
            ))),
        }
    }

    fn array(&mut self, array: Array<'_>, path: &str, depth: usize) -> Result<Value, Failure> {
        let len = array.len();
        let count = usize::try_from(len).unwrap_or(usize::MAX);
        // A sparse array's length can be far larger than what it holds.
        if count > *self.budget {
            return Err(Failure::invalid(format!("{path}: more than {MAX_VALUES} values in one argument")));
        }
        let mut items = Vec::with_capacity(count);
        for i in 0..len {
            let item =
                array.get::<Unknown<'_>>(i).map_err(|e| Failure::invalid(format!("{path}[{i}]: {e}")))?;
            items.push(match item {
                Some(item) => self.read(item, &format!("{path}[{i}]"), depth + 1)?,
                None => Value::Null,
            });
        }
        Ok(Value::Array(items))
    }

    fn object(&mut self, object: Object<'_>, path: &str, depth: usize) -> Result<Value, Failure> {
        let keys = Object::keys(&object).map_err(|e| Failure::invalid(format!("{path}: {e}")))?;
        let mut map = Map::new();
        for key in keys {
            let item = object
                .get::<Unknown<'_>>(&key)
                .map_err(|e| Failure::invalid(format!("{path}.{key}: {e}")))?;
            if let Some(item) = item {
                let value = self.read(item, &format!("{path}.{key}"), depth + 1)?;
                map.insert(key, value);
            }
        }
        Ok(Value::Object(map))
    }
}

/// Buffers, typed arrays, `ArrayBuffer`s and `DataView`s.
fn is_binary(value: &Unknown<'_>) -> napi::Result<bool> {
    Ok(value.is_typedarray()? || value.is_arraybuffer()? || value.is_dataview()? || value.is_buffer()?)
}

/// A JavaScript number: integral values become integers (so they read as `u32`, `usize`, …).
fn number(n: f64, path: &str) -> Result<Value, Failure> {
    if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER {
        #[allow(clippy::cast_possible_truncation)] // integral and within ±2^53
        return Ok(Value::from(n as i64));
    }
    Number::from_f64(n)
        .map(Value::Number)
        .ok_or_else(|| Failure::invalid(format!("{path}: must be a finite number, got {n}")))
}
