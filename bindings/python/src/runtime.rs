//! Running library calls: one tokio runtime per process (pyo3-async-runtimes' own), awaitables
//! for the async API, and a blocking wait for the sync API that releases the GIL and lets Ctrl-C
//! cancel the call.

use std::future::Future;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::Duration;

use capibara_core::Error;
use pyo3::prelude::*;

use crate::errors;

/// How often a blocked sync call looks for a pending signal (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// The process's runtime.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// A library call prepared with the GIL held (arguments read), run without it.
pub(crate) type Call<T> = futures::future::BoxFuture<'static, PyResult<T>>;

/// Library work as a [`Call`], its error mapped to the matching exception.
pub(crate) fn call<T: Send + 'static>(
    work: impl Future<Output = Result<T, Error>> + Send + 'static,
) -> Call<T> {
    Box::pin(async move { work.await.map_err(errors::to_py) })
}

/// Runs `work` and waits for it without holding the GIL. A signal handler that raises (Ctrl-C's
/// `KeyboardInterrupt`) cancels the work and raises in the caller.
///
/// The work runs on the calling thread (the runtime's workers drive its I/O and timers), so a
/// call that does not wait on anything costs no thread hop; from inside the runtime (a callback
/// the library calls) it runs on a worker instead.
pub(crate) fn wait<T: Send + 'static>(
    py: Python<'_>,
    work: impl Future<Output = PyResult<T>> + Send + 'static,
) -> PyResult<T> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return wait_on_worker(py, work);
    }
    let mut work = Box::pin(work);
    loop {
        let (back, outcome) = py.detach(move || {
            // The timer is made inside the runtime's context (block_on enters it).
            let outcome = runtime().block_on(async { tokio::time::timeout(SIGNAL_POLL, &mut work).await });
            (work, outcome)
        });
        work = back;
        match outcome {
            Ok(result) => return result,
            // Returning drops the work: that cancels it.
            Err(_) => py.check_signals()?,
        }
    }
}

/// As [`wait`], with the work on a runtime worker (for callers already inside the runtime).
fn wait_on_worker<T: Send + 'static>(
    py: Python<'_>,
    work: impl Future<Output = PyResult<T>> + Send + 'static,
) -> PyResult<T> {
    let (sender, receiver) = sync_channel(1);
    let task = runtime().spawn(async move {
        let _ = sender.send(work.await);
    });
    let mut receiver = receiver;
    loop {
        let (back, outcome) = py.detach(move || {
            let outcome = receiver.recv_timeout(SIGNAL_POLL);
            (receiver, outcome)
        });
        receiver = back;
        match outcome {
            Ok(result) => return result,
            Err(RecvTimeoutError::Timeout) => {
                if let Err(interrupt) = py.check_signals() {
                    task.abort();
                    return Err(interrupt);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(errors::internal("the call ended without an answer (its task failed)"));
            }
        }
    }
}

/// An awaitable of `work` for the running asyncio loop; cancelling the awaitable drops the work.
pub(crate) fn awaitable<'py, T>(
    py: Python<'py>,
    work: impl Future<Output = PyResult<T>> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, work)
}
