//! The authorization code flow's state: the pending request while the user logs in and
//! consents, the SSO session, and the code (RFC 6749 §4.1; OpenID Connect Core §3.1).

use super::client::ClientId;
use super::pkce::CodeChallenge;
use super::scope::ScopeSet;
use super::secret::SecretDigest;
use super::user::UserId;
use super::InvalidParameter;
use chrono::{DateTime, Utc};
use std::fmt;

/// OpenID Connect Core §3.1.2.1 `prompt`: a space-separated set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

impl Prompt {
    pub fn parse(raw: Option<&str>) -> Result<Self, InvalidParameter> {
        let mut prompt = Self::default();
        for value in raw.unwrap_or_default().split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                "select_account" => prompt.select_account = true,
                other => return Err(InvalidParameter::new("prompt", format!("`{other}` is not a prompt value"))),
            }
        }
        // §3.1.2.1: "If this parameter contains none with any other value, an error is returned."
        if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
            return Err(InvalidParameter::new("prompt", "none cannot be combined with other values"));
        }
        Ok(prompt)
    }

    pub fn to_param(self) -> String {
        let values = [
            (self.none, "none"),
            (self.login, "login"),
            (self.consent, "consent"),
            (self.select_account, "select_account"),
        ];
        values.iter().filter(|(on, _)| *on).map(|(_, v)| *v).collect::<Vec<_>>().join(" ")
    }
}

/// A validated authorization request waiting for login and consent.
#[derive(Clone, Debug)]
pub struct PendingAuthorization {
    pub client_id: ClientId,
    pub redirect_uri: String,
    pub scope: ScopeSet,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: CodeChallenge,
    pub login_hint: Option<String>,
    pub max_age: Option<i64>,
    pub prompt: Prompt,
    /// Digest of the CSRF token of its forms (also held in the browser's cookie).
    pub csrf_digest: SecretDigest,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The public identifier of an SSO session: the `sid` claim (OpenID Connect Front-Channel
/// Logout 1.0 §3, Back-Channel Logout 1.0 §2.4). Not the secret in the browser's cookie,
/// which storage only holds as a digest. Tessera generates simple (unhyphenated) v4 UUIDs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// An id presented from outside (a CLI argument, a token's `sid`).
    pub fn parse(raw: &str) -> Result<Self, InvalidParameter> {
        super::parse_identifier("sid", raw).map(Self)
    }

    /// Wraps an id read back from storage.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A browser's SSO session. The cookie holds a random id; storage holds its digest.
#[derive(Clone, Debug)]
pub struct Session {
    /// Public identifier, the `sid` claim.
    pub sid: SessionId,
    pub user_id: UserId,
    pub auth_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// Absolute end of the session.
    pub expires_at: DateTime<Utc>,
}

/// What an authorization code stands for (RFC 6749 §4.1.2).
#[derive(Clone, Debug)]
pub struct AuthorizationGrant {
    pub client_id: ClientId,
    pub user_id: UserId,
    pub sid: SessionId,
    pub redirect_uri: String,
    pub scope: ScopeSet,
    pub nonce: Option<String>,
    pub code_challenge: CodeChallenge,
    pub auth_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What a client presented at the token endpoint for a code (RFC 6749 §4.1.3, RFC 7636
/// §4.5), with what the exchange will issue, so that the statement that marks the code
/// used also records the access token's `jti`: a replay racing the first redemption then
/// always finds something to revoke (§4.1.2).
#[derive(Clone, Debug)]
pub struct CodePresentation {
    pub client_id: ClientId,
    pub redirect_uri: String,
    /// S256 of the presented `code_verifier`, compared with the stored challenge.
    pub code_challenge: String,
    pub access_token_jti: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// A code as stored, read back when the redeeming statement matched nothing, to tell why.
#[derive(Clone, Debug)]
pub struct StoredCode {
    pub grant: AuthorizationGrant,
    pub used_at: Option<DateTime<Utc>>,
    /// The SSO session it came from still exists.
    pub is_session_alive: bool,
    /// Its user is enabled and has not changed credentials since the code was issued.
    pub is_user_unchanged: bool,
}

/// The outcome of presenting a code.
#[derive(Debug)]
pub enum CodeRedemption {
    /// First use by its client, with its redirect URI and verifier, while its session and
    /// user are as they were: the grant it stands for. The code is now used.
    Redeemed(AuthorizationGrant),
    /// Used before. RFC 6749 §4.1.2: deny, and revoke what it issued — which the caller
    /// does only when the presentation is the owner's own (see `is_owners`), reading what
    /// to revoke from `RevocationStore::revoke_replayed_code`, which is ordered against the
    /// family's creation.
    Replayed {
        owner: ClientId,
        /// The presentation came from the code's client with its verifier and redirect URI:
        /// the legitimate client (or someone holding everything it holds) sees its code
        /// used by another. A foreign client's replay proves nothing and revokes nothing,
        /// or anyone holding a leaked used code could end the owner's grant.
        is_owners: bool,
    },
    /// Issued to another client (unchanged: the owner can still redeem it).
    WrongClient,
    /// `redirect_uri` differs from the authorization request's (§4.1.3); unchanged.
    WrongRedirectUri,
    /// The verifier does not hash to the challenge (RFC 7636 §4.6); unchanged.
    WrongVerifier,
    /// The session it came from ended (logout, revocation, expiry) or the user was
    /// disabled or changed their password after it was issued.
    SessionEnded,
    /// Unknown or expired.
    Invalid,
}

impl CodeRedemption {
    /// Why a code that the redeeming statement did not take was refused. Pure: the order
    /// of the checks is the policy (a used code is a replay whoever presents it).
    pub fn refused(stored: Option<StoredCode>, presented: &CodePresentation) -> Self {
        let Some(code) = stored else { return Self::Invalid };
        if code.used_at.is_some() {
            let grant = &code.grant;
            let is_owners = grant.client_id == presented.client_id
                && grant.redirect_uri == presented.redirect_uri
                && grant.code_challenge.as_str() == presented.code_challenge;
            return Self::Replayed { owner: grant.client_id.clone(), is_owners };
        }
        if code.grant.expires_at <= presented.now {
            Self::Invalid
        } else if code.grant.client_id != presented.client_id {
            Self::WrongClient
        } else if code.grant.redirect_uri != presented.redirect_uri {
            Self::WrongRedirectUri
        } else if code.grant.code_challenge.as_str() != presented.code_challenge {
            Self::WrongVerifier
        } else if !code.is_session_alive || !code.is_user_unchanged {
            Self::SessionEnded
        } else {
            // Everything matches, yet the statement took nothing: it was taken in between.
            Self::Invalid
        }
    }
}

/// What a login attempt is counted against: one account, or one client IP (which may
/// fail `IP_FACTOR` times as often: one NAT can hide many honest users).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThrottleSubject {
    Account(String),
    ClientIp(String),
    /// An SSO session typing user codes at the device verification page (RFC 8628 §5.1):
    /// counted apart from passwords, so neither budget spends the other.
    DeviceSession(String),
    /// A client IP typing user codes (its key as `ClientIp`'s).
    DeviceIp(String),
    /// An account (its user id) typing user codes, whatever its sessions: signing in
    /// again must not buy a fresh budget of guesses (RFC 8628 §5.1).
    DeviceAccount(String),
}

impl ThrottleSubject {
    /// A client IP may fail this many times more than one account.
    pub const IP_FACTOR: u32 = 4;

    /// Usernames are case-folded, so `Alice` and `alice` share one budget.
    pub fn account(username: &str) -> Self {
        Self::Account(username.trim().to_lowercase())
    }

    /// The key it is stored under.
    pub fn key(&self) -> String {
        match self {
            Self::Account(name) => format!("account:{name}"),
            Self::ClientIp(ip) => format!("ip:{ip}"),
            Self::DeviceSession(sid) => format!("device-session:{sid}"),
            Self::DeviceIp(ip) => format!("device-ip:{ip}"),
            Self::DeviceAccount(user_id) => format!("device-account:{user_id}"),
        }
    }

    /// Failures plus attempts in flight allowed within one window.
    pub fn limit(&self, max_failures: u32) -> i64 {
        let factor = match self {
            Self::Account(_) | Self::DeviceSession(_) | Self::DeviceAccount(_) => 1,
            Self::ClientIp(_) | Self::DeviceIp(_) => Self::IP_FACTOR,
        };
        i64::from(max_failures.max(1)).saturating_mul(i64::from(factor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(now: DateTime<Utc>) -> AuthorizationGrant {
        AuthorizationGrant {
            client_id: ClientId::parse("web-app").unwrap(),
            user_id: UserId::parse("user-1").unwrap(),
            sid: SessionId::parse("sid-1").unwrap(),
            redirect_uri: "https://app.example.com/cb".into(),
            scope: ScopeSet::parse("openid").unwrap(),
            nonce: None,
            code_challenge: CodeChallenge::from_stored("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            auth_time: now,
            created_at: now,
            expires_at: now + chrono::Duration::seconds(60),
        }
    }

    /// What a code's owner presents: its client, redirect URI and the verifier's S256.
    fn owners(now: DateTime<Utc>) -> CodePresentation {
        CodePresentation {
            client_id: ClientId::parse("web-app").unwrap(),
            redirect_uri: "https://app.example.com/cb".into(),
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            access_token_jti: "jti".into(),
            access_token_expires_at: now,
            now,
        }
    }

    /// The refusal policy as a table: each row changes the stored code or the presentation
    /// from the matching case, and names the outcome. The order of the checks is the policy
    /// (a used code is a replay whoever presents it, expired or not; expiry before the
    /// presentation's mistakes; those before the session's end).
    #[test]
    fn refusals_of_a_code_the_redeeming_statement_did_not_take() {
        type Case = (&'static str, fn(&mut StoredCode), fn(&mut CodePresentation), &'static str);
        let later = |p: &mut CodePresentation| p.now += chrono::Duration::seconds(61);
        let used = |c: &mut StoredCode| c.used_at = Some(c.grant.created_at);
        let other_client = |p: &mut CodePresentation| p.client_id = ClientId::parse("other-app").unwrap();
        let other_uri = |p: &mut CodePresentation| p.redirect_uri = "https://app.example.com/cb2".into();
        let other_verifier = |p: &mut CodePresentation| p.code_challenge = "x".repeat(43);
        let same = |_: &mut CodePresentation| {};
        let unused = |_: &mut StoredCode| {};
        let cases: [Case; 14] = [
            ("used, by its owner", used, same, "replayed by owner"),
            ("used, by another client", used, other_client, "replayed by another"),
            ("used, other redirect URI", used, other_uri, "replayed by another"),
            ("used, wrong verifier", used, other_verifier, "replayed by another"),
            ("used and expired, by its owner", used, later, "replayed by owner"),
            ("expired", unused, later, "invalid"),
            (
                "expired, another client",
                unused,
                |p| {
                    p.now += chrono::Duration::seconds(61);
                    p.client_id = ClientId::parse("other-app").unwrap();
                },
                "invalid",
            ),
            ("another client", unused, other_client, "wrong client"),
            ("another redirect URI", unused, other_uri, "wrong redirect URI"),
            ("wrong verifier", unused, other_verifier, "wrong verifier"),
            ("session ended", |c| c.is_session_alive = false, same, "session ended"),
            ("user changed", |c| c.is_user_unchanged = false, same, "session ended"),
            ("session ended, another client", |c| c.is_session_alive = false, other_client, "wrong client"),
            ("everything matches: taken in between", unused, same, "invalid"),
        ];
        let now = Utc::now();
        for (name, change_code, change_presentation, expected) in cases {
            let mut code =
                StoredCode { grant: grant(now), used_at: None, is_session_alive: true, is_user_unchanged: true };
            let mut presented = owners(now);
            change_code(&mut code);
            change_presentation(&mut presented);
            let outcome = match CodeRedemption::refused(Some(code), &presented) {
                CodeRedemption::Replayed { is_owners: true, owner } if owner.as_str() == "web-app" => {
                    "replayed by owner"
                }
                CodeRedemption::Replayed { is_owners: false, owner } if owner.as_str() == "web-app" => {
                    "replayed by another"
                }
                CodeRedemption::Replayed { .. } => "replayed, wrong owner",
                CodeRedemption::WrongClient => "wrong client",
                CodeRedemption::WrongRedirectUri => "wrong redirect URI",
                CodeRedemption::WrongVerifier => "wrong verifier",
                CodeRedemption::SessionEnded => "session ended",
                CodeRedemption::Invalid => "invalid",
                CodeRedemption::Redeemed(_) => "redeemed",
            };
            assert_eq!(outcome, expected, "{name}");
        }
        assert!(matches!(CodeRedemption::refused(None, &owners(now)), CodeRedemption::Invalid), "unknown code");
    }

    #[test]
    fn session_ids_are_generated_simple_and_checked_when_presented() {
        let generated = SessionId::generate();
        assert!(uuid::Uuid::try_parse(generated.as_str()).is_ok_and(|u| u.simple().to_string() == generated.as_str()));
        assert!(SessionId::parse("").is_err());
        assert!(SessionId::parse("a\nb").is_err());
        assert!(SessionId::parse(&"x".repeat(256)).is_err());
        assert_eq!(SessionId::parse("sid-1").unwrap().to_string(), "sid-1");
    }

    #[test]
    fn prompt_values() {
        let prompt = Prompt::parse(Some("login consent")).unwrap();
        assert!(prompt.login && prompt.consent && !prompt.none);
        assert_eq!(prompt.to_param(), "login consent");
        assert!(Prompt::parse(Some("none login")).is_err());
        assert!(Prompt::parse(Some("sometimes")).is_err());
        assert_eq!(Prompt::parse(None).unwrap(), Prompt::default());
    }
}
