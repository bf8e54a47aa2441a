//! A serde [`Serializer`] that builds Python objects directly: the library's results become the
//! dicts, lists and scalars a JSON parser would make of the HTTP API's answer, without the JSON
//! text in between.
//!
//! It follows `serde_json`'s data model so every face returns the same document: structs and maps
//! are dicts, sequences and tuples lists, unit variants their name, other variants a one-key dict,
//! non-finite floats `None`. An `f32` becomes the float its shortest decimal form denotes (`0.1`,
//! not `0.10000000149011612`), as JSON text would carry it.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, PoisonError};

use pyo3::BoundObject;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyList, PyString};
use serde::ser::{self, Serialize};

use crate::errors;

/// A result of the library, built into Python objects once the GIL is held again (a call's work
/// runs without it).
pub(crate) struct Plain(Box<dyn Buildable>);

impl Plain {
    pub(crate) fn of(value: impl Serialize + Send + 'static) -> Self {
        Self(Box::new(value))
    }
}

trait Buildable: Send {
    fn build<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>>;
}

impl<T: Serialize + Send> Buildable for T {
    fn build<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, self)
    }
}

impl<'py> IntoPyObject<'py> for Plain {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.0.build(py)
    }
}

/// Serialises `value` into Python objects.
pub(crate) fn to_python<'py>(py: Python<'py>, value: &impl Serialize) -> PyResult<Bound<'py, PyAny>> {
    value.serialize(Builder { py }).map_err(|error| error.0)
}

/// Why a value could not be built (a serialiser's own failure, or Python's).
#[derive(Debug)]
pub(crate) struct BuildError(PyErr);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BuildError {}

impl ser::Error for BuildError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self(errors::internal(format!("cannot build a result: {message}")))
    }
}

impl From<PyErr> for BuildError {
    fn from(error: PyErr) -> Self {
        Self(error)
    }
}

type Built<'py> = Result<Bound<'py, PyAny>, BuildError>;

/// Field names are `&'static str`s, so their Python strings are made once and reused: a result
/// with many records repeats the same few keys, and a reused string also keeps its cached hash.
static FIELD_NAMES: Mutex<Option<FieldNames>> = Mutex::new(None);

/// Python strings by the address and length of the name they were made from.
type FieldNames = HashMap<(usize, usize), Py<PyString>, BuildHasherDefault<AddressHasher>>;

fn field_name<'py>(py: Python<'py>, name: &'static str) -> Bound<'py, PyString> {
    let key = (name.as_ptr() as usize, name.len());
    let mut names = FIELD_NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    let names = names.get_or_insert_with(FieldNames::default);
    names.entry(key).or_insert_with(|| PyString::intern(py, name).unbind()).bind(py).clone()
}

/// A multiplicative hash for the address keys above: they come from the program itself, not from
/// input, so the default DoS-resistant hasher would only cost time (it showed up in profiles).
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The float a JSON reader would make of `value`'s shortest text.
fn widened(value: f32) -> f64 {
    let mut text = ryu::Buffer::new();
    text.format_finite(value).parse().unwrap_or(f64::from(value))
}

#[derive(Clone, Copy)]
struct Builder<'py> {
    py: Python<'py>,
}

impl<'py> Builder<'py> {
    fn none(self) -> Built<'py> {
        Ok(self.py.None().into_bound(self.py))
    }

    fn float(self, value: f64) -> Built<'py> {
        if value.is_finite() { Ok(PyFloat::new(self.py, value).into_any()) } else { self.none() }
    }

    fn number(self, value: impl IntoPyObject<'py>) -> Built<'py> {
        Ok(value.into_pyobject(self.py).map_err(Into::into)?.into_any().into_bound())
    }

    /// `{variant: value}`, serde_json's form of a variant with data.
    fn tagged(self, variant: &'static str, value: Bound<'py, PyAny>) -> Built<'py> {
        let dict = PyDict::new(self.py);
        dict.set_item(field_name(self.py, variant), value)?;
        Ok(dict.into_any())
    }
}

/// Every integer width becomes a Python `int`.
macro_rules! integers {
    ($($method:ident: $type:ty),+) => {$(
        fn $method(self, value: $type) -> Built<'py> {
            self.number(value)
        }
    )+};
}

impl<'py> ser::Serializer for Builder<'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = BuildError;
    type SerializeSeq = Items<'py>;
    type SerializeTuple = Items<'py>;
    type SerializeTupleStruct = Items<'py>;
    type SerializeTupleVariant = Items<'py>;
    type SerializeMap = Entries<'py>;
    type SerializeStruct = Entries<'py>;
    type SerializeStructVariant = Entries<'py>;

    fn serialize_bool(self, value: bool) -> Built<'py> {
        Ok(PyBool::new(self.py, value).to_owned().into_any())
    }
    integers!(
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_i128: i128,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_u128: u128
    );
    fn serialize_f32(self, value: f32) -> Built<'py> {
        if value.is_finite() { self.float(widened(value)) } else { self.none() }
    }
    fn serialize_f64(self, value: f64) -> Built<'py> {
        self.float(value)
    }
    fn serialize_char(self, value: char) -> Built<'py> {
        self.serialize_str(value.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, value: &str) -> Built<'py> {
        Ok(PyString::new(self.py, value).into_any())
    }
    /// Bytes are a list of integers, as in JSON.
    fn serialize_bytes(self, value: &[u8]) -> Built<'py> {
        Ok(PyList::new(self.py, value)?.into_any())
    }
    fn serialize_none(self) -> Built<'py> {
        self.none()
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Built<'py> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Built<'py> {
        self.none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Built<'py> {
        self.none()
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Built<'py> {
        Ok(field_name(self.py, variant).into_any())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _name: &'static str, value: &T) -> Built<'py> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Built<'py> {
        let value = value.serialize(self)?;
        self.tagged(variant, value)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Items<'py>, BuildError> {
        Ok(Items { builder: self, items: Vec::with_capacity(len.unwrap_or(0)), variant: None })
    }
    fn serialize_tuple(self, len: usize) -> Result<Items<'py>, BuildError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Items<'py>, BuildError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Items<'py>, BuildError> {
        Ok(Items { builder: self, items: Vec::with_capacity(len), variant: Some(variant) })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Entries<'py>, BuildError> {
        Ok(Entries { builder: self, dict: PyDict::new(self.py), key: None, variant: None })
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Entries<'py>, BuildError> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Entries<'py>, BuildError> {
        Ok(Entries { builder: self, dict: PyDict::new(self.py), key: None, variant: Some(variant) })
    }
}

/// A list being built (sequences, tuples, tuple variants).
pub(crate) struct Items<'py> {
    builder: Builder<'py>,
    items: Vec<Bound<'py, PyAny>>,
    variant: Option<&'static str>,
}

impl<'py> Items<'py> {
    fn push<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), BuildError> {
        self.items.push(value.serialize(self.builder)?);
        Ok(())
    }

    fn finish(self) -> Built<'py> {
        let list = PyList::new(self.builder.py, self.items)?.into_any();
        match self.variant {
            Some(variant) => self.builder.tagged(variant, list),
            None => Ok(list),
        }
    }
}

/// serde's four list-shaped builders differ only in their method's name.
macro_rules! builds_a_list {
    ($($builder:ident :: $add:ident),+) => {$(
        impl<'py> ser::$builder for Items<'py> {
            type Ok = Bound<'py, PyAny>;
            type Error = BuildError;
            fn $add<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), BuildError> {
                self.push(value)
            }
            fn end(self) -> Built<'py> {
                self.finish()
            }
        }
    )+};
}

builds_a_list!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// A dict being built (maps, structs, struct variants).
pub(crate) struct Entries<'py> {
    builder: Builder<'py>,
    dict: Bound<'py, PyDict>,
    key: Option<Bound<'py, PyAny>>,
    variant: Option<&'static str>,
}

impl<'py> Entries<'py> {
    fn finish(self) -> Built<'py> {
        match self.variant {
            Some(variant) => self.builder.tagged(variant, self.dict.into_any()),
            None => Ok(self.dict.into_any()),
        }
    }
}

/// A map key as JSON would write it: strings stay, numbers and booleans become their text.
fn map_key<'py>(key: Bound<'py, PyAny>) -> Built<'py> {
    if key.is_instance_of::<PyString>() {
        return Ok(key);
    }
    if let Ok(flag) = key.cast::<PyBool>() {
        let text = if flag.is_true() { "true" } else { "false" };
        return Ok(PyString::new(key.py(), text).into_any());
    }
    if key.is_instance_of::<pyo3::types::PyInt>() || key.is_instance_of::<PyFloat>() {
        return Ok(key.str()?.into_any());
    }
    Err(ser::Error::custom("a map key must be a string, a number or a boolean"))
}

impl<'py> ser::SerializeMap for Entries<'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = BuildError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), BuildError> {
        self.key = Some(map_key(key.serialize(self.builder)?)?);
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), BuildError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| <BuildError as ser::Error>::custom("a map value came before its key"))?;
        self.dict.set_item(key, value.serialize(self.builder)?)?;
        Ok(())
    }
    fn end(self) -> Built<'py> {
        self.finish()
    }
}

/// serde's two struct-shaped builders are the same.
macro_rules! builds_a_struct {
    ($($builder:ident),+) => {$(
        impl<'py> ser::$builder for Entries<'py> {
            type Ok = Bound<'py, PyAny>;
            type Error = BuildError;
            fn serialize_field<T: ?Sized + Serialize>(
                &mut self,
                name: &'static str,
                value: &T,
            ) -> Result<(), BuildError> {
                self.dict.set_item(field_name(self.builder.py, name), value.serialize(self.builder)?)?;
                Ok(())
            }
            fn end(self) -> Built<'py> {
                self.finish()
            }
        }
    )+};
}

builds_a_struct!(SerializeStruct, SerializeStructVariant);
