//! The transmitter as a receiver talks to it: its metadata (SSF 1.0 §7), its stream
//! management (§8.1.1) and verification (§8.1.4.2) endpoints, and poll delivery
//! (RFC 8936), each request with the receiver's own access token. The token comes from
//! the issuer's token endpoint with client credentials (RFC 6749 §4.4, the CAEP
//! interoperability profile §2.7), is renewed before it expires and on a 401, and goes in
//! the `Authorization` header only (RFC 6750 §2.1).

use super::set::{REQUESTED, SESSION_REVOKED};
use crate::claims::Audience;
use crate::http::read_body;
use crate::{FetchError, RevocationError};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use url::Url;

/// `delivery.method` of poll delivery (SSF §6.1.2).
pub(crate) const POLL_METHOD: &str = "urn:ietf:rfc:8936";
/// Largest management or token response read.
const MAX_RESPONSE_LEN: usize = 1024 * 1024;
/// Largest poll response read: a full poll of large SETs.
const MAX_POLL_LEN: usize = 8 * 1024 * 1024;
/// How long a token is used when the token endpoint gives no `expires_in`.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The transmitter's endpoints and this receiver's credentials. Every method takes
/// `&self`, so the feed can ask for a verification while a long poll is waiting.
pub(crate) struct Transmitter {
    client: reqwest::Client,
    timeout: Duration,
    pub issuer: String,
    token_endpoint: Url,
    configuration_endpoint: Url,
    verification_endpoint: Option<Url>,
    /// SSF §7.1 `critical_subject_members`.
    pub critical_members: Vec<String>,
    client_id: String,
    /// `Basic …`, marked sensitive so that no debug output shows it.
    credentials: HeaderValue,
    token: Mutex<Option<Bearer>>,
}

#[derive(Clone)]
struct Bearer {
    header: HeaderValue,
    renew_at: Instant,
}

/// SSF §7.1 members used here.
#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    delivery_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    configuration_endpoint: Option<String>,
    #[serde(default)]
    verification_endpoint: Option<String>,
    #[serde(default)]
    critical_subject_members: Vec<String>,
}

/// A stream as this verifier uses it (SSF §8.1.1).
#[derive(Clone, Debug)]
pub(crate) struct StreamConfig {
    pub stream_id: String,
    /// `delivery.endpoint_url`: where to poll.
    pub poll_url: Url,
    /// `aud`, sorted, without repeats.
    pub audience: Vec<String>,
    pub min_verification_interval: Duration,
}

#[derive(Deserialize)]
struct RawStream {
    stream_id: String,
    iss: String,
    aud: Audience,
    delivery: RawDelivery,
    #[serde(default)]
    events_delivered: Option<Vec<String>>,
    #[serde(default)]
    min_verification_interval: Option<u64>,
}

#[derive(Deserialize)]
struct RawDelivery {
    method: String,
    #[serde(default)]
    endpoint_url: Option<String>,
}

/// RFC 8936 §2.3 response.
#[derive(Deserialize)]
pub(crate) struct PollAnswer {
    pub sets: Map<String, Value>,
    #[serde(default, rename = "moreAvailable")]
    pub more_available: bool,
}

/// The transmitter's answer to a verification request (SSF §8.1.4.2).
pub(crate) enum Verification {
    /// 204: the event will come on the stream.
    Requested,
    /// 429: sooner than `min_verification_interval`.
    TooSoon,
    /// 404: the stream is gone.
    NoStream,
}

/// RFC 6749 §5.1 members used here.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Transmitter {
    /// Reads the transmitter's metadata (SSF §7.2) and checks it: the same issuer
    /// (§7.2.4), the JWK Set access tokens are verified with (SETs are signed with it),
    /// poll delivery, and http(s) endpoints.
    pub async fn discover(
        client: reqwest::Client,
        timeout: Duration,
        issuer: &str,
        jwks_uri: &Url,
        token_endpoint: Option<&str>,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Self, RevocationError> {
        let token_endpoint =
            http_url(token_endpoint.ok_or(RevocationError::Metadata("the discovery document has no token_endpoint"))?)
                .ok_or(RevocationError::Metadata("token_endpoint is not an http(s) URL"))?;
        let url = metadata_url(issuer)?;
        let request = client.get(url.clone()).timeout(timeout).header(ACCEPT, "application/json");
        let mut response = request.send().await.map_err(|e| RevocationError::Request(FetchError::request(&url, e)))?;
        if !response.status().is_success() {
            return Err(RevocationError::Request(FetchError::status(&url, response.status().as_u16())));
        }
        let body = read_body(&mut response, &url, MAX_RESPONSE_LEN).await.map_err(RevocationError::Request)?;
        let metadata: Metadata =
            serde_json::from_slice(&body).map_err(|e| RevocationError::Request(FetchError::invalid(&url, e)))?;
        if metadata.issuer != issuer {
            return Err(RevocationError::Metadata("the metadata describes another issuer"));
        }
        if metadata.jwks_uri.as_deref().is_some_and(|uri| Url::parse(uri).ok().as_ref() != Some(jwks_uri)) {
            return Err(RevocationError::Metadata("its jwks_uri is not the one of OpenID discovery"));
        }
        if metadata.delivery_methods_supported.is_some_and(|methods| !methods.iter().any(|m| m == POLL_METHOD)) {
            return Err(RevocationError::Metadata("the transmitter does not offer poll delivery (RFC 8936)"));
        }
        let configuration_endpoint = metadata
            .configuration_endpoint
            .as_deref()
            .ok_or(RevocationError::Metadata("it has no configuration_endpoint"))?;
        let configuration_endpoint = http_url(configuration_endpoint)
            .ok_or(RevocationError::Metadata("configuration_endpoint is not an http(s) URL"))?;
        let verification_endpoint = match metadata.verification_endpoint.as_deref() {
            None => None,
            Some(raw) => {
                Some(http_url(raw).ok_or(RevocationError::Metadata("verification_endpoint is not an http(s) URL"))?)
            }
        };
        Ok(Self {
            client,
            timeout,
            issuer: issuer.to_owned(),
            token_endpoint,
            configuration_endpoint,
            verification_endpoint,
            critical_members: metadata.critical_subject_members,
            client_id: client_id.to_owned(),
            credentials: basic_credentials(client_id, client_secret)?,
            token: Mutex::new(None),
        })
    }

    /// Whether the transmitter has a verification endpoint (the heartbeat needs one).
    pub fn can_verify(&self) -> bool {
        self.verification_endpoint.is_some()
    }

    /// A fresh access token from the token endpoint (RFC 6749 §4.4.2), kept for the next
    /// requests.
    pub async fn renew_token(&self) -> Result<HeaderValue, RevocationError> {
        let url = &self.token_endpoint;
        let post_error = |error: FetchError| RevocationError::Request(error.with_method("POST"));
        let mut response = self
            .client
            .post(url.clone())
            .timeout(self.timeout)
            .header(AUTHORIZATION, self.credentials.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| post_error(FetchError::request(url, e)))?;
        let status = response.status();
        let body = read_body(&mut response, url, MAX_RESPONSE_LEN).await.map_err(post_error)?;
        if matches!(status, StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED) {
            // RFC 6749 §5.2: these codes say the client may not have a token this way.
            let code = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["error"].as_str().map(str::to_owned));
            if matches!(
                code.as_deref(),
                Some("invalid_client" | "unauthorized_client" | "invalid_grant" | "invalid_scope")
            ) || status == StatusCode::UNAUTHORIZED
            {
                return Err(RevocationError::CredentialsRefused);
            }
        }
        if !status.is_success() {
            return Err(post_error(FetchError::status(url, status.as_u16())));
        }
        let token: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| post_error(FetchError::invalid(url, e)))?;
        let is_bearer = token.token_type.eq_ignore_ascii_case("bearer");
        let header = HeaderValue::from_str(&format!("Bearer {}", token.access_token)).ok().filter(|_| is_bearer);
        let Some(mut header) = header else {
            return Err(RevocationError::Metadata("the token endpoint did not issue a usable bearer token"));
        };
        header.set_sensitive(true);
        let lifetime = token.expires_in.map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        // Renewed at three quarters of its life: a token never expires mid-request.
        let renew_at = Instant::now() + lifetime / 4 * 3;
        *self.token.lock().unwrap_or_else(PoisonError::into_inner) = Some(Bearer { header: header.clone(), renew_at });
        Ok(header)
    }

    async fn bearer(&self) -> Result<HeaderValue, RevocationError> {
        let current = self.token.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match current {
            Some(bearer) if bearer.renew_at > Instant::now() => Ok(bearer.header),
            _ => self.renew_token().await,
        }
    }

    /// One authenticated request: a 401 renews the token and tries once more (the token
    /// may have been revoked or the transmitter restarted); a 403 is a missing scope.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Value>,
        timeout: Duration,
        limit: usize,
    ) -> Result<(StatusCode, Vec<u8>), RevocationError> {
        let method_name = match method {
            Method::GET => "GET",
            Method::DELETE => "DELETE",
            _ => "POST",
        };
        let fail = |error: FetchError| RevocationError::Request(error.with_method(method_name));
        let body = body.map(|body| serde_json::to_vec(body).expect("JSON values serialise"));
        for attempt in 0..2 {
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .timeout(timeout)
                .header(AUTHORIZATION, self.bearer().await?)
                .header(ACCEPT, "application/json");
            if let Some(body) = &body {
                request = request.header(CONTENT_TYPE, "application/json").body(body.clone());
            }
            let mut response = request.send().await.map_err(|e| fail(FetchError::request(url, e)))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                tracing::debug!(%url, "the transmitter refused the access token; renewing it");
                self.token.lock().unwrap_or_else(PoisonError::into_inner).take();
                continue;
            }
            if status == StatusCode::FORBIDDEN {
                return Err(RevocationError::InsufficientScope);
            }
            if status == StatusCode::UNAUTHORIZED {
                return Err(fail(FetchError::status(url, status.as_u16())));
            }
            let body = read_body(&mut response, url, limit).await.map_err(fail)?;
            return Ok((status, body));
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// Creates a poll stream (SSF §8.1.1.1) for the events a deny set needs.
    pub async fn create_stream(&self, description: &str) -> Result<StreamConfig, RevocationError> {
        let url = &self.configuration_endpoint;
        let body = json!({ "events_requested": REQUESTED, "description": description });
        let (status, body) = self.send(Method::POST, url, Some(&body), self.timeout, MAX_RESPONSE_LEN).await?;
        match status {
            StatusCode::CREATED | StatusCode::OK => self.stream_config(url, &body),
            StatusCode::CONFLICT => Err(RevocationError::TooManyStreams),
            other => Err(RevocationError::Request(FetchError::status(url, other.as_u16()).with_method("POST"))),
        }
    }

    /// Reads stream `stream_id` (SSF §8.1.1.2); `None` when the transmitter does not know it.
    pub async fn read_stream(&self, stream_id: &str) -> Result<Option<StreamConfig>, RevocationError> {
        let mut url = self.configuration_endpoint.clone();
        url.query_pairs_mut().append_pair("stream_id", stream_id);
        let (status, body) = self.send(Method::GET, &url, None, self.timeout, MAX_RESPONSE_LEN).await?;
        match status {
            StatusCode::OK => self.stream_config(&url, &body).map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            other => Err(RevocationError::Request(FetchError::status(&url, other.as_u16()))),
        }
    }

    /// Deletes stream `stream_id` (SSF §8.1.1.5); one the transmitter no longer knows is
    /// as good as deleted.
    pub async fn delete_stream(&self, stream_id: &str) -> Result<(), RevocationError> {
        let mut url = self.configuration_endpoint.clone();
        url.query_pairs_mut().append_pair("stream_id", stream_id);
        let (status, _) = self.send(Method::DELETE, &url, None, self.timeout, MAX_RESPONSE_LEN).await?;
        match status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            other => Err(RevocationError::Request(FetchError::status(&url, other.as_u16()).with_method("DELETE"))),
        }
    }

    /// One poll (RFC 8936 §2.4) with `request` as its body; `None` when the stream is gone
    /// (404: the transmitter deleted it after a time without activity).
    pub async fn poll(
        &self,
        url: &Url,
        request: &Value,
        timeout: Duration,
    ) -> Result<Option<PollAnswer>, RevocationError> {
        let (status, body) = self.send(Method::POST, url, Some(request), timeout, MAX_POLL_LEN).await?;
        match status {
            StatusCode::OK => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| RevocationError::Request(FetchError::invalid(url, e).with_method("POST"))),
            StatusCode::NOT_FOUND => Ok(None),
            other => Err(RevocationError::Request(FetchError::status(url, other.as_u16()).with_method("POST"))),
        }
    }

    /// Asks for a verification event echoing `state` (SSF §8.1.4.2).
    pub async fn request_verification(&self, stream_id: &str, state: &str) -> Result<Verification, RevocationError> {
        let Some(url) = &self.verification_endpoint else { return Ok(Verification::NoStream) };
        let body = json!({ "stream_id": stream_id, "state": state });
        let (status, _) = self.send(Method::POST, url, Some(&body), self.timeout, MAX_RESPONSE_LEN).await?;
        match status {
            s if s.is_success() => Ok(Verification::Requested),
            StatusCode::TOO_MANY_REQUESTS => Ok(Verification::TooSoon),
            StatusCode::NOT_FOUND => Ok(Verification::NoStream),
            other => Err(RevocationError::Request(FetchError::status(url, other.as_u16()).with_method("POST"))),
        }
    }

    /// A stream configuration the transmitter answered, checked (SSF §8.1.1.1.1): this
    /// issuer, this receiver, poll delivery, and the events a deny set needs.
    fn stream_config(&self, url: &Url, body: &[u8]) -> Result<StreamConfig, RevocationError> {
        let raw: RawStream =
            serde_json::from_slice(body).map_err(|e| RevocationError::Request(FetchError::invalid(url, e)))?;
        if raw.iss != self.issuer {
            return Err(RevocationError::Stream("the stream belongs to another issuer"));
        }
        let mut audience = raw.aud.0;
        if !audience.contains(&self.client_id) {
            return Err(RevocationError::Stream("the stream's aud is not this client"));
        }
        audience.sort_unstable();
        audience.dedup();
        if raw.delivery.method != POLL_METHOD {
            return Err(RevocationError::Stream("the stream does not use poll delivery"));
        }
        let poll_url = raw
            .delivery
            .endpoint_url
            .as_deref()
            .and_then(http_url)
            .ok_or(RevocationError::Stream("the stream has no http(s) poll endpoint_url"))?;
        if raw.events_delivered.is_some_and(|events| !events.iter().any(|e| e == SESSION_REVOKED)) {
            return Err(RevocationError::Stream("the stream does not deliver session-revoked events"));
        }
        if raw.stream_id.is_empty() {
            return Err(RevocationError::Stream("the stream has no stream_id"));
        }
        Ok(StreamConfig {
            stream_id: raw.stream_id,
            poll_url,
            audience,
            min_verification_interval: Duration::from_secs(raw.min_verification_interval.unwrap_or(0)),
        })
    }
}

/// SSF §7.2: `/.well-known/ssf-configuration` goes between the host and the issuer's path
/// (RFC 8414 style, unlike OpenID discovery, which appends).
fn metadata_url(issuer: &str) -> Result<Url, RevocationError> {
    let mut url = Url::parse(issuer).map_err(|_| RevocationError::Metadata("the issuer is not a URL"))?;
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("/.well-known/ssf-configuration{path}"));
    Ok(url)
}

fn http_url(raw: &str) -> Option<Url> {
    Url::parse(raw).ok().filter(|url| matches!(url.scheme(), "https" | "http"))
}

/// `client_secret_basic` (RFC 6749 §2.3.1).
fn basic_credentials(client_id: &str, client_secret: &str) -> Result<HeaderValue, RevocationError> {
    crate::http::basic_credentials(client_id, client_secret)
        .ok_or(RevocationError::Metadata("the client credentials cannot be sent"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_path_goes_between_host_and_issuer_path() {
        let url = |issuer| metadata_url(issuer).unwrap().to_string();
        assert_eq!(url("https://id.example.com"), "https://id.example.com/.well-known/ssf-configuration");
        assert_eq!(url("https://id.example.com/"), "https://id.example.com/.well-known/ssf-configuration");
        assert_eq!(url("https://example.com/issuer1"), "https://example.com/.well-known/ssf-configuration/issuer1");
        assert_eq!(url("http://127.0.0.1:8080"), "http://127.0.0.1:8080/.well-known/ssf-configuration");
    }
}
