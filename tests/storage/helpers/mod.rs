//! The contract suite's fixture: the `Storage` that `storage::connect` returns (migrations
//! applied) on a fresh database per test, and the values the stories store.
//!
//! Storage takes every time as an argument, so no clock is involved: the stories place
//! their events at `t(seconds)` around one fixed instant.

// Shared with the API suite, which uses all of it; this suite needs no scratch directory.
#[allow(dead_code)]
#[path = "../../api/helpers/test_database.rs"]
pub mod test_database;

pub use test_database::{Backend, TestDatabase};

use chrono::{DateTime, Duration, TimeZone, Utc};
use std::fmt::Debug;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use tessera::config::{DatabaseSettings, DatabaseUrl, Lifetime, Window};
use tessera::domain::authorization::{
    AuthorizationGrant, CodePresentation, PendingAuthorization, Prompt, Session, SessionId,
};
use tessera::domain::client::{AuthMethod, Client, ClientId, GrantType};
use tessera::domain::pkce::{CodeChallenge, CodeVerifier};
use tessera::domain::refresh::{FamilyId, Rotation, RotationRequest, TokenFamily};
use tessera::domain::scope::ScopeSet;
use tessera::domain::secret::SecretDigest;
use tessera::domain::signals::{Reason, Revocation};
use tessera::domain::user::{User, UserId, Username};
use tessera::storage::{self, Storage, TokenStanding};

/// How many calls the concurrency checks make at once: well past the pool size (8), so
/// calls queue for connections as well as race in the database.
pub const RACERS: usize = 32;

/// The store under test, on its own fresh database.
pub struct TestStorage {
    storage: Arc<dyn Storage>,
    pub backend: Backend,
}

impl TestStorage {
    /// The storage itself, shared: for code that keeps a handle on it.
    pub fn shared(&self) -> Arc<dyn Storage> {
        self.storage.clone()
    }
}

impl Deref for TestStorage {
    type Target = dyn Storage;
    fn deref(&self) -> &(dyn Storage + 'static) {
        &*self.storage
    }
}

/// Runs one story on a fresh `backend` database (`backend_tests!`).
pub async fn run(backend: Backend, test: impl AsyncFnOnce(&TestStorage)) {
    let Some(database) = TestDatabase::create(backend).await else { return };
    let url = DatabaseUrl::parse(database.url()).expect("test database URL");
    let settings = DatabaseSettings {
        max_connections: 8,
        acquire_timeout: Lifetime(std::time::Duration::from_secs(10)),
        sqlite_busy_timeout: Lifetime(std::time::Duration::from_secs(5)),
        client_cache_ttl: Window(std::time::Duration::ZERO),
        password: None,
        password_file: None,
    };
    let storage = storage::connect(&url, &settings).await.expect("the storage opens and migrates");
    test(&TestStorage { storage, backend }).await;
    database.drop_database().await;
}

/// `seconds` after the suite's fixed instant (whole seconds: both backends keep
/// microseconds, so every time reads back exactly).
pub fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap() + Duration::seconds(seconds)
}

/// Domain types do not implement `PartialEq`; their derived `Debug` shows every field.
#[track_caller]
pub fn assert_same<T: Debug>(found: &T, expected: &T) {
    assert_eq!(format!("{found:?}"), format!("{expected:?}"));
}

/// Runs `RACERS` calls at once and returns their results in order.
pub async fn race<F: Future>(calls: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    futures_util::future::join_all(calls).await
}

pub fn scope(raw: &str) -> ScopeSet {
    ScopeSet::parse(raw).unwrap()
}

/// A PKCE verifier (RFC 7636 Appendix B) and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub fn challenge(verifier: &str) -> String {
    CodeVerifier::parse(verifier).unwrap().s256_challenge()
}

/// A confidential client with every field set to something other than its default.
pub fn new_client(name: &str, created_at: DateTime<Utc>) -> Client {
    Client {
        id: ClientId::generate(),
        name: name.to_owned(),
        auth_method: AuthMethod::ClientSecretBasic,
        secret_digest: Some(SecretDigest::of(&format!("secret of {name}"))),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: scope("openid profile offline_access api"),
        audiences: vec!["https://api.example".to_owned()],
        served_audiences: vec!["https://served.example".to_owned()],
        may_introspect_any: true,
        redirect_uris: vec!["https://app.example/callback".to_owned(), "http://127.0.0.1:8080/cb".to_owned()],
        post_logout_redirect_uris: vec!["https://app.example/bye".to_owned()],
        is_first_party: true,
        always_issue_refresh_token: true,
        require_pushed_authorization_requests: false,
        keys: None,
        dpop_bound_access_tokens: true,
        backchannel_logout_uri: Some("https://app.example/backchannel-logout".to_owned()),
        backchannel_logout_session_required: false,
        // Registered explicitly, so the round trip covers the column (derived origins are
        // recomputed from the redirect URIs on read).
        web_origins: vec![tessera::domain::web_origin::WebOrigin::parse("https://spa.example", false).unwrap()],
        web_origins_explicit: true,
        first_party_spa: true,
        access_token_format: tessera::domain::access_token::AccessTokenFormat::Opaque,
        created_at,
        disabled_at: None,
    }
}

pub fn new_user(username: &str) -> User {
    User {
        id: UserId::generate(),
        username: Username::parse(username).unwrap(),
        email: Some(format!("{username}@example.org")),
        email_verified: true,
        name: Some(format!("{username} Example")),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$hash-of-{username}"),
        created_at: t(-3600),
        updated_at: t(-1800),
        disabled_at: None,
    }
}

/// A session of `user`, started at `t(0)`, ending at `expires_at`.
pub fn new_session(user: &User, expires_at: DateTime<Utc>) -> Session {
    Session {
        sid: SessionId::generate(),
        user_id: user.id.clone(),
        auth_time: t(0),
        created_at: t(0),
        last_seen_at: t(0),
        expires_at,
    }
}

/// A session id named in a test (storage takes any; sessions need not exist for it).
pub fn sid(raw: &str) -> SessionId {
    SessionId::parse(raw).unwrap()
}

/// A consent-stage request of `client`, created at `t(0)`.
pub fn new_pending(client: &Client, expires_at: DateTime<Utc>) -> PendingAuthorization {
    PendingAuthorization {
        client_id: client.id.clone(),
        redirect_uri: client.redirect_uris[0].clone(),
        scope: scope("openid api"),
        state: Some("af0ifjsldkj".to_owned()),
        nonce: Some("n-0S6_WzA2Mj".to_owned()),
        code_challenge: CodeChallenge::from_stored(challenge(VERIFIER)),
        login_hint: Some("alice".to_owned()),
        max_age: Some(600),
        prompt: Prompt { consent: true, ..Prompt::default() },
        csrf_digest: SecretDigest::of(&uuid::Uuid::new_v4().to_string()),
        created_at: t(0),
        expires_at,
    }
}

/// What a code issued at `t(0)` in `session` stands for; it expires at `t(600)`.
pub fn new_grant(client: &Client, session: &Session) -> AuthorizationGrant {
    AuthorizationGrant {
        client_id: client.id.clone(),
        user_id: session.user_id.clone(),
        sid: session.sid.clone(),
        redirect_uri: client.redirect_uris[0].clone(),
        scope: scope("openid offline_access api"),
        nonce: Some("n-0S6_WzA2Mj".to_owned()),
        code_challenge: CodeChallenge::from_stored(challenge(VERIFIER)),
        auth_time: t(0),
        created_at: t(0),
        expires_at: t(600),
    }
}

/// The owner's own presentation of a code at `t(10)`, issuing a new access token.
pub fn presentation_of(grant: &AuthorizationGrant) -> CodePresentation {
    CodePresentation {
        client_id: grant.client_id.clone(),
        redirect_uri: grant.redirect_uri.clone(),
        code_challenge: challenge(VERIFIER),
        access_token_jti: uuid::Uuid::new_v4().to_string(),
        access_token_expires_at: t(310),
        now: t(10),
    }
}

/// A family created at `t(0)` in `session`, living until `t(86_400)`.
pub fn new_family(client: &Client, session: &Session) -> TokenFamily {
    TokenFamily {
        id: FamilyId::generate(),
        client_id: client.id.clone(),
        user_id: session.user_id.clone(),
        sid: session.sid.clone(),
        scope: scope("openid offline_access api"),
        auth_time: t(0),
        created_at: t(0),
        last_used_at: t(0),
        absolute_expires_at: t(86_400),
        revoked_at: None,
        dpop_jkt: None,
    }
}

/// A fresh refresh token (as issued) and its digest (as stored).
pub fn new_token() -> (String, SecretDigest) {
    let token = format!("trt_{}", uuid::Uuid::new_v4().simple());
    let digest = SecretDigest::of(&token);
    (token, digest)
}

/// One presentation of a refresh token, owning what a `RotationRequest` borrows.
pub struct Refresh {
    pub presented: SecretDigest,
    pub client_id: ClientId,
    pub now: DateTime<Utc>,
    /// The successor this presentation would issue, and its sealed copy.
    pub successor: String,
    pub sealed: Vec<u8>,
    pub idle_ttl: Duration,
    pub retry_window: Duration,
    pub scope: Option<ScopeSet>,
    /// What revoking the family on reuse records.
    pub reuse: Revocation,
    /// The thumbprint of the request's DPoP proof key, if it had one.
    pub dpop_jkt: Option<String>,
}

impl Refresh {
    /// `client` presents `token` at `now`: idle lifetime one hour, retry window ten seconds.
    pub fn of(token: &SecretDigest, client: &ClientId, now: DateTime<Utc>) -> Self {
        let (successor, _) = new_token();
        Self {
            presented: token.clone(),
            client_id: client.clone(),
            now,
            sealed: format!("sealed {successor}").into_bytes(),
            successor,
            idle_ttl: Duration::hours(1),
            retry_window: Duration::seconds(10),
            scope: None,
            reuse: revoke(Reason::RefreshTokenReused, now),
            dpop_jkt: None,
        }
    }

    pub fn successor_digest(&self) -> SecretDigest {
        SecretDigest::of(&self.successor)
    }

    pub fn request(&self) -> RotationRequest<'_> {
        RotationRequest {
            presented: &self.presented,
            client_id: &self.client_id,
            now: self.now,
            successor: &self.successor,
            successor_sealed: &self.sealed,
            idle_ttl: self.idle_ttl,
            retry_window: self.retry_window,
            requested_scope: self.scope.as_ref(),
            reuse: &self.reuse,
            dpop_jkt: self.dpop_jkt.as_deref(),
        }
    }
}

/// A rotation's outcome, by name, for assertions over many.
pub fn outcome(rotation: &Rotation) -> &'static str {
    match rotation {
        Rotation::Rotated(_) => "rotated",
        Rotation::Retried { .. } => "retried",
        Rotation::Reused(_) => "reused",
        Rotation::Invalid => "invalid",
        Rotation::ScopeExceeded => "scope exceeded",
        Rotation::WrongDpopKey => "wrong DPoP key",
    }
}

impl TestStorage {
    pub async fn rotate(&self, refresh: &Refresh) -> Rotation {
        self.rotate_refresh_token(&refresh.request()).await.expect("a rotation never fails with an error")
    }

    /// A stored client, created at `t(0)`.
    pub async fn a_client(&self) -> Client {
        let client = new_client("app", t(0));
        self.insert_client(&client).await.unwrap();
        client
    }

    /// Whether a client's own access token `jti` of `client` stands: the revocation list as
    /// introspection reads it.
    pub async fn jti_stands(&self, jti: &str, client: &Client) -> bool {
        let token = TokenStanding { jti, family: None, client: &client.id, user: None, sid: None };
        self.access_token_standing(&token).await.unwrap()
    }

    /// A stored, enabled user.
    pub async fn a_user(&self, username: &str) -> User {
        let user = new_user(username);
        self.insert_user(&user).await.unwrap();
        user
    }

    /// A stored session of `user` ending at `t(3600)`, and the digest of its cookie id.
    pub async fn a_session(&self, user: &User) -> (SecretDigest, Session) {
        let id = SecretDigest::of(&uuid::Uuid::new_v4().to_string());
        let session = new_session(user, t(3600));
        assert!(self.insert_session(&id, &session, &user.password_hash).await.unwrap());
        (id, session)
    }

    /// A stored code for `client` in `session`, and what it stands for.
    pub async fn a_code(&self, client: &Client, session: &Session) -> (SecretDigest, AuthorizationGrant) {
        let code = SecretDigest::of(&uuid::Uuid::new_v4().to_string());
        let grant = new_grant(client, session);
        self.insert_code(&code, &grant).await.unwrap();
        (code, grant)
    }

    /// A stored family in `session` with its first token, idle until `t(3600)`.
    pub async fn a_family(&self, client: &Client, session: &Session) -> (TokenFamily, SecretDigest) {
        let family = new_family(client, session);
        let (_, token) = new_token();
        self.create_family(&family, &token, t(3600)).await.unwrap();
        (family, token)
    }
}

/// A revocation at `at` for `why` that records no events (the transmitter off); the
/// `revocations` stories record them.
pub fn revoke(why: Reason, at: DateTime<Utc>) -> Revocation {
    Revocation::new(why, at, None)
}
