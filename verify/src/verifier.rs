//! The verifier: configuration, and the checks of RFC 9068 §4 in order.

use crate::claims::Claims;
use crate::http::HttpFetcher;
use crate::jws::{CompactJws, HeaderBuffer, HEADER_BUFFER_LEN, SIGNATURE_BUFFER_LEN};
use crate::key_cache::KeyCache;
use crate::{discovery, Algorithm, VerifyError};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use url::Url;

const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Clock skew beyond this is a broken clock, not skew; more would stretch every token's life.
const MAX_LEEWAY: Duration = Duration::from_secs(5 * 60);
const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Verifies the JWT access tokens (RFC 9068) of one issuer for one resource server.
///
/// Cheap to clone (an `Arc` inside); build one per process and share it. Verification
/// needs no network while the cached JWK Set is fresh and knows the token's `kid`.
///
/// ```no_run
/// # async fn run() -> Result<(), tessera_verify::VerifyError> {
/// let verifier = tessera_verify::Verifier::builder("https://id.example.com")
///     .audience("https://api.example.com")
///     .build()
///     .await?;
/// let claims = verifier.verify("eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJSUzI1NiIsImtpZCI6Ii4uLiJ9.e30.c2ln").await?;
/// println!("{} may use {}", claims.client_id, claims.scope);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audiences: Vec<String>,
    leeway_seconds: i64,
    algorithms: Vec<Algorithm>,
    realm: Arc<str>,
    keys: Arc<KeyCache>,
}

impl Verifier {
    /// Starts configuring a verifier for tokens from `issuer`: the issuer identifier
    /// exactly as it appears in `iss` (Tessera's has no trailing slash).
    pub fn builder(issuer: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            issuer: issuer.into(),
            audiences: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            algorithms: vec![Algorithm::RS256],
            min_refetch_interval: DEFAULT_MIN_REFETCH_INTERVAL,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            http_client: None,
            realm: None,
        }
    }

    /// Verifies `token` (the JWS compact serialisation, without `Bearer `) and returns
    /// its claims. In order: size and shape (RFC 7515 §7.1), `alg` against the
    /// allow-list, `typ` (RFC 9068 §4), the key by `kid`, the signature, then `iss`,
    /// `aud`, `exp`, `nbf` and `iat`, and the presence of the claims RFC 9068 §2.2
    /// requires.
    ///
    /// Nothing in the payload is looked at before the signature has verified.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let jws = CompactJws::split(token)?;
        let mut header_buffer: HeaderBuffer = [0; HEADER_BUFFER_LEN];
        let header = jws.header(&mut header_buffer)?;
        if !self.inner.algorithms.contains(&header.alg) {
            return Err(VerifyError::UnsupportedAlgorithm);
        }
        if !header.is_access_token {
            return Err(VerifyError::WrongType);
        }
        // Tessera always names the key. Trying every key instead would let one forged
        // token cost a signature check per published key.
        let kid = header.kid.ok_or(VerifyError::Malformed("the JOSE header has no kid"))?;
        let key = self.inner.keys.key(&kid).await?;
        let mut signature = [0u8; SIGNATURE_BUFFER_LEN];
        let signature_len = jws.signature_into(&mut signature)?;
        key.verify(header.alg, jws.signing_input.as_bytes(), &signature[..signature_len])?;
        let claims = jws.with_payload(Claims::from_json)?;
        self.check_claims(&claims, unix_now())?;
        Ok(claims)
    }

    fn check_claims(&self, claims: &Claims, now: i64) -> Result<(), VerifyError> {
        let inner = &*self.inner;
        // RFC 9068 §4: `iss` must match exactly, with no normalisation.
        if claims.iss != inner.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if !claims.aud.iter().any(|aud| inner.audiences.contains(aud)) {
            return Err(VerifyError::WrongAudience);
        }
        let leeway = inner.leeway_seconds;
        // RFC 7519 §4.1.4: the current time must be before `exp`.
        if now >= claims.exp.saturating_add(leeway) {
            return Err(VerifyError::Expired);
        }
        // §4.1.5: the current time must be at or after `nbf`.
        if claims.nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
            return Err(VerifyError::NotYetValid);
        }
        // A token issued in the future comes from a broken clock or a forger.
        if now.saturating_add(leeway) < claims.iat {
            return Err(VerifyError::NotYetValid);
        }
        Ok(())
    }

    /// The issuer identifier tokens must carry in `iss`.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The audiences accepted in `aud`.
    pub fn audiences(&self) -> &[String] {
        &self.inner.audiences
    }

    /// The realm of the RFC 6750 §3 `WWW-Authenticate` challenge.
    pub fn realm(&self) -> &str {
        &self.inner.realm
    }

    /// The realm, shared, for error values that outlive the request.
    #[cfg(feature = "actix")]
    pub(crate) fn shared_realm(&self) -> Arc<str> {
        Arc::clone(&self.inner.realm)
    }

    /// The `kid`s of the keys currently cached, sorted: for health and debug endpoints.
    pub fn key_ids(&self) -> Vec<String> {
        self.inner.keys.key_ids()
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .field("algorithms", &self.inner.algorithms)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> i64 {
    // A clock before 1970 is broken; treating it as 1970 makes every token look
    // not-yet-valid rather than valid forever.
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Configures a [`Verifier`]; created by [`Verifier::builder`].
#[derive(Debug)]
#[must_use = "call `build().await` to get a Verifier"]
pub struct VerifierBuilder {
    issuer: String,
    audiences: Vec<String>,
    leeway: Duration,
    algorithms: Vec<Algorithm>,
    min_refetch_interval: Duration,
    http_timeout: Duration,
    http_client: Option<reqwest::Client>,
    realm: Option<String>,
}

impl VerifierBuilder {
    /// Accepts tokens whose `aud` contains `audience` (RFC 9068 §4). At least one audience
    /// is required: without the check, a token minted for any other service would do.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts every audience in `audiences`, in addition to those already added.
    pub fn audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences.extend(audiences.into_iter().map(Into::into));
        self
    }

    /// Clock skew tolerated for `exp`, `nbf` and `iat`: 30 seconds unless set; at most
    /// five minutes.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The signature algorithms accepted; only RS256 (Tessera's) unless set. `none`
    /// and the HMAC algorithms are not [`Algorithm`]s, so they are refused whatever
    /// this list holds.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// The least time between two JWK Set fetches caused by unknown `kid`s (and the
    /// back-off after a failed fetch): 30 seconds unless set. However many tokens with
    /// unknown `kid`s arrive, the issuer sees at most one request per interval.
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch_interval = interval;
        self
    }

    /// Timeout of each request to the issuer: 10 seconds unless set.
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// The HTTP client to fetch discovery and the JWK Set with, for custom TLS roots or
    /// proxies. The [`http_timeout`](Self::http_timeout) still applies per request.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// The `realm` of the RFC 6750 §3 challenge; the first audience unless set.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Checks the settings, reads the issuer's discovery document, and fetches its JWK
    /// Set. Fails when either is unreachable or invalid, so a misconfigured service
    /// stops at startup rather than refusing every request.
    pub async fn build(self) -> Result<Verifier, VerifyError> {
        let issuer_url = Url::parse(&self.issuer)
            .map_err(|e| configuration(format!("issuer {:?} is not a URL: {e}", self.issuer)))?;
        if !matches!(issuer_url.scheme(), "https" | "http")
            || issuer_url.query().is_some()
            || issuer_url.fragment().is_some()
        {
            return Err(configuration(format!(
                "issuer {:?} must be an http(s) URL without query or fragment",
                self.issuer
            )));
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(configuration("at least one non-empty audience is required".into()));
        }
        if self.algorithms.is_empty() {
            return Err(configuration("at least one algorithm must be allowed".into()));
        }
        if self.leeway > MAX_LEEWAY {
            return Err(configuration(format!("the leeway may be at most {} seconds", MAX_LEEWAY.as_secs())));
        }
        if self.min_refetch_interval.is_zero() || self.http_timeout.is_zero() {
            return Err(configuration("the refetch interval and HTTP timeout must be positive".into()));
        }
        let realm = self.realm.unwrap_or_else(|| self.audiences[0].clone());
        // It goes into a quoted-string of the WWW-Authenticate header.
        if !realm.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)) {
            return Err(configuration(format!("realm {realm:?} may only hold printable ASCII without `\"` and `\\`")));
        }
        let client = match self.http_client {
            Some(client) => client,
            None => reqwest::Client::builder()
                .user_agent(concat!("tessera-verify/", env!("CARGO_PKG_VERSION")))
                // Fetches are minutes apart, so pooling saves little; and a pooled
                // connection belongs to the runtime that opened it, which under
                // actix-web is one worker among several.
                .pool_max_idle_per_host(0)
                .build()
                .map_err(|e| configuration(format!("cannot create the HTTP client: {e}")))?,
        };
        let fetcher = HttpFetcher { client, timeout: self.http_timeout };
        let jwks_uri = discovery::jwks_uri(&fetcher, &self.issuer).await?;
        let mut algorithms = self.algorithms;
        algorithms.dedup();
        let keys = KeyCache::load(jwks_uri, fetcher, algorithms.clone(), self.min_refetch_interval).await?;
        Ok(Verifier {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                audiences: self.audiences,
                leeway_seconds: i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX),
                algorithms,
                realm: realm.into(),
                keys,
            }),
        })
    }
}

fn configuration(message: String) -> VerifyError {
    VerifyError::Configuration(message)
}
