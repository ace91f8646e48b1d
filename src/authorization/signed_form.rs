//! State the browser carries from one of Tessera's pages to the next, signed so that it
//! cannot be altered: the login-stage authorization request, and the logout
//! confirmation's CSRF token.
//!
//! Why the login stage travels in the form instead of the database: every unauthenticated
//! `/authorize` used to store a row (up to 8 KB), so one client could grow the database by
//! gigabytes an hour. Now nothing is stored before the person has signed in. The payload
//! is not encrypted, only authenticated: everything in it came from the browser's own
//! authorization request. What must not change (client, redirect URI, scope, PKCE
//! challenge, the CSRF token's digest, the expiry) is covered by an HMAC-SHA256 (RFC 2104)
//! under a key derived from the key-encryption key, which every replica shares.
//!
//! Format: `base64url(payload) "." base64url(HMAC(purpose || 0x00 || payload))`.

use crate::domain::authorization::{PendingAuthorization, Prompt};
use crate::domain::client::ClientId;
use crate::domain::pkce::CodeChallenge;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::SecretDigest;
use crate::keys::kek::KeyEncryptionKey;
use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// What a signature is for; part of the signed input, so one can never pass for another.
#[derive(Clone, Copy, Debug)]
pub enum Purpose {
    /// The login form's authorization request.
    LoginRequest,
    /// The logout confirmation form's CSRF token, bound to the session.
    LogoutConfirmation,
    /// The sign-in form shown by the device verification page (RFC 8628 §3.3): where to
    /// go back to after signing in.
    DeviceLogin,
    /// The device verification page's user-code form's CSRF token, bound to the session.
    DeviceEntry,
    /// The device approval form's CSRF token, bound to the session and the user code.
    DeviceApproval,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::LoginRequest => b"login-request",
            Self::LogoutConfirmation => b"logout-confirmation",
            Self::DeviceLogin => b"device-login",
            Self::DeviceEntry => b"device-entry",
            Self::DeviceApproval => b"device-approval",
        }
    }
}

/// Signs and checks browser-carried state.
pub struct FormSigner {
    key: hmac::Key,
}

impl FormSigner {
    pub fn new(kek: &KeyEncryptionKey) -> Self {
        Self { key: kek.derive_hmac_key(b"tessera signed forms v1") }
    }

    fn mac(&self, purpose: Purpose, data: &[u8]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(purpose.label());
        context.update(&[0]);
        context.update(data);
        context.sign()
    }

    /// The base64url tag of `data` for `purpose`.
    pub fn tag(&self, purpose: Purpose, data: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(purpose, data))
    }

    /// Does `tag` authenticate `data` for `purpose`? Compared in constant time.
    pub fn is_valid_tag(&self, purpose: Purpose, data: &[u8], tag: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else { return false };
        self.mac(purpose, data).as_ref().ct_eq(&tag).into()
    }

    /// `payload` and its tag, as one form value.
    pub fn seal(&self, purpose: Purpose, payload: &[u8]) -> String {
        format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), self.tag(purpose, payload))
    }

    /// The payload of a value made by [`seal`](Self::seal) for `purpose`, if untouched.
    pub fn open(&self, purpose: Purpose, value: &str) -> Option<Vec<u8>> {
        let (payload, tag) = value.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        self.is_valid_tag(purpose, &payload, tag).then_some(payload)
    }

    /// The login form's `pending` value for `request`.
    pub fn seal_login_request(&self, request: &PendingAuthorization) -> String {
        let state = LoginRequestState::from(request);
        let payload = serde_json::to_vec(&state).expect("the request state serialises");
        self.seal(Purpose::LoginRequest, &payload)
    }

    /// The request a login form carries, if it is untouched and unexpired at `now`.
    pub fn open_login_request(&self, value: &str, now: DateTime<Utc>) -> Option<PendingAuthorization> {
        let payload = self.open(Purpose::LoginRequest, value)?;
        let state: LoginRequestState = serde_json::from_slice(&payload).ok()?;
        let request = state.into_pending()?;
        (request.expires_at > now).then_some(request)
    }
}

/// A sign-in started at the device verification page: its CSRF token's digest, the user
/// code to show again afterwards (canonical, already checked for shape only), and until
/// when the form works.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceLoginState {
    pub csrf_digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_code: Option<String>,
    pub expires_at: i64,
}

impl FormSigner {
    /// The device sign-in form's `pending` value.
    pub fn seal_device_login(&self, state: &DeviceLoginState) -> String {
        let payload = serde_json::to_vec(state).expect("the device login state serialises");
        self.seal(Purpose::DeviceLogin, &payload)
    }

    /// The state a device sign-in form carries, if untouched and unexpired at `now`.
    pub fn open_device_login(&self, value: &str, now: DateTime<Utc>) -> Option<DeviceLoginState> {
        let payload = self.open(Purpose::DeviceLogin, value)?;
        let state: DeviceLoginState = serde_json::from_slice(&payload).ok()?;
        (state.expires_at > now.timestamp()).then_some(state)
    }
}

/// The signed form of a login-stage request. Values were validated by `/authorize` before
/// signing; they are parsed again into their types on the way back all the same.
#[derive(Serialize, Deserialize)]
struct LoginRequestState {
    client_id: String,
    redirect_uri: String,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    code_challenge: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    login_hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_age: Option<i64>,
    prompt: String,
    csrf_digest: String,
    created_at: i64,
    expires_at: i64,
}

impl From<&PendingAuthorization> for LoginRequestState {
    fn from(p: &PendingAuthorization) -> Self {
        Self {
            client_id: p.client_id.as_str().to_owned(),
            redirect_uri: p.redirect_uri.clone(),
            scope: p.scope.to_string(),
            state: p.state.clone(),
            nonce: p.nonce.clone(),
            code_challenge: p.code_challenge.as_str().to_owned(),
            login_hint: p.login_hint.clone(),
            max_age: p.max_age,
            prompt: p.prompt.to_param(),
            csrf_digest: p.csrf_digest.as_str().to_owned(),
            created_at: p.created_at.timestamp(),
            expires_at: p.expires_at.timestamp(),
        }
    }
}

impl LoginRequestState {
    fn into_pending(self) -> Option<PendingAuthorization> {
        Some(PendingAuthorization {
            client_id: ClientId::parse(&self.client_id).ok()?,
            redirect_uri: self.redirect_uri,
            scope: ScopeSet::parse(&self.scope).ok()?,
            state: self.state,
            nonce: self.nonce,
            code_challenge: CodeChallenge::from_stored(self.code_challenge),
            login_hint: self.login_hint,
            max_age: self.max_age,
            prompt: Prompt::parse(Some(&self.prompt)).ok()?,
            csrf_digest: SecretDigest::from_stored(self.csrf_digest),
            created_at: Utc.timestamp_opt(self.created_at, 0).single()?,
            expires_at: Utc.timestamp_opt(self.expires_at, 0).single()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(key: &str) -> FormSigner {
        FormSigner::new(&KeyEncryptionKey::parse(key).unwrap())
    }

    const KEY: &str = "dGVzc2VyYS10ZXN0LWtleS1lbmNyeXB0aW9uLWtleSE=";

    #[test]
    fn a_sealed_value_opens_only_untouched_for_its_purpose_and_key() {
        let forms = signer(KEY);
        let sealed = forms.seal(Purpose::LoginRequest, b"{\"a\":1}");
        assert_eq!(forms.open(Purpose::LoginRequest, &sealed).as_deref(), Some(&b"{\"a\":1}"[..]));
        assert!(forms.open(Purpose::LogoutConfirmation, &sealed).is_none(), "purposes are separate");
        let (payload, tag) = sealed.split_once('.').unwrap();
        let altered = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(b"{\"a\":2}"));
        assert!(forms.open(Purpose::LoginRequest, &altered).is_none());
        assert!(forms.open(Purpose::LoginRequest, payload).is_none());
        assert!(forms.open(Purpose::LoginRequest, &format!("{payload}.")).is_none());
        let other = signer("b3RoZXItdGVzc2VyYS1rZXktZW5jcnlwdGlvbi1rZXk=");
        assert!(other.open(Purpose::LoginRequest, &sealed).is_none(), "another KEK, another key");
    }
}
