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
