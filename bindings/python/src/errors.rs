//! Library errors as Python exceptions: one class per [`capibara_core::Error`] variant, defined in
//! `capibara/_errors.py` (so each can also derive from the matching built-in: `InvalidInput` is a
//! `ValueError`, `Timeout` a `TimeoutError`, …). This is the one place the mapping is made.

use capibara_core::Error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// Raised by any call on a closed `Capibara`.
pub(crate) const CLOSED: &str = "Closed";

static ERRORS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    ERRORS
        .get_or_try_init(py, || Ok(py.import("capibara._errors")?.into_any().unbind()))
        .map(|module| module.bind(py))
}

/// The exception class for `name` (`InvalidInput`, `Unavailable`, …).
fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    Ok(errors_module(py)?.getattr(name)?.cast_into::<PyType>()?)
}

/// The class name and the attributes an error carries.
fn describe(error: &Error) -> (&'static str, Option<u16>, Option<f64>) {
    match error {
        Error::InvalidInput(_) => ("InvalidInput", None, None),
        Error::NotFound(_) => ("NotFound", None, None),
        Error::Unauthorized(_) => ("Unauthorized", None, None),
        Error::Forbidden(_) => ("Forbidden", None, None),
        Error::RateLimited { retry_after, .. } => ("RateLimited", None, retry_after.map(|d| d.as_secs_f64())),
        Error::Unavailable(_) => ("Unavailable", None, None),
        Error::Timeout(_) => ("Timeout", None, None),
        Error::Upstream { status, .. } => ("Upstream", Some(*status), None),
        Error::ContextTooLong(_) => ("ContextTooLong", None, None),
        Error::TooLarge(_) => ("TooLarge", None, None),
        // `Error` is non-exhaustive: a variant added later is internal until it is mapped here.
        _ => ("Internal", None, None),
    }
}

/// The Python exception for a library error: its class follows the variant; `code` is the
/// error code the HTTP face returns, `message` the full text (the cause included).
// By value: it is the `map_err` adapter of every call.
#[allow(clippy::needless_pass_by_value)]
pub(crate) fn to_py(error: Error) -> PyErr {
    Python::attach(|py| build(py, &error).unwrap_or_else(|failed| failed))
}

fn build(py: Python<'_>, error: &Error) -> Result<PyErr, PyErr> {
    let (name, status, retry_after) = describe(error);
    let exception = class(py, name)?.call1((error.to_string(),))?;
    exception.setattr("code", error.code())?;
    if let Some(status) = status {
        exception.setattr("status", status)?;
    }
    if let Some(retry_after) = retry_after {
        exception.setattr("retry_after", retry_after)?;
    }
    Ok(PyErr::from_value(exception))
}

/// `capibara.Closed`: the object was closed before this call.
pub(crate) fn closed() -> PyErr {
    Python::attach(|py| {
        class(py, CLOSED)
            .and_then(|cls| cls.call1(("this Capibara is closed; create a new one",)))
            .map_or_else(|failed| failed, PyErr::from_value)
    })
}

/// An internal failure of the binding itself (a task that panicked).
pub(crate) fn internal(message: impl Into<String>) -> PyErr {
    let message = message.into();
    Python::attach(|py| {
        build(py, &Error::internal(message.clone())).unwrap_or_else(|_| PyRuntimeError::new_err(message))
    })
}
