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
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::sync::{Arc, RwLock};

/// The JWS `typ` a token is signed with: explicit typing (RFC 8725 §3.11), so that no
/// kind of token can pass for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwsType {
    /// RFC 9068 §2.1: `at+jwt`.
    AccessToken,
    /// OpenID Connect Core §2: a plain `JWT`.
    IdToken,
    /// SSF §4.1.1 (RFC 8417): `secevent+jwt`.
    SecurityEvent,
    /// OpenID Connect Back-Channel Logout 1.0 §2.4: `logout+jwt`.
    LogoutToken,
}

impl JwsType {
    const ALL: [JwsType; 4] = [Self::AccessToken, Self::IdToken, Self::SecurityEvent, Self::LogoutToken];

    pub fn typ(self) -> &'static str {
        match self {
            Self::AccessToken => "at+jwt",
            Self::IdToken => "JWT",
            Self::SecurityEvent => "secevent+jwt",
            Self::LogoutToken => "logout+jwt",
        }
    }
}

/// The JOSE header Tessera signs with (RFC 7515 §4.1), in this member order.
#[derive(serde::Serialize)]
struct JoseHeader<'a> {
    typ: &'a str,
    alg: &'a str,
    kid: &'a str,
}

/// One RSA key pair, parsed once, with its JWS headers pre-encoded.
pub struct SigningKey {
    pub kid: String,
    key_pair: RsaKeyPair,
    /// The base64url-encoded header for each [`JwsType`], in the order of `JwsType::ALL`.
    headers: [String; 4],
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
        let header = |typ: JwsType| -> anyhow::Result<String> {
            let header = JoseHeader { typ: typ.typ(), alg: "RS256", kid: &kid };
            Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?))
        };
        let [a, b, c, d] = JwsType::ALL;
        let headers = [header(a)?, header(b)?, header(c)?, header(d)?];
        Ok(Self { headers, kid, key_pair, rng: SystemRandom::new() })
    }

    pub fn public_jwk(&self) -> RsaPublicJwk {
        public_jwk(&self.key_pair)
    }

    /// The base64url-encoded JWS header for `typ`.
    pub fn encoded_header(&self, typ: JwsType) -> &str {
        &self.headers[typ as usize]
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

/// What is signed with and what is published, as one consistent snapshot.
pub struct KeySet {
    pub current: Arc<SigningKey>,
    pub published: Vec<RsaPublicJwk>,
    /// The published keys, parsed once for `tessera-verify`'s checks of Tessera's own
    /// tokens: the same verifier, and the same strictness, as a resource server's.
    pub verifying: tessera_verify::KeySet,
    /// The JWKS document (RFC 7517 §5), serialised once.
    pub jwks_body: Bytes,
    /// Strong ETag of `jwks_body`.
    pub jwks_etag: String,
    /// The kids and states it was built from, to tell whether a reload changed anything.
    fingerprint: Vec<(String, KeyState)>,
}

impl KeySet {
    fn new(
        current: SigningKey,
        published: Vec<RsaPublicJwk>,
        fingerprint: Vec<(String, KeyState)>,
    ) -> anyhow::Result<Self> {
        let body = serde_json::to_vec(&serde_json::json!({ "keys": published }))?;
        let etag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest(&SHA256, &body).as_ref()[..16]));
        let verifying = tessera_verify::KeySet::from_jwks(&body).context("parsing the published keys")?;
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

/// A new RSA key as PKCS#8 DER, generated by aws-lc off the async workers (it takes
/// tens of milliseconds for 2048 bits, seconds for 4096).
pub async fn generate_key_der(bits: usize) -> anyhow::Result<Vec<u8>> {
    use aws_lc_rs::rsa::KeySize;
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        other => bail!("RSA keys of {other} bits are not supported (setting `keys.rsa_bits`: 2048, 3072 or 4096)"),
    };
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
        let key = RsaKeyPair::generate(size).map_err(|_| anyhow!("generating an RSA key failed"))?;
        pkcs8_der(&key)
    })
    .await
    .context("key generation task")?
}

fn pkcs8_der(key: &RsaKeyPair) -> anyhow::Result<Vec<u8>> {
    let der = AsDer::<Pkcs8V1Der>::as_der(key).map_err(|_| anyhow!("encoding an RSA key as PKCS#8 failed"))?;
    Ok(der.as_ref().to_vec())
}

/// A PEM RSA private key, PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`, what
/// `openssl genrsa` wrote for years), as PKCS#8 DER.
pub fn pkcs8_from_pem(text: &str) -> anyhow::Result<Vec<u8>> {
    let block = pem::parse(text).map_err(|e| anyhow!("not PEM: {e}"))?;
    let key = match block.tag() {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(block.contents()),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(block.contents()),
        other => bail!("a PEM block of type `{other}`, not `PRIVATE KEY` or `RSA PRIVATE KEY`"),
    }
    .map_err(|e| anyhow!("not a usable RSA private key: {e}"))?;
    pkcs8_der(&key)
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
/// or generated.
async fn first_key_der(settings: &Settings) -> anyhow::Result<Vec<u8>> {
    if let Some(path) = &settings.keys.bootstrap_key_file {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {} (setting `keys.bootstrap_key_file`)", path.display()))?;
        return pkcs8_from_pem(&pem).map_err(|e| {
            anyhow!("{} is not an RSA private key in PEM (setting `keys.bootstrap_key_file`): {e:#}", path.display())
        });
    }
    generate_key_der(settings.keys.rsa_bits.0).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_KEY: &str = include_str!("../../keys/test-signing-key.pem");

    fn test_key() -> SigningKey {
        SigningKey::from_pkcs8(&pkcs8_from_pem(TEST_KEY).unwrap()).unwrap()
    }

    #[test]
    fn pem_keys_are_read_as_pkcs8_or_pkcs1() {
        let pkcs8 = pkcs8_from_pem(TEST_KEY).unwrap();
        let key = RsaKeyPair::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(key.public_modulus_len(), 256);
        // The same key in PKCS#1, as `openssl rsa -traditional` writes it (encoded by the
        // independent `rsa` crate: aws-lc exports PKCS#8 only).
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let pkcs1 = rsa::RsaPrivateKey::from_pkcs8_der(&pkcs8).unwrap().to_pkcs1_der().unwrap();
        let text = pem::encode(&pem::Pem::new("RSA PRIVATE KEY", pkcs1.as_bytes().to_vec()));
        let from_pkcs1 = RsaKeyPair::from_pkcs8(&pkcs8_from_pem(&text).unwrap()).unwrap();
        assert_eq!(from_pkcs1.public_key().as_ref(), key.public_key().as_ref(), "the same key either way");
        assert!(pkcs8_from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
        assert!(pkcs8_from_pem("not pem").is_err());
    }

    #[tokio::test]
    async fn generated_keys_have_the_configured_size() {
        let key = SigningKey::from_pkcs8(&generate_key_der(2048).await.unwrap()).unwrap();
        assert_eq!(key.key_pair.public_modulus_len(), 256);
        assert!(generate_key_der(1024).await.is_err(), "only 2048, 3072 and 4096");
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
        for typ in JwsType::ALL {
            let header: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(key.encoded_header(typ)).unwrap()).unwrap();
            assert_eq!(header, serde_json::json!({"typ": typ.typ(), "alg": "RS256", "kid": key.kid}));
        }
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
