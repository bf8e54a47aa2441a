//! One HTTP/1.1 keep-alive connection to the target, and where the target lives.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Where a target listens: its address and the authority sent in `Host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    address: SocketAddr,
    authority: String,
}

impl Endpoint {
    /// Parses a base URL such as `http://127.0.0.1:8000` (a trailing `/` or `/v1` is ignored), resolving
    /// the host once so every connection goes to the same address.
    pub fn parse(base_url: &str) -> anyhow::Result<Self> {
        let uri: http::Uri = base_url.parse().with_context(|| format!("`{base_url}` is not a URL"))?;
        if uri.scheme_str() != Some("http") {
            bail!("`{base_url}`: only plain http:// targets can be measured");
        }
        let authority = uri.authority().ok_or_else(|| anyhow!("`{base_url}` has no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let address = std::net::ToSocketAddrs::to_socket_addrs(&(authority.host(), port))
            .with_context(|| format!("resolving {}", authority.host()))?
            .next()
            .ok_or_else(|| anyhow!("{} resolves to no address", authority.host()))?;
        Ok(Self { address, authority: authority.as_str().to_owned() })
    }

    /// The endpoint of a server on this machine.
    pub fn local(address: SocketAddr) -> Self {
        Self { address, authority: address.to_string() }
    }

    /// The socket address connections go to.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `POST path` with a JSON body, asking for an event stream.
    pub fn post_json(&self, path: &str, body: Bytes) -> anyhow::Result<Request<Full<Bytes>>> {
        Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(HOST, &self.authority)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "text/event-stream")
            .body(Full::new(body))
            .context("building the request")
    }
}

/// A client connection the benchmark reuses stream after stream (HTTP/1.1 keep-alive).
pub struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
}

impl Connection {
    /// Opens a connection (with `TCP_NODELAY`, as every server under test uses).
    pub async fn open(endpoint: &Endpoint) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(endpoint.address)
            .await
            .with_context(|| format!("connecting to {}", endpoint.address))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        let (sender, connection) =
            http1::handshake(TokioIo::new(stream)).await.context("starting HTTP/1.1")?;
        // The connection task ends when the server closes or the sender is dropped.
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { sender, driver })
    }

    /// Whether the server (or an error) closed the connection; a closed connection is reopened.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Sends a request and returns once the response head has arrived.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<Response<Incoming>, hyper::Error> {
        self.sender.ready().await?;
        self.sender.send_request(request).await
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Closing the socket at once tells the server to stop a stream the benchmark abandoned.
        self.driver.abort();
    }
}

/// `GET path` on a fresh connection; the status and body, or why there was none.
pub async fn get(endpoint: &Endpoint, path: &str, timeout: Duration) -> anyhow::Result<(u16, Bytes)> {
    let exchange = async {
        let stream = TcpStream::connect(endpoint.address).await?;
        let (mut sender, connection) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(HOST, &endpoint.authority)
            .body(Empty::new())?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        driver.abort();
        anyhow::Ok((status, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| anyhow!("GET {path}: no answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_resolve_to_one_address() {
        let endpoint = Endpoint::parse("http://127.0.0.1:8123/v1").unwrap();
        assert_eq!(endpoint.address(), "127.0.0.1:8123".parse().unwrap());
        assert_eq!(endpoint.authority, "127.0.0.1:8123");
        assert_eq!(Endpoint::parse("http://localhost:9").unwrap().address().port(), 9);
        assert!(Endpoint::parse("https://127.0.0.1:1").is_err());
        assert!(Endpoint::parse("not a url").is_err());
    }
}
