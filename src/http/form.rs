//! Strict `application/x-www-form-urlencoded` bodies and query strings, for every
//! endpoint that takes parameters: the token-style endpoints and the browser pages alike.
//!
//! RFC 6749 §3.1/§3.2: parameters sent without a value are treated as omitted, and
//! request parameters MUST NOT be included more than once. Unlike lenient parsers,
//! bad percent-encoding and non-UTF-8 bytes are errors here, not silently repaired:
//! a client sending them has a bug it should hear about.
//!
//! A [`FormError`] says what was wrong and nothing about how to answer: handlers take
//! `Result<FormParams, FormError>` and turn it into their surface's own error with `?`
//! (`OAuthError` JSON for `/token`, an HTML page for the browser endpoints).

use actix_web::dev::Payload;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, ResponseError};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use std::collections::HashSet;

/// Largest accepted body.
pub const BODY_LIMIT: usize = 16 * 1024;

/// Most parameters accepted in one body or query. The largest legitimate request (an
/// authorization request with every OpenID Connect parameter) has about 20; anything past
/// this is refused before more of it is decoded.
pub const MAX_PARAMS: usize = 100;

/// Longest query string accepted by the browser endpoints (`/authorize`, `/logout`):
/// every value they take has its own bound (2 KiB for `state`, `nonce`, `login_hint`),
/// and the request must also fit, signed, in the login form (see `login::signed_form`).
pub const MAX_QUERY_LEN: usize = 8 * 1024;

/// Parameters that may legitimately repeat (RFC 8707 §2: several `resource` values).
const REPEATABLE: &[&str] = &["resource"];

/// Why a body or query was refused. The texts are written for client developers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// The body is not `application/x-www-form-urlencoded` (with UTF-8, if a charset is named).
    #[error("the body must be application/x-www-form-urlencoded")]
    NotAForm,
    /// The body exceeds [`BODY_LIMIT`].
    #[error("the request body is larger than 16 KiB")]
    BodyTooLarge,
    /// The query exceeds [`MAX_QUERY_LEN`].
    #[error("the query is longer than {MAX_QUERY_LEN} bytes")]
    QueryTooLong,
    /// More than [`MAX_PARAMS`] pairs.
    #[error("more than {MAX_PARAMS} parameters")]
    TooManyParameters,
    /// A parameter other than `resource` appears twice with a value (RFC 6749 §3.2).
    #[error("parameter `{0}` is repeated (RFC 6749 §3.2)")]
    Repeated(String),
    /// Bad percent-encoding or non-UTF-8 bytes; `name` is the parameter, when known.
    #[error("{}", match .name { Some(name) => format!("malformed value of `{name}`: {why}"), None => format!("malformed form body: {why}") })]
    Malformed { name: Option<String>, why: &'static str },
    /// The body could not be read from the connection.
    #[error("the request body could not be read")]
    Unreadable,
}

/// Decoded form parameters, in order of appearance.
#[derive(Debug, Default)]
pub struct FormParams(Vec<(String, String)>);

impl FormParams {
    /// The value of a single-valued parameter; `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of a repeatable parameter.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    /// Parses a query string of at most [`MAX_QUERY_LEN`] bytes.
    pub fn parse_query(query: &str) -> Result<Self, FormError> {
        if query.len() > MAX_QUERY_LEN {
            return Err(FormError::QueryTooLong);
        }
        Self::parse(query.as_bytes())
    }

    /// Parses a body (or query string), in time linear in its length: duplicates are
    /// found with a set, and at most [`MAX_PARAMS`] pairs (empty ones included) are read.
    pub fn parse(body: &[u8]) -> Result<Self, FormError> {
        let mut params: Vec<(String, String)> = Vec::new();
        let mut named: HashSet<String> = HashSet::new();
        for (index, pair) in body.split(|&b| b == b'&').enumerate() {
            if index >= MAX_PARAMS {
                return Err(FormError::TooManyParameters);
            }
            if pair.is_empty() {
                continue;
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let name = decode_component(name).map_err(|why| FormError::Malformed { name: None, why })?;
            let value =
                decode_component(value).map_err(|why| FormError::Malformed { name: Some(name.clone()), why })?;
            // An empty value counts as omitted (§3.1), so only non-empty ones can repeat.
            if !value.is_empty() && !named.insert(name.clone()) && !REPEATABLE.contains(&name.as_str()) {
                return Err(FormError::Repeated(name));
            }
            params.push((name, value));
        }
        Ok(Self(params))
    }
}

impl FormError {
    /// 413 for a body over the limit, 400 for the rest: the status every surface answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Needed by actix for an extractor error, but never the answer a client sees: every
/// handler takes `Result<FormParams, FormError>` and answers in its own surface's format.
impl ResponseError for FormError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }
}

/// Decodes one form-urlencoded component: `+` is a space, `%XX` a byte; the result must be UTF-8.
pub fn decode_component(raw: &[u8]) -> Result<String, &'static str> {
    // Most components have nothing to decode (a JWT, a client id, a base64url secret): one
    // copy and one UTF-8 check instead of a push per byte, which was 2 % of an
    // introspection's CPU with an 800-byte token (bench/README.md finding 26).
    if !raw.iter().any(|b| matches!(b, b'+' | b'%')) {
        return String::from_utf8(raw.to_vec()).map_err(|_| "not valid UTF-8");
    }
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or("truncated percent-encoding")?;
                let high = hex_value(hex[0]).ok_or("invalid percent-encoding")?;
                let low = hex_value(hex[1]).ok_or("invalid percent-encoding")?;
                bytes.push(high << 4 | low);
                i += 2;
            }
            byte => bytes.push(byte),
        }
        i += 1;
    }
    String::from_utf8(bytes).map_err(|_| "not valid UTF-8")
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn is_form_content_type(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return false;
    }
    // Only UTF-8 (or no charset) is meaningful for OAuth parameters.
    parts.all(|p| {
        let p = p.trim();
        match p.split_once('=') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("charset") => {
                v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            }
            _ => true,
        }
    })
}

impl FromRequest for FormParams {
    type Error = FormError;
    type Future = LocalBoxFuture<'static, Result<Self, FormError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_form = is_form_content_type(req);
        let declared_length =
            req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !is_form {
                return Err(FormError::NotAForm);
            }
            if declared_length.is_some_and(|n| n > BODY_LIMIT as u64) {
                return Err(FormError::BodyTooLarge);
            }
            let mut body = Vec::with_capacity(declared_length.unwrap_or(0) as usize);
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| FormError::Unreadable)?;
                if body.len() + chunk.len() > BODY_LIMIT {
                    return Err(FormError::BodyTooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            FormParams::parse(&body)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent() {
        let form = FormParams::parse(b"a=x+y&b=%2Fz%C3%A9&c=").unwrap();
        assert_eq!(form.get("a"), Some("x y"));
        assert_eq!(form.get("b"), Some("/zé"));
        assert_eq!(form.get("c"), None, "empty values count as omitted (RFC 6749 §3.1)");
        assert_eq!(form.get("d"), None);
    }

    #[test]
    fn components_without_escapes_decode_to_themselves() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_~";
        assert_eq!(decode_component(jwt.as_bytes()).unwrap(), jwt);
        assert_eq!(decode_component("é".as_bytes()).unwrap(), "é");
        assert_eq!(decode_component(b"").unwrap(), "");
        assert!(decode_component(b"a\xffb").is_err());
    }

    #[test]
    fn rejects_bad_percent_encoding_and_non_utf8() {
        for body in [&b"a=%zz"[..], b"a=%4", b"a=%", b"a=%ff%fe", b"a=\xff"] {
            let error = FormParams::parse(body).unwrap_err();
            assert!(matches!(error, FormError::Malformed { .. }), "{body:?}: {error:?}");
        }
    }

    #[test]
    fn rejects_repeated_parameters_except_resource() {
        let error = FormParams::parse(b"scope=a&scope=b").unwrap_err();
        assert_eq!(error, FormError::Repeated("scope".into()));
        assert!(error.to_string().contains("repeated"));
        let form = FormParams::parse(b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb").unwrap();
        assert_eq!(form.get_all("resource").collect::<Vec<_>>(), ["https://a", "https://b"]);
        // An empty duplicate is an omitted parameter, not a repetition.
        assert!(FormParams::parse(b"scope=&scope=b").is_ok());
        assert!(FormParams::parse(b"scope=b&scope=").is_ok());
    }

    #[test]
    fn more_than_max_params_are_refused_even_when_empty() {
        let at_limit = vec!["a=1"; MAX_PARAMS].join("&").replace("a=1", "x");
        assert!(FormParams::parse(at_limit.as_bytes()).is_ok());
        let over = "&".repeat(MAX_PARAMS);
        assert_eq!(FormParams::parse(over.as_bytes()).unwrap_err(), FormError::TooManyParameters);
        let many: String = (0..=MAX_PARAMS).map(|i| format!("p{i}=v&")).collect();
        assert!(FormParams::parse(many.as_bytes()).unwrap_err().to_string().contains("parameters"));
    }
}
