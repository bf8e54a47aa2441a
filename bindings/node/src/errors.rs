//! Library errors as JavaScript errors, and how a call settles its promise. This is the one place
//! the mapping is made: every failure becomes an `Error` whose `message` is the library's text
//! (the cause included) and whose `code` is [`capibara_core::Error::code`] (`invalid_input`,
//! `unavailable`, `upstream_error`, …), or `closed` for a call on a closed `Capibara`. Upstream
//! errors also carry the upstream's `status`; rate limits carry `retryAfter` (seconds) when known.

use std::future::Future;

use capibara_core::Error;
use napi::bindgen_prelude::{Env, JsValue, Object, PromiseRaw, ToNapiValue};
use napi::{Status, sys};

/// The `code` of a call made on a closed `Capibara`.
pub const CLOSED: &str = "closed";

/// Why a call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The library refused or failed the operation (wrong arguments are `InvalidInput` too).
    Library(Error),
    /// The `Capibara` was closed before the call.
    Closed,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self::Library(error)
    }
}

impl Failure {
    /// An argument the library cannot take.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Library(Error::invalid(message))
    }

    /// A failure of the binding itself.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Library(Error::internal(message))
    }

    /// The error's `code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Library(error) => error.code(),
            Self::Closed => CLOSED,
        }
    }

    /// The error's `message`.
    pub fn message(&self) -> String {
        match self {
            Self::Library(error) => error.to_string(),
            Self::Closed => "this Capibara is closed; open a new one with Capibara.open()".to_owned(),
        }
    }

    /// The JavaScript `Error` for this failure, as a `napi::Error` that throws, or rejects a
    /// promise with, exactly that object. Call on the JavaScript thread.
    pub fn into_js(self, env: &Env) -> napi::Error {
        match self.build(env) {
            Ok(error) => napi::Error::from(error.to_unknown()),
            // Building an object only fails while the environment shuts down.
            Err(failed) => failed,
        }
    }

    fn build<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        let mut error = env.create_error(napi::Error::new(Status::GenericFailure, self.message()))?;
        error.set("code", self.code())?;
        if let Self::Library(library) = self {
            if let Error::Upstream { status, .. } = library {
                error.set("status", u32::from(*status))?;
            }
            if let Some(retry_after) = library.retry_after() {
                error.set("retryAfter", retry_after.as_secs_f64())?;
            }
        }
        Ok(error)
    }
}

/// A finished call on its way to JavaScript: a value resolves the promise, a failure rejects it
/// with the matching `Error`.
pub struct Settled<T>(pub Result<T, Failure>);

impl<T: ToNapiValue> ToNapiValue for Settled<T> {
    unsafe fn to_napi_value(env: sys::napi_env, settled: Self) -> napi::Result<sys::napi_value> {
        match settled.0 {
            // SAFETY: `env` is the live environment napi handed to this conversion, on its thread.
            Ok(value) => unsafe { T::to_napi_value(env, value) },
            // A conversion that fails with a retained JavaScript value rejects with that value.
            Err(failure) => Err(failure.into_js(&Env::from_raw(env))),
        }
    }
}

/// A promise of `work`, run on the addon's tokio runtime; arguments that could not be read
/// (`Err`) reject it the same way a failed call does.
pub fn promise<'env, T, F>(
    env: &'env Env,
    work: Result<F, Failure>,
) -> napi::Result<PromiseRaw<'env, Settled<T>>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T, Failure>> + Send + 'static,
{
    let work = match work {
        Ok(work) => work,
        Err(failure) => return env.spawn_future(async move { Ok(Settled::<T>(Err(failure))) }),
    };
    // Most calls (a search, a stats read) finish without waiting on anything: polled once here,
    // inside the runtime's context, they settle the promise at once instead of crossing to a
    // worker thread and back to the event loop. The rest continue on the runtime.
    let mut work = Box::pin(work);
    let first = napi::bindgen_prelude::within_runtime_if_available(|| {
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        work.as_mut().poll(&mut context)
    });
    match first {
        std::task::Poll::Ready(Ok(value)) => PromiseRaw::resolve(env, Settled(Ok(value))),
        // A failure rejects through the runtime, as every other failure does.
        std::task::Poll::Ready(Err(failure)) => {
            env.spawn_future(async move { Ok(Settled::<T>(Err(failure))) })
        }
        std::task::Poll::Pending => env.spawn_future(async move { Ok(Settled(work.await)) }),
    }
}
