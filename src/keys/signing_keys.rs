//! The signing key set: loaded from the database once at startup, decrypted and parsed
//! into `aws_lc_rs` key pairs once, then shared by every request.
//!
//! Parsing the key per token (what `jsonwebtoken::encode` does with its aws-lc backend)
//! costs ≈165 µs of ≈380 µs per token; holding the parsed `RsaKeyPair` brings the cost
//! down to the RSA operation itself.

use super::jwk::RsaPublicJwk;
use super::kek::{KekSource, KeyEncryptionKey};
use crate::config::Settings;
use crate::storage::{KeyState, Storage, StoredKey};
use anyhow::{anyhow, bail, Context};
use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header};
use std::sync::{Arc, RwLock};

/// The JWS `typ` a token is signed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwsType {
    /// RFC 9068 §2.1: `at+jwt`, so an access token cannot pass for an ID token.
    AccessToken,
    /// OpenID Connect Core §2: a plain `JWT`.
    IdToken,
}

/// One RSA key pair, parsed once, with its JWS headers pre-encoded.
pub struct SigningKey {
    pub kid: String,
    key_pair: RsaKeyPair,
    access_token_header: String,
    id_token_header: String,
    rng: SystemRandom,
}

impl SigningKey {
    /// Parses a PKCS#8 DER RSA private key.
    pub fn from_pkcs8(der: &[u8]) -> anyhow::Result<Self> {
        let key_pair = RsaKeyPair::from_pkcs8(der).map_err(|e| anyhow!("not a usable RSA private key: {e}"))?;
        if key_pair.public_modulus_len() < 256 {
            bail!("RSA signing keys must have at least 2048 bits");
        }
        let kid = public_jwk(&key_pair).kid;
        let header = |typ: &str| -> anyhow::Result<String> {
            let mut header = Header::new(Algorithm::RS256);
            header.typ = Some(typ.to_owned());
            header.kid = Some(kid.clone());
            Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?))
        };
        Ok(Self {
            access_token_header: header("at+jwt")?,
            id_token_header: header("JWT")?,
            kid,
            key_pair,
            rng: SystemRandom::new(),
        })
    }

    pub fn public_jwk(&self) -> RsaPublicJwk {
        public_jwk(&self.key_pair)
    }

    /// The base64url-encoded JWS header for `typ`.
    pub fn encoded_header(&self, typ: JwsType) -> &str {
        match typ {
            JwsType::AccessToken => &self.access_token_header,
            JwsType::IdToken => &self.id_token_header,
        }
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3) over `message`.
    pub fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut signature = vec![0u8; self.key_pair.public_modulus_len()];
        self.key_pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut signature)
            .map_err(|_| anyhow!("RSA signing failed"))?;
        Ok(signature)
    }
}

fn public_jwk(key_pair: &RsaKeyPair) -> RsaPublicJwk {
    let public = key_pair.public_key();
    RsaPublicJwk::from_components(
        public.modulus().big_endian_without_leading_zero(),
        public.exponent().big_endian_without_leading_zero(),
    )
}

/// A published public key, decoded once for verifying Tessera's own tokens.
pub struct VerifyingKey {
    pub kid: String,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl VerifyingKey {
    fn from_jwk(jwk: &RsaPublicJwk) -> anyhow::Result<Self> {
        Ok(Self { kid: jwk.kid.clone(), n: URL_SAFE_NO_PAD.decode(&jwk.n)?, e: URL_SAFE_NO_PAD.decode(&jwk.e)? })
    }

    /// RFC 7518 §3.3 RS256 verification.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let key = aws_lc_rs::signature::RsaPublicKeyComponents { n: &self.n, e: &self.e };
        key.verify(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256, message, signature).is_ok()
    }
}

/// What is signed with and what is published, as one consistent snapshot.
pub struct KeySet {
    pub current: Arc<SigningKey>,
    pub published: Vec<RsaPublicJwk>,
    pub verifying: Vec<VerifyingKey>,
    /// The JWKS document (RFC 7517 §5), serialised once.
    pub jwks_body: Bytes,
    /// Strong ETag of `jwks_body`.
    pub jwks_etag: String,
    /// The kids and states it was built from, to tell whether a reload changed anything.
    fingerprint: Vec<(String, KeyState)>,
}

impl KeySet {
    pub fn verifying_key(&self, kid: &str) -> Option<&VerifyingKey> {
        self.verifying.iter().find(|k| k.kid == kid)
    }

    fn new(
        current: SigningKey,
        published: Vec<RsaPublicJwk>,
        fingerprint: Vec<(String, KeyState)>,
    ) -> anyhow::Result<Self> {
        let body = serde_json::to_vec(&serde_json::json!({ "keys": published }))?;
        let etag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest(&SHA256, &body).as_ref()[..16]));
        let verifying = published.iter().map(VerifyingKey::from_jwk).collect::<anyhow::Result<_>>()?;
        Ok(Self {
            current: Arc::new(current),
            published,
            verifying,
            jwks_body: Bytes::from(body),
            jwks_etag: etag,
            fingerprint,
        })
    }
}

/// The process-wide key set. A lock, not a constant, so a later refresh (key rotation)
/// can swap in a new snapshot without restarting.
pub struct SigningKeys {
    set: RwLock<Arc<KeySet>>,
}

impl SigningKeys {
    pub fn snapshot(&self) -> Arc<KeySet> {
        // A poisoned lock still holds a complete snapshot: swaps replace the Arc whole.
        self.set.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Loads the keys from storage, creating the first one (made current at `now`) when
    /// there is none. Also returns the key-encryption key, which seals other secrets at
    /// rest too.
    pub async fn load_or_create(
        storage: &dyn Storage,
        settings: &Settings,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(Self, KeyEncryptionKey, KekSource)> {
        let mut stored = storage.list_signing_keys().await.context("reading signing keys")?;
        let (kek, source) = KeyEncryptionKey::resolve(
            settings.key_encryption_key.as_ref().map(|s| s.expose()),
            &settings.keys_dir,
            !stored.is_empty(),
        )?;
        if !stored.iter().any(|k| k.state == KeyState::Current) {
            let der = first_key_der(settings).await?;
            let row = seal_key(&kek, &der, KeyState::Current, now)?;
            // Another replica may have won the race; then its key is the one to use.
            storage.insert_signing_key(&row).await.context("storing the new signing key")?;
            stored = storage.list_signing_keys().await.context("reading signing keys")?;
        }
        let set = decrypt_all(&stored, &kek)?;
        Ok((Self { set: RwLock::new(Arc::new(set)) }, kek, source))
    }

    /// Re-reads the keys from the database and swaps in a new snapshot when they changed
    /// (another replica rotated). Returns whether it changed.
    pub async fn reload(&self, storage: &dyn Storage, kek: &KeyEncryptionKey) -> anyhow::Result<bool> {
        let stored = storage.list_signing_keys().await.context("reading signing keys")?;
        if fingerprint(&stored) == self.snapshot().fingerprint {
            return Ok(false);
        }
        let set = decrypt_all(&stored, kek)?;
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        Ok(true)
    }
}

fn fingerprint(stored: &[StoredKey]) -> Vec<(String, KeyState)> {
    stored.iter().map(|k| (k.kid.clone(), k.state)).collect()
}

/// Encrypts a PKCS#8 key for storage, in `state`.
pub fn seal_key(kek: &KeyEncryptionKey, der: &[u8], state: KeyState, now: DateTime<Utc>) -> anyhow::Result<StoredKey> {
    let key = SigningKey::from_pkcs8(der)?;
    Ok(StoredKey {
        kid: key.kid.clone(),
        algorithm: "RS256".into(),
        state,
        encrypted_private_key: kek.seal(der, key.kid.as_bytes())?,
        public_jwk: serde_json::to_value(key.public_jwk())?,
        created_at: now,
        activated_at: (state == KeyState::Current).then_some(now),
        retired_at: None,
    })
}

/// A new RSA key as PKCS#8 DER, generated with the `rsa` crate off the async workers.
pub async fn generate_key_der(bits: usize) -> anyhow::Result<Vec<u8>> {
    use rsa::pkcs8::EncodePrivateKey;
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).context("generating an RSA key")?;
        Ok(key.to_pkcs8_der()?.as_bytes().to_vec())
    })
    .await
    .context("key generation task")?
}

fn decrypt_all(stored: &[StoredKey], kek: &KeyEncryptionKey) -> anyhow::Result<KeySet> {
    let mut current = None;
    let mut published = Vec::with_capacity(stored.len());
    for row in stored {
        let der = kek.open(&row.encrypted_private_key, row.kid.as_bytes()).map_err(|_| {
            anyhow!(
                "signing key {} cannot be decrypted with the configured key-encryption key: \
                 set TESSERA_KEY_ENCRYPTION_KEY (setting `key_encryption_key`) to the key it was created with",
                row.kid
            )
        })?;
        let key = SigningKey::from_pkcs8(&der).with_context(|| format!("signing key {}", row.kid))?;
        if key.kid != row.kid {
            bail!("signing key {} does not match its stored kid (found {})", row.kid, key.kid);
        }
        published.push(key.public_jwk());
        if row.state == KeyState::Current {
            current = Some(key);
        }
    }
    let current = current.ok_or_else(|| anyhow!("the database has no current signing key"))?;
    KeySet::new(current, published, fingerprint(stored))
}

/// The PKCS#8 DER of the first signing key: imported from `keys.bootstrap_key_file`
/// or generated with the `rsa` crate (off the async workers: it takes a while).
async fn first_key_der(settings: &Settings) -> anyhow::Result<Vec<u8>> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
    if let Some(path) = &settings.keys.bootstrap_key_file {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {} (setting `keys.bootstrap_key_file`)", path.display()))?;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(&pem))
            .map_err(|e| {
                anyhow!("{} is not an RSA private key in PEM (setting `keys.bootstrap_key_file`): {e}", path.display())
            })?;
        return Ok(key.to_pkcs8_der()?.as_bytes().to_vec());
    }
    generate_key_der(settings.keys.rsa_bits.0).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};

    fn test_key() -> SigningKey {
        let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/keys/test-signing-key.pem")).unwrap();
        let der = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap().to_pkcs8_der().unwrap();
        SigningKey::from_pkcs8(der.as_bytes()).unwrap()
    }

    #[test]
    fn headers_carry_typ_alg_and_kid() {
        let key = test_key();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(key.encoded_header(JwsType::AccessToken)).unwrap()).unwrap();
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], key.kid.as_str());
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(key.encoded_header(JwsType::IdToken)).unwrap()).unwrap();
        assert_eq!(header["typ"], "JWT");
    }

    #[test]
    fn signatures_verify_with_the_published_jwk() {
        let key = test_key();
        let jwk = key.public_jwk();
        let signature = key.sign(b"header.payload").unwrap();
        let n = URL_SAFE_NO_PAD.decode(&jwk.n).unwrap();
        let e = URL_SAFE_NO_PAD.decode(&jwk.e).unwrap();
        let public = aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e };
        assert!(public
            .verify(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256, b"header.payload", &signature)
            .is_ok());
        assert!(public
            .verify(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256, b"header.payloaX", &signature)
            .is_err());
    }

    #[test]
    fn jwks_body_has_only_public_members() {
        let key = test_key();
        let jwk = key.public_jwk();
        let set = KeySet::new(key, vec![jwk], vec![]).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&set.jwks_body).unwrap();
        let members: Vec<&str> = body["keys"][0].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
        assert!(set.jwks_etag.starts_with('"') && set.jwks_etag.ends_with('"'));
    }
}
