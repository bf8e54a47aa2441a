//! `serve(host, port)`: the HTTP server, in process, over the same composition.

use std::sync::Arc;

use capibara_server::serve::Background;
use pyo3::prelude::*;

use crate::runtime::wait;

/// An HTTP server started by `Capibara.serve()`: every route of `capibara serve`, over the same
/// composition. Stops on `close()`, at the end of a `with` block, or when its `Capibara` closes.
#[pyclass(frozen, module = "capibara._capibara")]
pub(crate) struct Server {
    running: Arc<Background>,
}

impl Server {
    pub(crate) fn new(running: Arc<Background>) -> Self {
        Self { running }
    }
}

#[pymethods]
impl Server {
    /// The base URL, e.g. `http://127.0.0.1:5001`.
    #[getter]
    fn url(&self) -> String {
        self.running.url()
    }

    /// The address bound.
    #[getter]
    fn host(&self) -> String {
        self.running.address().ip().to_string()
    }

    /// The port bound (useful with `port=0`).
    #[getter]
    fn port(&self) -> u16 {
        self.running.address().port()
    }

    /// Whether the server is still serving.
    #[getter]
    fn running(&self) -> bool {
        self.running.is_running()
    }

    /// Stops the server and waits for open requests (up to the configured grace period).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.running.stop();
        let stopped = self.running.stopped();
        wait(py, async move {
            stopped.await;
            Ok(())
        })
    }

    /// Blocks until the server stops; Ctrl-C stops it.
    fn wait(&self, py: Python<'_>) -> PyResult<()> {
        let stopped = self.running.stopped();
        let waited = wait(py, async move {
            stopped.await;
            Ok(())
        });
        if waited.is_err() {
            self.running.stop();
        }
        waited
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("<capibara.Server {} running={}>", self.running.url(), self.running.is_running())
    }
}
