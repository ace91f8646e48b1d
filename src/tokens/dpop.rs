//! DPoP (RFC 9449) as the authorization server applies it: a proof is checked by
//! `tessera_verify::dpop` (§4.3, pure), then here against what only the server knows —
//! its nonces (§8) and the proofs it already accepted (§11.1, in the database, so that a
//! proof is accepted once across every replica).
//!
//! Nonces are stateless: `base64url(HMAC-SHA256(key, "dpop-nonce" 0x00 period))`, where
//! `period` counts `nonce_lifetime`s since the epoch and the key is derived from the
//! key-encryption key, which every replica shares. A nonce is accepted during its own
//! period and the next one; nothing is stored per nonce.

use crate::clock::Clock;
use crate::config::{DpopSettings, Issuer};
use crate::domain::secret::SecretDigest;
use crate::keys::kek::KeyEncryptionKey;
use crate::storage::{DpopProofStore, StorageError};
use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use std::borrow::Cow;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tessera_verify::dpop::{DpopError, ProofPolicy, ProofRequest};
use url::Url;

/// The proof algorithms accepted (RFC 9449 §5.1 `dpop_signing_alg_values_supported`, and
/// the `algs` of §7.1 challenges). Never `none` nor a MAC (§4.3 check 5).
pub const DPOP_ALGORITHMS: &[&str] = &["ES256", "RS256", "EdDSA"];

/// How far into the future a proof's `iat` may be: the client's clock may run ahead.
const FUTURE_LEEWAY: std::time::Duration = std::time::Duration::from_secs(5);

/// What a request's proof must match.
pub struct ExpectedProof<'a> {
    /// `htm`: the request's method (§4.3 check 8).
    pub method: &'a str,
    /// `htu`: the endpoint's public URL, built from the configured issuer (§4.3 check 9).
    pub url: &'a Url,
    /// The access token presented with the proof, whose hash `ath` must be (§4.3 check 12).
    pub access_token: Option<&'a str>,
    /// Whether a current server nonce is required (§8; the token endpoint, when configured).
    pub requires_nonce: bool,
}

/// A proof that passed every check and was recorded.
#[derive(Debug)]
pub struct AcceptedProof {
    /// The JWK SHA-256 thumbprint (RFC 7638) of the proof's key: the `cnf.jkt` of what is
    /// issued with it (§6.1), or what a bound token's `cnf.jkt` must equal (§7).
    pub jkt: String,
    /// A fresh nonce to send back (`DPoP-Nonce`, §8.2) when the proof's was the previous
    /// period's, so the client moves on before it expires.
    pub next_nonce: Option<String>,
}

/// Why a proof was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// `invalid_dpop_proof` (§5, §7.1).
    #[error("invalid_dpop_proof: {0}")]
    Invalid(Cow<'static, str>),
    /// `use_dpop_nonce` (§8): answered with this nonce in `DPoP-Nonce`.
    #[error("use_dpop_nonce")]
    UseNonce(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The server's DPoP policy: proof age, nonces, and the replay record.
pub struct DpopPolicy {
    pub require_nonce: bool,
    /// `htu` of the token endpoint and of `/userinfo`, under the configured issuer.
    pub token_endpoint: Url,
    pub userinfo_endpoint: Url,
    proofs: ProofPolicy,
    nonce_lifetime_secs: i64,
    nonce_key: hmac::Key,
    clock: Arc<dyn Clock>,
}

impl DpopPolicy {
    pub fn new(settings: &DpopSettings, issuer: &Issuer, kek: &KeyEncryptionKey, clock: Arc<dyn Clock>) -> Self {
        let endpoint = |path: &str| Url::parse(&issuer.endpoint(path)).expect("the issuer is a URL (checked at load)");
        Self {
            require_nonce: settings.require_nonce,
            token_endpoint: endpoint("/token"),
            userinfo_endpoint: endpoint("/userinfo"),
            proofs: ProofPolicy::new().iat_window(settings.proof_max_age.0, FUTURE_LEEWAY),
            // Bounded at load (10s to 1h).
            nonce_lifetime_secs: settings.nonce_lifetime.0.as_secs().max(1) as i64,
            nonce_key: kek.derive_hmac_key(b"tessera dpop nonces v1"),
            clock,
        }
    }

    /// The nonce of the current period (§8.1).
    pub fn current_nonce(&self) -> String {
        self.nonce_of(self.period(self.clock.now()))
    }

    fn period(&self, now: DateTime<Utc>) -> i64 {
        now.timestamp().div_euclid(self.nonce_lifetime_secs)
    }

    fn nonce_of(&self, period: i64) -> String {
        let mut context = hmac::Context::with_key(&self.nonce_key);
        context.update(b"dpop-nonce");
        context.update(&[0]);
        context.update(&period.to_be_bytes());
        URL_SAFE_NO_PAD.encode(context.sign())
    }

    /// How a presented nonce stands: current, the previous period's (still accepted), or
    /// not one of ours. Compared in constant time.
    fn nonce_standing(&self, presented: Option<&str>, now: DateTime<Utc>) -> NonceStanding {
        let Some(presented) = presented else { return NonceStanding::Unknown };
        let period = self.period(now);
        let matches = |period: i64| -> bool { self.nonce_of(period).as_bytes().ct_eq(presented.as_bytes()).into() };
        if matches(period) {
            NonceStanding::Current
        } else if matches(period - 1) {
            NonceStanding::Previous
        } else {
            NonceStanding::Unknown
        }
    }

    /// Checks `proof` (RFC 9449 §4.3) against `expected`, then the nonce (§8), then records
    /// it so that it is accepted once (§11.1). The caller has established whoever
    /// presents it (the client, or a live access token), so rows are only ever created for
    /// known parties, each kept for the `iat` window only; but a public client is anyone
    /// who names it, so on SQLite each record also trims expired ones
    /// (`DpopProofStore::record_dpop_proof`).
    pub async fn accept(
        &self,
        proof: &str,
        expected: &ExpectedProof<'_>,
        proofs: &dyn DpopProofStore,
    ) -> Result<AcceptedProof, ProofError> {
        self.accept_proof(proof, expected, None, proofs).await
    }

    /// [`accept`](Self::accept) for a proof that must be made with the key a token is
    /// bound to (`cnf.jkt`, RFC 9449 §7.1 and §4.3 check 12); a proof of another key is
    /// refused before it is recorded.
    pub async fn accept_bound(
        &self,
        proof: &str,
        expected: &ExpectedProof<'_>,
        bound_jkt: &str,
        proofs: &dyn DpopProofStore,
    ) -> Result<AcceptedProof, ProofError> {
        self.accept_proof(proof, expected, Some(bound_jkt), proofs).await
    }

    async fn accept_proof(
        &self,
        proof: &str,
        expected: &ExpectedProof<'_>,
        bound_jkt: Option<&str>,
        proofs: &dyn DpopProofStore,
    ) -> Result<AcceptedProof, ProofError> {
        let now = self.clock.now();
        let is_ours = |nonce: &str| !matches!(self.nonce_standing(Some(nonce), now), NonceStanding::Unknown);
        let mut request = ProofRequest::new(expected.method, expected.url, now.into());
        if let Some(token) = expected.access_token {
            request = request.access_token(token);
        }
        if expected.requires_nonce {
            request = request.nonce_valid_if(&is_ours);
        }
        let verified = self.proofs.verify(proof, &request).map_err(|error| match error {
            DpopError::UseNonce => ProofError::UseNonce(self.current_nonce()),
            other => ProofError::Invalid(other.error_description().into()),
        })?;
        if bound_jkt.is_some_and(|bound| bound != verified.jkt) {
            return Err(ProofError::Invalid(
                "the DPoP proof is not made with the key the access token is bound to".into(),
            ));
        }
        // §8.2: a nonce of the previous period was accepted; hand over the current one.
        let next_nonce = match self.nonce_standing(verified.nonce.as_deref(), now) {
            NonceStanding::Previous if expected.requires_nonce => Some(self.current_nonce()),
            _ => None,
        };
        // The proof is remembered for as long as its iat is acceptable (`replay_window`
        // from its iat, however far ahead it is): past that, the iat check refuses it.
        let window = Duration::from_std(self.proofs.replay_window()).unwrap_or(Duration::minutes(10));
        let issued = DateTime::from_timestamp(verified.iat, 0).unwrap_or(now);
        let expires_at = issued.max(now) + window;
        // The jkt is base64url, so the space cannot occur in it: one digest per key and jti.
        // Only records expired a whole window ago are trimmed: a replica whose clock runs
        // behind this one's, or whose window is longer, by less than that still finds the
        // records it needs.
        let record = SecretDigest::of(&format!("{} {}", verified.jkt, verified.jti));
        if !proofs.record_dpop_proof(&record, expires_at, now - window).await? {
            return Err(ProofError::Invalid("the DPoP proof was already used (RFC 9449 §11.1)".into()));
        }
        Ok(AcceptedProof { jkt: verified.jkt, next_nonce })
    }
}

enum NonceStanding {
    Current,
    Previous,
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::Lifetime;

    fn settings() -> DpopSettings {
        DpopSettings {
            require_nonce: true,
            proof_max_age: Lifetime(std::time::Duration::from_secs(60)),
            nonce_lifetime: Lifetime(std::time::Duration::from_secs(300)),
        }
    }

    fn issuer() -> Issuer {
        Issuer::parse("https://id.example.com").unwrap()
    }

    fn policy(clock: Arc<ManualClock>) -> DpopPolicy {
        DpopPolicy::new(&settings(), &issuer(), &KeyEncryptionKey::parse(&"07".repeat(32)).unwrap(), clock)
    }

    #[test]
    fn the_advertised_algorithms_are_those_tessera_verify_accepts() {
        let accepted: Vec<&str> = ProofPolicy::new().allowed_algorithms().iter().map(|a| a.name()).collect();
        assert_eq!(accepted, DPOP_ALGORITHMS);
    }

    #[test]
    fn a_nonce_is_accepted_in_its_period_and_the_next_only() {
        let clock = Arc::new(ManualClock::default());
        let policy = policy(clock.clone());
        let nonce = policy.current_nonce();
        assert_eq!(nonce.len(), 43, "256 bits, base64url");
        let standing = |p: &DpopPolicy| p.nonce_standing(Some(&nonce), p.clock.now());
        assert!(matches!(standing(&policy), NonceStanding::Current));
        clock.advance(Duration::seconds(300));
        assert!(matches!(standing(&policy), NonceStanding::Previous));
        clock.advance(Duration::seconds(300));
        assert!(matches!(standing(&policy), NonceStanding::Unknown));
    }

    #[test]
    fn nonces_are_keyed_by_the_kek_and_unknown_values_are_refused() {
        let clock = Arc::new(ManualClock::default());
        let ours = policy(clock.clone());
        let theirs =
            DpopPolicy::new(&settings(), &issuer(), &KeyEncryptionKey::parse(&"08".repeat(32)).unwrap(), clock);
        let now = ours.clock.now();
        assert!(matches!(ours.nonce_standing(Some(&theirs.current_nonce()), now), NonceStanding::Unknown));
        assert!(matches!(ours.nonce_standing(None, now), NonceStanding::Unknown));
        assert!(matches!(ours.nonce_standing(Some(""), now), NonceStanding::Unknown));
    }
}
