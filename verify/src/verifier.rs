//! The verifier of a resource server: an [`AccessTokenPolicy`], the issuer's keys (fetched
//! and kept current, or given once), and a clock.

use crate::clock::{Clock, SystemClock};
use crate::dpop::{DpopError, ProofPolicy, ProofRequest};
use crate::jws::{HeaderBuffer, HEADER_BUFFER_LEN};
#[cfg(feature = "fetch")]
use crate::key_cache::KeyCache;
use crate::policy::{AccessTokenPolicy, MAX_LEEWAY};
use crate::replay::{ReplayCache, ReplayError};
use crate::{Algorithm, BuildError, Claims, DpopRequestError, KeySet, VerifyError};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
#[cfg(feature = "fetch")]
const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
#[cfg(feature = "fetch")]
const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Proofs remembered at most: 32 bytes of hash each, plus the heap entry; about 6 MB.
const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// Verifies the JWT access tokens (RFC 9068) of one issuer for one resource server.
///
/// Cheap to clone (an `Arc` inside); build one per process and share it. Verification
/// needs no network while the cached JWK Set is fresh and knows the token's `kid`.
///
/// ```no_run
/// # #[cfg(feature = "fetch")]
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
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
    policy: AccessTokenPolicy,
    realm: Arc<str>,
    keys: Keys,
    clock: Arc<dyn Clock>,
    /// The revocation feed and its deny set; its task stops when this is dropped.
    #[cfg(feature = "revocations")]
    revocations: Option<crate::revocation::Handle>,
    dpop: Option<Dpop>,
    /// Opaque access tokens, when configured.
    #[cfg(feature = "fetch")]
    introspector: Option<crate::introspection::Introspector>,
}

/// What checking DPoP-bound tokens needs (RFC 9449 §7).
struct Dpop {
    /// The URL clients reach the service at, without a trailing slash in its path.
    public_base_url: Url,
    policy: ProofPolicy,
    replay: ReplayCache,
    /// `algs` of the `WWW-Authenticate: DPoP` challenge, e.g. `ES256 RS256 EdDSA`.
    #[cfg_attr(not(feature = "actix"), allow(dead_code))]
    algs: Arc<str>,
}

/// Where the keys come from.
enum Keys {
    /// Given once, to [`VerifierBuilder::build_from_jwks`].
    Fixed(KeySet),
    /// Fetched through discovery and kept current.
    #[cfg(feature = "fetch")]
    Fetched(Arc<KeyCache>),
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
            clock: Arc::new(SystemClock),
            realm: None,
            #[cfg(feature = "fetch")]
            min_refetch_interval: DEFAULT_MIN_REFETCH_INTERVAL,
            #[cfg(feature = "fetch")]
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            #[cfg(feature = "fetch")]
            http_client: None,
            #[cfg(feature = "revocations")]
            revocations: None,
            dpop: None,
            #[cfg(feature = "fetch")]
            introspection: None,
        }
    }

    /// Verifies `token` (the JWS compact serialisation, without `Bearer `) and returns
    /// its claims: the checks of [`AccessTokenPolicy`], with the time from the verifier's
    /// [`Clock`].
    ///
    /// An unknown `kid` makes a verifier built by `build` (the `fetch` feature) refetch
    /// the JWK Set (rate-limited); [`VerifyError::KeysUnavailable`] when that fails.
    /// Nothing in the payload is looked at before the signature has verified.
    ///
    /// With a revocation feed (the `revocations` feature), a token that passed every check
    /// is then looked up in the deny set: [`VerifyError::Revoked`] when the issuer revoked
    /// it, and [`VerifyError::RevocationsUnavailable`] while the feed is lost for longer
    /// than allowed and the verifier fails closed.
    ///
    /// This is the check of a bearer token (RFC 6750): a token bound to a key (`cnf`, a
    /// DPoP-bound token for instance) is refused with [`VerifyError::SenderConstrained`]
    /// (RFC 9449 §7.1); [`verify_dpop`](Self::verify_dpop) checks those.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let claims = self.verify_any(token).await?;
        if claims.cnf.is_some() {
            return Err(VerifyError::SenderConstrained);
        }
        Ok(claims)
    }

    /// Verifies a DPoP-bound access token presented as `Authorization: DPoP <token>` with
    /// `proof` (the one `DPoP` header, see [`single_proof`](crate::dpop::single_proof)) in a request with
    /// `method` to `path` (RFC 9449 §7.1), and returns its claims.
    ///
    /// The token is checked as by [`verify`](Self::verify), and must carry `cnf.jkt`
    /// ([`VerifyError::NotSenderConstrained`] otherwise). Then the proof: the checks of
    /// [`ProofPolicy::verify`] with `htm` = `method`, `htu` = the public base URL given to
    /// [`VerifierBuilder::dpop`] followed by `path` (its query is ignored), `ath` = the
    /// token's hash; its key's thumbprint must be `cnf.jkt`; and its `jti` must not have
    /// been accepted before within the proof window (an in-memory cache per `Verifier`,
    /// shared by its clones). Server nonces (§9) are not used.
    pub async fn verify_dpop(
        &self,
        token: &str,
        proof: Option<&str>,
        method: &str,
        path: &str,
    ) -> Result<Claims, DpopRequestError> {
        let dpop = self.inner.dpop.as_ref().ok_or(DpopRequestError::NotEnabled)?;
        let claims = self.verify_any(token).await.map_err(DpopRequestError::Token)?;
        let jkt = claims.dpop_jkt().ok_or(DpopRequestError::Token(VerifyError::NotSenderConstrained))?;
        let proof = proof.ok_or(DpopRequestError::Proof(DpopError::Missing))?;
        let url = dpop.request_url(path);
        let now = self.inner.clock.now();
        let proof = dpop
            .policy
            .verify(proof, &ProofRequest::new(method, &url, now).access_token(token))
            .map_err(DpopRequestError::Proof)?;
        if proof.jkt != jkt {
            return Err(DpopRequestError::Proof(DpopError::WrongKey));
        }
        // Last, so that only proofs that passed every check take room in the cache.
        dpop.replay.first_use(&proof, &dpop.policy, now).map_err(|error| match error {
            // A key over its share of the cache is refused like a replay: its holder, not
            // every client, waits until its older proofs age out.
            ReplayError::Replayed | ReplayError::KeyOverShare => DpopRequestError::Proof(DpopError::Replayed),
            ReplayError::Full => {
                tracing::warn!("the DPoP replay cache is full; refusing DPoP requests until proofs expire");
                DpopRequestError::Token(VerifyError::ReplayCacheFull)
            }
        })?;
        Ok(claims)
    }

    /// Whether [`verify_dpop`](Self::verify_dpop) is enabled.
    pub fn accepts_dpop(&self) -> bool {
        self.inner.dpop.is_some()
    }

    /// The `algs` of the `WWW-Authenticate: DPoP` challenge, when DPoP is enabled.
    #[cfg(feature = "actix")]
    pub(crate) fn dpop_algs(&self) -> Option<Arc<str>> {
        self.inner.dpop.as_ref().map(|dpop| Arc::clone(&dpop.algs))
    }

    /// The token checks, whatever the token is bound to.
    async fn verify_any(&self, token: &str) -> Result<Claims, VerifyError> {
        let claims = self.authentic_claims(token).await?;
        #[cfg(feature = "revocations")]
        if let Some(revocations) = &self.inner.revocations {
            revocations.shared.check(&claims)?;
        }
        Ok(claims)
    }

    /// The claims of `token` once the issuer vouches for them (its signature, or its
    /// introspection endpoint), checked against issuer, audience and time.
    async fn authentic_claims(&self, token: &str) -> Result<Claims, VerifyError> {
        let inner = &*self.inner;
        // An opaque token would fail as a JWS anyway (no dots): without introspection it is
        // refused as `Malformed`, as before.
        #[cfg(feature = "fetch")]
        if let Some(introspector) = &inner.introspector {
            if crate::introspection::is_opaque_token(token) {
                return introspector.verify(token, &inner.policy, &*inner.clock).await;
            }
        }
        let mut buffer: HeaderBuffer = [0; HEADER_BUFFER_LEN];
        let token = inner.policy.open(token, &mut buffer)?;
        let claims = match &inner.keys {
            Keys::Fixed(keys) => inner.policy.finish(&token, keys, inner.clock.now())?,
            #[cfg(feature = "fetch")]
            Keys::Fetched(cache) => {
                let keys = cache.keys_for(token.kid()).await?;
                inner.policy.finish(&token, &keys, inner.clock.now())?
            }
        };
        Ok(claims)
    }

    /// The state of the revocation feed, for a health endpoint; `None` for a verifier
    /// without one.
    #[cfg(feature = "revocations")]
    #[cfg_attr(docsrs, doc(cfg(feature = "revocations")))]
    pub fn revocation_status(&self) -> Option<crate::RevocationStatus> {
        self.inner.revocations.as_ref().map(|revocations| revocations.shared.status())
    }

    /// Stops the revocation feed and deletes its stream at the transmitter (SSF §8.1.1.5),
    /// so that it does not count against the receiver's streams until the transmitter's
    /// `inactivity_timeout`. Call it on graceful shutdown. Afterwards the feed is
    /// [`Stopped`](crate::FeedState::Stopped): a verifier that fails closed refuses every
    /// token once [`max_silence`](crate::Revocations::max_silence) has passed. Does
    /// nothing for a verifier without a feed, or a second time.
    #[cfg(feature = "revocations")]
    #[cfg_attr(docsrs, doc(cfg(feature = "revocations")))]
    pub async fn shutdown_revocations(&self) -> Result<(), crate::RevocationError> {
        match &self.inner.revocations {
            Some(revocations) => revocations.shutdown().await,
            None => Ok(()),
        }
    }

    /// For `test_util::fill_deny_set`: `count` synthetic entries, spread over the five
    /// tables, expiring with the feed's retention. Returns how many were added.
    #[cfg(all(feature = "revocations", feature = "test-util"))]
    pub(crate) fn fill_deny_set(&self, count: usize) -> Option<usize> {
        self.inner.revocations.as_ref().map(|revocations| revocations.shared.fill_for_tests(count))
    }

    /// The issuer identifier tokens must carry in `iss`.
    pub fn issuer(&self) -> &str {
        self.inner.policy.issuer()
    }

    /// The audiences accepted in `aud`.
    pub fn audiences(&self) -> &[String] {
        // The builder always gives the policy a list.
        self.inner.policy.audiences().unwrap_or_default()
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

    /// The `kid`s of the keys currently known, sorted: for health and debug endpoints.
    pub fn key_ids(&self) -> Vec<String> {
        match &self.inner.keys {
            Keys::Fixed(keys) => keys.key_ids().into_iter().map(str::to_owned).collect(),
            #[cfg(feature = "fetch")]
            Keys::Fetched(cache) => cache.key_ids(),
        }
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Verifier");
        debug
            .field("issuer", &self.issuer())
            .field("audiences", &self.audiences())
            .field("algorithms", &self.inner.policy.allowed_algorithms());
        #[cfg(feature = "fetch")]
        debug.field("introspection_endpoint", &self.inner.introspector.as_ref().map(|i| i.endpoint().as_str()));
        debug.finish_non_exhaustive()
    }
}

/// Configures a [`Verifier`]; created by [`Verifier::builder`].
#[must_use = "call `build().await` or `build_from_jwks(..)` to get a Verifier"]
pub struct VerifierBuilder {
    issuer: String,
    audiences: Vec<String>,
    leeway: Duration,
    algorithms: Vec<Algorithm>,
    clock: Arc<dyn Clock>,
    realm: Option<String>,
    #[cfg(feature = "fetch")]
    min_refetch_interval: Duration,
    #[cfg(feature = "fetch")]
    http_timeout: Duration,
    #[cfg(feature = "fetch")]
    http_client: Option<reqwest::Client>,
    #[cfg(feature = "revocations")]
    revocations: Option<crate::Revocations>,
    dpop: Option<DpopSettings>,
    #[cfg(feature = "fetch")]
    introspection: Option<crate::Introspection>,
}

/// How [`VerifierBuilder::dpop`] configured DPoP.
#[derive(Clone, Debug)]
struct DpopSettings {
    public_base_url: String,
    policy: ProofPolicy,
    replay_capacity: usize,
}

impl Dpop {
    /// `htu` of a request to `path`: the public base URL's path, then `path`.
    fn request_url(&self, path: &str) -> Url {
        let mut url = self.public_base_url.clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        let path = path.split(['?', '#']).next().unwrap_or_default();
        url.set_path(&format!("{base_path}/{}", path.trim_start_matches('/')));
        url
    }
}

impl VerifierBuilder {
    /// Accepts DPoP-bound access tokens (RFC 9449 §7) in
    /// [`Verifier::verify_dpop`] and the actix-web extractor, for a service that clients
    /// reach at `public_base_url` (`https://api.example.com`, or with a path prefix,
    /// `https://example.com/api`).
    ///
    /// A proof's `htu` must be that URL followed by the request's path. It is configured
    /// rather than read from the request because behind a reverse proxy or load balancer
    /// the `Host` header, scheme and port the service sees are not the ones the client
    /// signed. Proofs are accepted from ES256, RS256 and EdDSA keys, issued within the
    /// last 60 seconds (5 seconds ahead for clock skew), each once: see
    /// [`dpop_proof_policy`](Self::dpop_proof_policy) and
    /// [`dpop_replay_capacity`](Self::dpop_replay_capacity).
    pub fn dpop(mut self, public_base_url: impl Into<String>) -> Self {
        self.dpop = Some(DpopSettings {
            public_base_url: public_base_url.into(),
            policy: ProofPolicy::new(),
            replay_capacity: DEFAULT_REPLAY_CAPACITY,
        });
        self
    }

    /// The algorithms and `iat` window of DPoP proofs; only after [`dpop`](Self::dpop).
    pub fn dpop_proof_policy(mut self, policy: ProofPolicy) -> Self {
        if let Some(dpop) = &mut self.dpop {
            dpop.policy = policy;
        }
        self
    }

    /// How many accepted proofs the replay cache remembers at most (100 000 unless set);
    /// only after [`dpop`](Self::dpop). Proofs are forgotten when their window passes;
    /// while the cache is full, DPoP requests are refused with
    /// [`VerifyError::ReplayCacheFull`] (503) rather than risk accepting a replay.
    pub fn dpop_replay_capacity(mut self, capacity: usize) -> Self {
        if let Some(dpop) = &mut self.dpop {
            dpop.replay_capacity = capacity;
        }
        self
    }

    /// The DPoP part of the verifier, checked.
    fn dpop_state(&self) -> Result<Option<Dpop>, BuildError> {
        let Some(settings) = &self.dpop else { return Ok(None) };
        let url = Url::parse(&settings.public_base_url)
            .map_err(|_| BuildError::Configuration("the DPoP public base URL is not a URL"))?;
        if !matches!(url.scheme(), "https" | "http") || url.query().is_some() || url.fragment().is_some() {
            return Err(BuildError::Configuration(
                "the DPoP public base URL must be http(s) without query or fragment",
            ));
        }
        if settings.policy.allowed_algorithms().is_empty() || settings.replay_capacity == 0 {
            return Err(BuildError::Configuration("DPoP needs at least one algorithm and a replay capacity"));
        }
        let algs = settings.policy.allowed_algorithms().iter().map(|alg| alg.name()).collect::<Vec<_>>().join(" ");
        Ok(Some(Dpop {
            public_base_url: url,
            policy: settings.policy.clone(),
            replay: ReplayCache::new(settings.replay_capacity),
            algs: algs.into(),
        }))
    }

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

    /// The clock tokens' times are checked against: [`SystemClock`] unless set. Tests
    /// and offline tools can pass a closure, `|| some_system_time`.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The `realm` of the RFC 6750 §3 challenge; the first audience unless set.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// The least time between two JWK Set fetches caused by unknown `kid`s (and the
    /// back-off after a failed fetch): 30 seconds unless set. However many tokens with
    /// unknown `kid`s arrive, the issuer sees at most one request per interval.
    #[cfg(feature = "fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch_interval = interval;
        self
    }

    /// Timeout of each request to the issuer: 10 seconds unless set.
    #[cfg(feature = "fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// The HTTP client to fetch discovery and the JWK Set with, for custom TLS roots or
    /// proxies. The [`http_timeout`](Self::http_timeout) still applies per request.
    #[cfg(feature = "fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Makes the verifier a receiver of the issuer's revocations, through OpenID Shared
    /// Signals with poll delivery: [`Revocations`](crate::Revocations) says with which
    /// client and how. `build` then sets the feed up (and fails if it cannot), and
    /// [`Verifier::verify`] refuses revoked tokens with [`VerifyError::Revoked`].
    #[cfg(feature = "revocations")]
    #[cfg_attr(docsrs, doc(cfg(feature = "revocations")))]
    pub fn revocations(mut self, revocations: crate::Revocations) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Verifies Tessera's opaque access tokens (`tat_` and 43 base64url characters) through
    /// the issuer's token introspection endpoint (RFC 7662), with a short cache: see
    /// [`Introspection`](crate::Introspection). [`Verifier::verify`], [`Verifier::verify_dpop`]
    /// and the actix-web extractor then take both kinds of token; a JWT is still verified
    /// locally, and nothing else is ever sent to the endpoint. Only `build` can use it:
    /// `build_from_jwks` refuses it, having no network.
    #[cfg(feature = "fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
    pub fn introspection(mut self, introspection: crate::Introspection) -> Self {
        self.introspection = Some(introspection);
        self
    }

    /// Checks the settings, reads the issuer's discovery document (OpenID Connect
    /// Discovery 1.0 §4), and fetches its JWK Set. Fails when either is unreachable or
    /// invalid, so a misconfigured service stops at startup rather than refusing every
    /// request.
    ///
    /// With `revocations`, it also reads the issuer's Shared Signals
    /// metadata, creates (or reuses) the stream, polls it once, and starts the feed's task
    /// on the current Tokio runtime.
    #[cfg(feature = "fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
    pub async fn build(self) -> Result<Verifier, BuildError> {
        use crate::discovery;
        use crate::http::HttpFetcher;

        let (policy, realm) = self.policy_and_realm()?;
        let dpop = self.dpop_state()?;
        if self.min_refetch_interval.is_zero() || self.http_timeout.is_zero() {
            return Err(BuildError::Configuration("the refetch interval and HTTP timeout must be positive"));
        }
        let user_agent = concat!("tessera-verify/", env!("CARGO_PKG_VERSION"));
        let client = match &self.http_client {
            Some(client) => client.clone(),
            None => reqwest::Client::builder()
                .user_agent(user_agent)
                // Fetches are minutes apart, so pooling saves little; and a pooled
                // connection belongs to the runtime that opened it, which under
                // actix-web is one worker among several.
                .pool_max_idle_per_host(0)
                .build()
                .map_err(BuildError::HttpClient)?,
        };
        let fetcher = HttpFetcher { client, timeout: self.http_timeout };
        let provider = discovery::discover(&fetcher, policy.issuer()).await?;
        let introspector = match self.introspection {
            None => None,
            Some(settings) => {
                // The request carries a bearer credential in its body and ours in a header:
                // it must go to the endpoint and nowhere else, so never follow a redirect
                // (reqwest would re-send the body of a 307/308 to any host). A caller's own
                // client is used as given (README: disable redirects on it).
                let client = match &self.http_client {
                    Some(client) => client.clone(),
                    None => reqwest::Client::builder()
                        .user_agent(user_agent)
                        .pool_max_idle_per_host(0)
                        .redirect(reqwest::redirect::Policy::none())
                        .build()
                        .map_err(BuildError::HttpClient)?,
                };
                let issuer_is_https = policy.issuer().starts_with("https://");
                Some(crate::introspection::Introspector::new(
                    settings,
                    provider.introspection_endpoint.as_deref(),
                    client,
                    self.http_timeout,
                    issuer_is_https,
                )?)
            }
        };
        #[allow(unused_mut)]
        let mut algorithms = policy.allowed_algorithms().to_vec();
        // SETs are RS256 (the CAEP interoperability profile §2.6), whatever access tokens
        // are allowed: the key cache keeps RS256 keys, the access-token policy still
        // refuses RS256 tokens unless allowed.
        #[cfg(feature = "revocations")]
        if self.revocations.is_some() && !algorithms.contains(&Algorithm::RS256) {
            algorithms.push(Algorithm::RS256);
        }
        let cache = KeyCache::load(provider.jwks_uri.clone(), fetcher, algorithms, self.min_refetch_interval)
            .await
            .map_err(BuildError::KeySetUnavailable)?;
        #[cfg(feature = "revocations")]
        let revocations = match self.revocations {
            None => None,
            Some(config) => {
                // The feed's own requests come one after another from one task, on one
                // runtime: a pooled connection saves a handshake per poll.
                let client = match self.http_client {
                    Some(client) => client,
                    None => {
                        reqwest::Client::builder().user_agent(user_agent).build().map_err(BuildError::HttpClient)?
                    }
                };
                let context = crate::revocation::FeedContext {
                    client,
                    http_timeout: self.http_timeout,
                    issuer: policy.issuer(),
                    audience: &self.audiences[0],
                    provider: &provider,
                    keys: Arc::clone(&cache),
                    clock: Arc::clone(&self.clock),
                    leeway: self.leeway,
                    min_refetch_interval: self.min_refetch_interval,
                };
                Some(crate::revocation::start(config, context).await?)
            }
        };
        Ok(Verifier {
            inner: Arc::new(Inner {
                policy,
                realm,
                keys: Keys::Fetched(cache),
                clock: self.clock,
                #[cfg(feature = "revocations")]
                revocations,
                dpop,
                introspector,
            }),
        })
    }

    /// Checks the settings and builds a verifier that uses the keys of `jwks`, a JWK Set
    /// document (RFC 7517 §5), and never touches the network: for offline use, for tests,
    /// and for issuers whose keys are distributed some other way. A token whose `kid` is
    /// not in the set is refused with [`VerifyError::UnknownKey`].
    ///
    /// ```
    /// # fn run(jwks_json: &[u8]) -> Result<(), tessera_verify::BuildError> {
    /// let verifier = tessera_verify::Verifier::builder("https://id.example.com")
    ///     .audience("https://api.example.com")
    ///     .build_from_jwks(jwks_json)?;
    /// # Ok(()) }
    /// ```
    pub fn build_from_jwks(self, jwks: &[u8]) -> Result<Verifier, BuildError> {
        let (policy, realm) = self.policy_and_realm()?;
        let dpop = self.dpop_state()?;
        #[cfg(feature = "revocations")]
        if self.revocations.is_some() {
            return Err(BuildError::Configuration("a revocation feed needs the network: use build()"));
        }
        #[cfg(feature = "fetch")]
        if self.introspection.is_some() {
            return Err(BuildError::Configuration("introspection needs the network: use build()"));
        }
        let keys = KeySet::from_jwks_for(jwks, policy.allowed_algorithms())?;
        // Nothing will ever add a key to this set.
        if keys.is_empty() {
            return Err(BuildError::Configuration("the JWK Set has no key usable with the allowed algorithms"));
        }
        Ok(Verifier {
            inner: Arc::new(Inner {
                policy,
                realm,
                keys: Keys::Fixed(keys),
                clock: self.clock,
                #[cfg(feature = "revocations")]
                revocations: None,
                dpop,
                #[cfg(feature = "fetch")]
                introspector: None,
            }),
        })
    }

    /// The checks every verifier needs, and the policy and realm they give.
    fn policy_and_realm(&self) -> Result<(AccessTokenPolicy, Arc<str>), BuildError> {
        let issuer = &self.issuer;
        let url = Url::parse(issuer).map_err(|source| BuildError::IssuerNotUrl { issuer: issuer.clone(), source })?;
        if !matches!(url.scheme(), "https" | "http") || url.query().is_some() || url.fragment().is_some() {
            return Err(BuildError::InvalidIssuer { issuer: issuer.clone() });
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(BuildError::Configuration("at least one non-empty audience is required"));
        }
        if self.algorithms.is_empty() {
            return Err(BuildError::Configuration("at least one algorithm must be allowed"));
        }
        if self.leeway > MAX_LEEWAY {
            return Err(BuildError::Configuration("the leeway may be at most five minutes"));
        }
        let realm = self.realm.as_deref().unwrap_or(&self.audiences[0]);
        // It goes into a quoted-string of the WWW-Authenticate header.
        if !realm.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)) {
            return Err(BuildError::Configuration("the realm may only hold printable ASCII without `\"` and `\\`"));
        }
        let policy = AccessTokenPolicy::new(issuer.clone(), self.audiences.iter().cloned())
            .leeway(self.leeway)
            .algorithms(self.algorithms.iter().copied());
        Ok((policy, realm.into()))
    }
}

impl fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("VerifierBuilder");
        debug
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("leeway", &self.leeway)
            .field("algorithms", &self.algorithms)
            .field("realm", &self.realm);
        #[cfg(feature = "fetch")]
        debug.field("min_refetch_interval", &self.min_refetch_interval).field("http_timeout", &self.http_timeout);
        #[cfg(feature = "revocations")]
        debug.field("revocations", &self.revocations);
        debug.field("dpop", &self.dpop);
        #[cfg(feature = "fetch")]
        debug.field("introspection", &self.introspection);
        debug.finish_non_exhaustive()
    }
}
