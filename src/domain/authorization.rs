//! The authorization code flow's state: the pending request while the user logs in and
//! consents, the SSO session, and the code (RFC 6749 §4.1; OpenID Connect Core §3.1).

use super::client::ClientId;
use super::pkce::CodeChallenge;
use super::scope::ScopeSet;
use super::secret::SecretDigest;
use super::InvalidParameter;
use chrono::{DateTime, Utc};

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

/// A browser's SSO session. The cookie holds a random id; storage holds its digest.
#[derive(Clone, Debug)]
pub struct Session {
    /// Public identifier, the `sid` claim.
    pub sid: String,
    pub user_id: String,
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
    pub user_id: String,
    pub sid: String,
    pub redirect_uri: String,
    pub scope: ScopeSet,
    pub nonce: Option<String>,
    pub code_challenge: CodeChallenge,
    pub auth_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The outcome of presenting a code.
#[derive(Debug)]
pub enum CodeRedemption {
    /// First use, within its lifetime: the grant it stands for.
    Redeemed(AuthorizationGrant),
    /// Used before (RFC 6749 §4.1.2: revoke what it issued): the access token's jti, if any.
    Replayed {
        access_token_jti: Option<String>,
        access_token_expires_at: Option<DateTime<Utc>>,
        family_id: Option<String>,
    },
    /// Unknown or expired.
    Invalid,
}

/// Failed-login bookkeeping for one subject (an account or a client IP).
#[derive(Clone, Copy, Debug)]
pub struct Throttle {
    pub failures: i64,
    pub window_start: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
