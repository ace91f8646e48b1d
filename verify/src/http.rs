//! Fetching the issuer's metadata and JWK Set: size-limited, with a timeout, and with the
//! HTTP caching headers (RFC 9111 §5.2 `Cache-Control`, §5.1 `Age`, RFC 9110 §8.8.3 ETag)
//! that decide when to fetch again.

use crate::FetchError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AGE, CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;
use std::time::Duration;
use url::Url;

/// Largest discovery or JWKS document read. Tessera's JWKS is a few KiB; the limit only
/// keeps a misbehaving endpoint from filling memory.
const MAX_DOCUMENT_LEN: usize = 1024 * 1024;

/// The HTTP client and the per-request timeout.
pub(crate) struct HttpFetcher {
    pub client: reqwest::Client,
    pub timeout: Duration,
}

/// The outcome of a successful GET.
pub(crate) enum Fetched {
    /// 304 to a conditional request: what we have is still current.
    NotModified { fresh_for: Option<Duration> },
    /// 2xx with a body.
    Body { body: Vec<u8>, etag: Option<String>, fresh_for: Option<Duration> },
}

impl HttpFetcher {
    /// GET `url`, conditionally when `etag` is given.
    pub async fn get(&self, url: &Url, etag: Option<&str>) -> Result<Fetched, FetchError> {
        let mut request = self.client.get(url.clone()).timeout(self.timeout).header(ACCEPT, "application/json");
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let mut response = request.send().await.map_err(|e| FetchError::request(url, e))?;
        let status = response.status();
        let fresh_for = freshness(response.headers());
        if status == StatusCode::NOT_MODIFIED && etag.is_some() {
            return Ok(Fetched::NotModified { fresh_for });
        }
        if !status.is_success() {
            return Err(FetchError::status(url, status.as_u16()));
        }
        let etag = response.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = read_body(&mut response, url, MAX_DOCUMENT_LEN).await?;
        Ok(Fetched::Body { body, etag, fresh_for })
    }
}

/// The body of `response`, refused past `limit` bytes whatever `Content-Length` says.
pub(crate) async fn read_body(
    response: &mut reqwest::Response,
    url: &Url,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    if response.content_length().is_some_and(|len| len > limit as u64) {
        return Err(FetchError::too_large(url, limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::request(url, e))? {
        if body.len() + chunk.len() > limit {
            return Err(FetchError::too_large(url, limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `client_secret_basic` (RFC 6749 §2.3.1): each part form-urlencoded, then Basic; marked
/// sensitive so that no debug output shows it. `None` when it cannot be a header value.
pub(crate) fn basic_credentials(client_id: &str, client_secret: &str) -> Option<HeaderValue> {
    let encode = |part: &str| url::form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
    let encoded = STANDARD.encode(format!("{}:{}", encode(client_id), encode(client_secret)));
    let mut header = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    header.set_sensitive(true);
    Some(header)
}

/// How long a response stays fresh (RFC 9111 §4.2.1): `max-age` minus `Age`; zero for
/// `no-cache`/`no-store`; `None` when the response says nothing. A repeated `max-age`
/// counts with its smallest value.
pub(crate) fn freshness(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age: Option<u64> = None;
    let directives = headers.get_all(CACHE_CONTROL).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    for directive in directives {
        let (name, argument) = match directive.split_once('=') {
            Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            if let Some(seconds) = argument.and_then(|a| a.parse::<u64>().ok()) {
                max_age = Some(max_age.map_or(seconds, |m| m.min(seconds)));
            }
        }
    }
    let age = headers.get(AGE).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok()).unwrap_or(0);
    max_age.map(|seconds| Duration::from_secs(seconds.saturating_sub(age)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn with(pairs: &[(reqwest::header::HeaderName, &'static str)]) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name, HeaderValue::from_static(value));
        }
        freshness(&headers)
    }

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        let header = basic_credentials("my client", "s3cr:t/+").unwrap();
        assert!(header.is_sensitive());
        let encoded = header.to_str().unwrap().strip_prefix("Basic ").unwrap();
        assert_eq!(STANDARD.decode(encoded).unwrap(), b"my+client:s3cr%3At%2F%2B");
    }

    #[test]
    fn max_age_is_read_whatever_the_spelling() {
        assert_eq!(with(&[(CACHE_CONTROL, "public, max-age=900")]), Some(Duration::from_secs(900)));
        assert_eq!(with(&[(CACHE_CONTROL, "Max-Age=\"60\", must-revalidate")]), Some(Duration::from_secs(60)));
        assert_eq!(
            with(&[(CACHE_CONTROL, "max-age=60"), (CACHE_CONTROL, "max-age=30")]),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn age_is_subtracted() {
        assert_eq!(with(&[(CACHE_CONTROL, "max-age=900"), (AGE, "100")]), Some(Duration::from_secs(800)));
        assert_eq!(with(&[(CACHE_CONTROL, "max-age=900"), (AGE, "1000")]), Some(Duration::ZERO));
    }

    #[test]
    fn no_cache_means_stale_at_once_and_silence_means_unknown() {
        assert_eq!(with(&[(CACHE_CONTROL, "no-cache, max-age=900")]), Some(Duration::ZERO));
        assert_eq!(with(&[(CACHE_CONTROL, "no-store")]), Some(Duration::ZERO));
        assert_eq!(with(&[(CACHE_CONTROL, "public, max-age=soon")]), None);
        assert_eq!(with(&[]), None);
    }
}
