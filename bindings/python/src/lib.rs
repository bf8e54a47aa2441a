//! The native module of the `capibara` Python package: `Capibara` (blocking calls) and
//! `AsyncCapibara` (awaitables) over the same composition `capibara serve` builds, plus the
//! stream and server handles. Arguments are read into the library's types, the library runs the
//! operation, results come back as dicts; no operation is implemented here.

mod client;
mod convert;
mod core;
mod errors;
mod runtime;
mod server;
mod stream;
mod to_python;

use pyo3::prelude::*;

/// The `capibara._capibara` module.
#[pymodule]
fn _capibara(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<client::Capibara>()?;
    module.add_class::<client::AsyncCapibara>()?;
    module.add_class::<stream::ChatEvents>()?;
    module.add_class::<stream::AsyncChatEvents>()?;
    module.add_class::<server::Server>()?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
