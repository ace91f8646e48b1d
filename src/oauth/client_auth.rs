//! Client authentication at the token-style endpoints (RFC 6749 §2.3.1, §3.2.1):
//! `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523 §2.2, in
//! `client_assertion`), or a bare `client_id` for public clients.

use super::client_assertion::{AssertionChecker, ASSERTION_TYPE};
use super::error::OAuthError;
use crate::domain::client::{AuthMethod, Client, ClientId, ClientType};
use crate::domain::secret::SecretDigest;
use crate::http::client_ip::{client_ip, ip_prefix};
use crate::http::form::{decode_component, FormParams};
use crate::storage::client_cache::{ClientCache, Lookup};
use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};
use aws_lc_rs::hmac;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use futures_util::future::LocalBoxFuture;
use std::fmt;
use std::sync::{Arc, LazyLock};

/// A request to `/token`, `/revoke` or `/introspect` from a client that authenticated:
/// the form it posted (the body can be read once, and it carries the credentials) and the
/// client's registration.
pub struct AuthenticatedClient {
    pub client: Arc<Client>,
    pub form: FormParams,
}

impl FromRequest for AuthenticatedClient {
    type Error = OAuthError;
    type Future = LocalBoxFuture<'static, Result<Self, OAuthError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let form = FormParams::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let form = form.await?;
            let presented = PresentedCredentials::from_request(&req, &form)?;
            let clients = req
                .app_data::<Data<ClientCache>>()
                .ok_or_else(|| OAuthError::Unexpected(anyhow::anyhow!("the client cache is not configured")))?;
            let client = match presented {
                PresentedCredentials::Assertion { assertion, id } => {
                    let checker = req.app_data::<Data<AssertionChecker>>().ok_or_else(|| {
                        OAuthError::Unexpected(anyhow::anyhow!("the client assertion checker is not configured"))
                    })?;
                    // The request's path already holds the issuer's path (the routes are
                    // mounted below it), so it goes after the origin, not the issuer.
                    let endpoint = format!("{}{}", checker.issuer.origin(), req.path());
                    checker.authenticate(clients, &assertion, id.as_ref(), &endpoint).await?
                }
                presented => authenticate(clients, presented).await?,
            };
            super::cors::answered_client(&req, client.clone());
            Ok(Self { client, form })
        })
    }
}

/// What the client presented, before anything is looked up.
pub enum PresentedCredentials {
    Basic {
        id: ClientId,
        secret: String,
    },
    Post {
        id: ClientId,
        secret: String,
    },
    /// `client_assertion` (RFC 7523 §2.2), with the body's `client_id` if it has one.
    Assertion {
        assertion: String,
        id: Option<ClientId>,
    },
    /// Only `client_id` in the body: a public client.
    IdOnly {
        id: ClientId,
    },
    Nothing,
}

impl fmt::Debug for PresentedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { id, .. } => write!(f, "Basic({id}, ***)"),
            Self::Post { id, .. } => write!(f, "Post({id}, ***)"),
            Self::Assertion { id, .. } => write!(f, "Assertion({id:?}, ***)"),
            Self::IdOnly { id } => write!(f, "IdOnly({id})"),
            Self::Nothing => f.write_str("Nothing"),
        }
    }
}

impl PresentedCredentials {
    /// Reads the `Authorization` header and body. Using more than one method at once is
    /// `invalid_request` (RFC 6749 §2.3: "MUST NOT use more than one authentication method").
    pub fn from_request(req: &HttpRequest, form: &FormParams) -> Result<Self, OAuthError> {
        let body_id = form.get("client_id");
        let body_secret = form.get("client_secret");
        let assertion_type = form.get("client_assertion_type");
        let assertion = form.get("client_assertion");
        if assertion_type.is_some() || assertion.is_some() {
            if req.headers().contains_key(AUTHORIZATION) || body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method: client_assertion with HTTP Basic or client_secret is two",
                ));
            }
            let Some(assertion) = assertion else {
                return Err(OAuthError::invalid_request("client_assertion_type without client_assertion"));
            };
            match assertion_type {
                Some(ASSERTION_TYPE) => {}
                Some(_) => {
                    return Err(OAuthError::invalid_request(format!("client_assertion_type must be {ASSERTION_TYPE}")))
                }
                None => return Err(OAuthError::invalid_request("client_assertion without client_assertion_type")),
            }
            let id = body_id
                .map(|raw| ClientId::parse(raw).map_err(|e| OAuthError::invalid_request(e.to_string())))
                .transpose()?;
            return Ok(Self::Assertion { assertion: assertion.to_owned(), id });
        }
        if let Some(header) = req.headers().get(AUTHORIZATION) {
            let header = header.to_str().map_err(|_| OAuthError::invalid_request("malformed Authorization header"))?;
            let (id, secret) = parse_basic(header)?;
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use either HTTP Basic or client_secret in the body, not both",
                ));
            }
            if body_id.is_some_and(|b| b != id.as_str()) {
                return Err(OAuthError::invalid_request("client_id in the body differs from the Authorization header"));
            }
            return Ok(Self::Basic { id, secret });
        }
        let parse_id = |raw: &str| ClientId::parse(raw).map_err(|e| OAuthError::invalid_request(e.to_string()));
        match (body_id, body_secret) {
            (Some(id), Some(secret)) => Ok(Self::Post { id: parse_id(id)?, secret: secret.to_owned() }),
            (Some(id), None) => Ok(Self::IdOnly { id: parse_id(id)? }),
            (None, Some(_)) => Err(OAuthError::invalid_request("client_secret without client_id")),
            (None, None) => Ok(Self::Nothing),
        }
    }
}

/// What a public client's request is counted under, for the per-IP bounds on the rows it
/// may create (`par.max_per_ip`, `device.max_per_ip`): the digest of the client IP's
/// network, keyed by `key` (derived from the key-encryption key, so the same on every
/// replica). Keyed because an IPv4 address has 32 bits: a plain SHA-256 of one is undone
/// by trying them all, and the table would hold the address of everyone who started a
/// login on a public client. `None` for a client that authenticated: its requests are its
/// own.
pub fn public_source(
    req: &HttpRequest,
    client: &Client,
    trust_forwarded_headers: bool,
    key: &hmac::Key,
) -> Option<SecretDigest> {
    matches!(client.client_type(), ClientType::Public)
        .then(|| SecretDigest::keyed(key, ip_prefix(client_ip(req, trust_forwarded_headers)).as_bytes()))
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1, RFC 7617).
pub fn parse_basic(header: &str) -> Result<(ClientId, String), OAuthError> {
    let malformed = || OAuthError::invalid_request("malformed Basic Authorization header");
    let (scheme, credentials) = header.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_request("the token endpoint accepts HTTP Basic client authentication only"));
    }
    let credentials = credentials.trim();
    let decoded =
        STANDARD.decode(credentials).or_else(|_| STANDARD_NO_PAD.decode(credentials)).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = decode_component(id.as_bytes()).map_err(|_| malformed())?;
    let secret = decode_component(secret.as_bytes()).map_err(|_| malformed())?;
    let id = ClientId::parse(&id).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    Ok((id, secret))
}

impl AuthenticatedClient {
    /// The `token` parameter of `/revoke` and `/introspect` (RFC 7009 §2.1, RFC 7662 §2.1).
    pub fn token(&self) -> Result<&str, OAuthError> {
        self.form.get("token").ok_or_else(|| OAuthError::invalid_request("missing token"))
    }
}

/// Compared against when the client is unknown, so the response takes as long as for a
/// known client with a wrong secret.
static DUMMY_DIGEST: LazyLock<SecretDigest> = LazyLock::new(|| SecretDigest::of("tessera-dummy-client-secret"));

/// Looks the client up and checks what it presented against its registration.
///
/// The registration may come from the [`ClientCache`]; a secret that does not match a
/// cached registration is checked once more against a fresh read, so a secret rotated
/// moments ago is accepted at once.
pub async fn authenticate(clients: &ClientCache, presented: PresentedCredentials) -> Result<Arc<Client>, OAuthError> {
    let (id, secret, method) = match presented {
        PresentedCredentials::Basic { id, secret } => (id, Some(secret), AuthMethod::ClientSecretBasic),
        PresentedCredentials::Post { id, secret } => (id, Some(secret), AuthMethod::ClientSecretPost),
        PresentedCredentials::IdOnly { id } => (id, None, AuthMethod::None),
        PresentedCredentials::Nothing => return Err(OAuthError::invalid_client("client authentication is required")),
        PresentedCredentials::Assertion { .. } => {
            return Err(OAuthError::Unexpected(anyhow::anyhow!("client assertions are checked by AssertionChecker")))
        }
    };
    let Some(Lookup { client, from_cache }) = clients.get(&id).await? else {
        if let Some(secret) = &secret {
            let _ = DUMMY_DIGEST.matches(secret);
        }
        return Err(failed());
    };
    match check(&client, secret.as_deref(), method) {
        Err(Mismatch::Secret) if from_cache => match clients.reload(&id).await? {
            Some(fresh) => check(&fresh, secret.as_deref(), method).map(|()| fresh).map_err(Mismatch::into_error),
            None => Err(failed()),
        },
        outcome => outcome.map(|()| client).map_err(Mismatch::into_error),
    }
}

fn failed() -> OAuthError {
    OAuthError::invalid_client("client authentication failed")
}

/// Why a registration refused what was presented.
enum Mismatch {
    Disabled,
    Method(AuthMethod),
    Secret,
}

impl Mismatch {
    fn into_error(self) -> OAuthError {
        match self {
            Self::Disabled => OAuthError::invalid_client("the client is disabled"),
            Self::Method(registered) => OAuthError::invalid_client(format!(
                "the client is registered for token_endpoint_auth_method {}",
                registered.as_str()
            )),
            Self::Secret => failed(),
        }
    }
}

fn check(client: &Client, secret: Option<&str>, method: AuthMethod) -> Result<(), Mismatch> {
    if client.is_disabled() {
        return Err(Mismatch::Disabled);
    }
    if client.auth_method != method {
        return Err(Mismatch::Method(client.auth_method));
    }
    match (&client.secret_digest, secret) {
        (Some(digest), Some(secret)) if digest.matches(secret) => Ok(()),
        (None, None) => Ok(()),
        _ => Err(Mismatch::Secret),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> String {
        format!("Basic {}", STANDARD.encode(raw))
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let (id, secret) = parse_basic(&basic("my%20client:s%3Acret+x")).unwrap();
        assert_eq!(id.as_str(), "my client");
        assert_eq!(secret, "s:cret x");
    }

    #[test]
    fn malformed_basic_headers_are_invalid_request() {
        for header in ["Basic", "Basic !!!", "Bearer abc", &basic("no-colon"), &basic(":secret"), &basic("a:%zz")] {
            let error = parse_basic(header).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "{header}");
        }
    }
}
