//! `serve(host, port)`: the HTTP server — every route of `capibara serve` — in this process,
//! over the same composition, on the addon's runtime.

use std::sync::Arc;

use capibara_server::serve::Background;
use napi::bindgen_prelude::{Env, PromiseRaw};
use napi_derive::napi;

/// An HTTP server started by `Capibara.serve()`. Stops on `close()` or when its `Capibara`
/// closes. A running server does not keep Node alive by itself: `await server.wait()` does.
#[napi]
pub struct Server {
    running: Arc<Background>,
}

impl Server {
    pub(crate) fn new(running: Arc<Background>) -> Self {
        Self { running }
    }
}

#[napi]
impl Server {
    /// The base URL, e.g. `http://127.0.0.1:5001`.
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.running.url()
    }

    /// The address bound.
    #[napi(getter)]
    pub fn host(&self) -> String {
        self.running.address().ip().to_string()
    }

    /// The port bound (useful with port 0).
    #[napi(getter)]
    pub fn port(&self) -> u32 {
        u32::from(self.running.address().port())
    }

    /// Whether the server is still serving.
    #[napi(getter)]
    pub fn running(&self) -> bool {
        self.running.is_running()
    }

    /// Stops the server; resolves once open requests finished (up to the configured grace period).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        self.running.stop();
        let stopped = self.running.stopped();
        env.spawn_future(async move {
            stopped.await;
            Ok(())
        })
    }

    /// Resolves when the server stops (keeps the process alive until then).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn wait<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let stopped = self.running.stopped();
        env.spawn_future(async move {
            stopped.await;
            Ok(())
        })
    }
}
