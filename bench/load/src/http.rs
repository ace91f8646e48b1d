//! A lean HTTP/1.1 client: one keep-alive connection per worker, driven through hyper's
//! connection-level API (no pool, no redirects, no cookie store). The load generator
//! shares the server's two cores, so every microsecond it spends is one the server loses.

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{HeaderMap, Method, Request, Uri};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// The server under test: a loopback address and the matching `Host` header.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: HeaderValue,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
}

impl Target {
    /// Accepts only `http://` URLs on a loopback address: the benchmark never sends
    /// traffic anywhere else.
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let url = url::Url::parse(raw).with_context(|| format!("not a URL: {raw}"))?;
        if url.scheme() != "http" {
            bail!("{raw}: the load generator speaks plain http to 127.0.0.1 only");
        }
        let addr =
            url.socket_addrs(|| Some(80))?.into_iter().next().with_context(|| format!("{raw} does not resolve"))?;
        if !addr.ip().is_loopback() {
            bail!("{raw} is not a loopback address; benchmark traffic stays on this machine");
        }
        let host = HeaderValue::from_str(&addr.to_string())?;
        Ok(Self { addr, host, base: raw.trim_end_matches('/').to_owned() })
    }

    pub fn uri(&self, path_and_query: &str) -> Uri {
        path_and_query.parse().expect("a valid path and query")
    }
}

/// What the load generator keeps of a response.
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// The body, shortened, for error messages.
    pub fn excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text: String = text.chars().take(160).collect();
        format!("HTTP {}: {}", self.status, text.replace('\n', " "))
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| self.excerpt())
    }

    /// `name=value` of every `Set-Cookie` header.
    pub fn set_cookies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .get_all(hyper::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next()?.split_once('='))
    }

    pub fn location(&self) -> Option<&str> {
        self.headers.get(hyper::header::LOCATION)?.to_str().ok()
    }
}

/// One keep-alive connection, reopened transparently when the server closes it.
pub struct Conn {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(target: &Target) -> Self {
        Self { target: target.clone(), sender: None }
    }

    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if let Some(sender) = self.sender.as_mut() {
            if sender.ready().await.is_err() {
                self.sender = None;
            }
        }
        if self.sender.is_none() {
            let stream = TcpStream::connect(self.target.addr).await.map_err(|e| format!("connect: {e}"))?;
            stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
            let (sender, connection) =
                http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("just connected"))
    }

    /// Sends one request and reads the whole response. Transport failures are `Err`;
    /// any HTTP status is `Ok`.
    pub async fn send(
        &mut self,
        method: Method,
        uri: &Uri,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Response, String> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri.clone();
        let map = request.headers_mut();
        map.insert(HOST, self.target.host.clone());
        for (name, value) in headers {
            map.append(name.clone(), value.clone());
        }
        let sender = self.ready().await?;
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(error) => {
                self.sender = None;
                return Err(format!("request: {error}"));
            }
        };
        let (parts, body) = response.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                self.sender = None;
                return Err(format!("response body: {error}"));
            }
        };
        Ok(Response { status: parts.status.as_u16(), headers: parts.headers, body })
    }

    pub async fn get(&mut self, path: &str, headers: &[(HeaderName, HeaderValue)]) -> anyhow::Result<Response> {
        let uri = self.target.uri(path);
        self.send(Method::GET, &uri, headers, Bytes::new()).await.map_err(anyhow::Error::msg)
    }

    pub async fn post_form(
        &mut self,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        form: &[(&str, &str)],
    ) -> anyhow::Result<Response> {
        let uri = self.target.uri(path);
        let mut all = headers.to_vec();
        all.push(form_content_type());
        self.send(Method::POST, &uri, &all, encode_form(form)).await.map_err(anyhow::Error::msg)
    }
}

pub fn basic_auth(id: &str, secret: &str) -> (HeaderName, HeaderValue) {
    // RFC 6749 §2.3.1: both parts form-encoded before the Basic encoding.
    let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    let secret: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let value = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    (AUTHORIZATION, HeaderValue::from_str(&value).expect("base64 is a valid header value"))
}

pub fn form_content_type() -> (HeaderName, HeaderValue) {
    (CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"))
}

pub fn encode_form(form: &[(&str, &str)]) -> Bytes {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in form {
        serializer.append_pair(name, value);
    }
    Bytes::from(serializer.finish())
}
