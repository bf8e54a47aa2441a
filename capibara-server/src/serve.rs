//! Running the server: bind, serve until Ctrl-C or SIGTERM, then give open streams a grace period.

use std::net::SocketAddr;

use axum::serve::ListenerExt;
use capibara_core::{Error, Result};
use tokio::net::TcpListener;

use crate::app::Capibara;
use crate::http;

/// Binds the configured address.
pub async fn bind(app: &Capibara) -> Result<TcpListener> {
    let address = SocketAddr::new(app.config().server.bind, app.config().server.port);
    TcpListener::bind(address)
        .await
        .map_err(|e| Error::unavailable(format!("cannot listen on {address}: {e}")))
}

/// Serves on `listener` until `shutdown` resolves, then waits up to the grace period for open requests.
pub async fn serve_until(
    app: Capibara,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let grace = app.config().server.shutdown_grace;
    let router = http::router(app);
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    // Token frames are small writes; without TCP_NODELAY, Nagle's algorithm holds each one until the
    // client acknowledges the previous, which delayed ACKs stretch to ~40 ms.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    let server = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stopping_tx.send(());
        })
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(|e| Error::internal(format!("server failed: {e}"))),
        _ = stopping_rx => {}
    }
    tracing::info!(?grace, "shutting down; waiting for open requests");
    match tokio::time::timeout(grace, server).await {
        Ok(result) => result.map_err(|e| Error::internal(format!("server failed: {e}"))),
        Err(_) => {
            tracing::warn!("open requests did not finish within the grace period; closing them");
            Ok(())
        }
    }
}

/// A server running in the background of the current runtime (what the bindings' `serve()`
/// starts): every route over one composition, until [`stop`](Self::stop).
#[derive(Debug)]
pub struct Background {
    address: SocketAddr,
    stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    finished: tokio::sync::watch::Receiver<bool>,
}

impl Background {
    /// Binds `host:port` (port 0 picks a free one) and serves `app` on a task of the current
    /// runtime. Open requests get the configured grace period when it stops.
    pub async fn start(app: Capibara, host: &str, port: u16) -> Result<Self> {
        let listener = TcpListener::bind((host, port))
            .await
            .map_err(|e| Error::unavailable(format!("cannot listen on {host}:{port}: {e}")))?;
        let address = listener.local_addr().map_err(|e| Error::internal(format!("no local address: {e}")))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (done, finished) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(error) = serve_until(app, listener, shutdown).await {
                tracing::error!(%error, "the server stopped with an error");
            }
            let _ = done.send(true);
        });
        Ok(Self { address, stop: std::sync::Mutex::new(Some(stop)), finished })
    }

    /// The address bound.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The base URL, e.g. `http://127.0.0.1:5001`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Asks the server to stop; see [`stopped`](Self::stopped) to wait for it.
    pub fn stop(&self) {
        let sender = self.stop.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(sender) = sender {
            let _ = sender.send(());
        }
    }

    /// Whether the server still serves.
    pub fn is_running(&self) -> bool {
        !*self.finished.borrow()
    }

    /// Resolves once the server has stopped (owns what it needs, for any runtime).
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut finished = self.finished.clone();
        async move {
            let _ = finished.wait_for(|done| *done).await;
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
