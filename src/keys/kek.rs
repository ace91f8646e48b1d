//! The key-encryption key (KEK): AES-256-GCM protection for signing keys at rest.
//!
//! Taken from `key_encryption_key` (`TESSERA_KEY_ENCRYPTION_KEY`) or, when unset, from
//! `<keys_dir>/kek`, which is generated (mode 0600) only while the database holds no
//! keys yet: a database whose keys exist but whose KEK is missing must not silently
//! get a new one.

use crate::private_files;
use anyhow::{anyhow, bail, Context};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hkdf::{Prk, Salt, HKDF_SHA256};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use std::path::{Path, PathBuf};

pub const KEK_FILE_NAME: &str = "kek";

pub struct KeyEncryptionKey {
    key: LessSafeKey,
    /// HKDF-Extract of the same bytes, from which keys for other purposes are derived.
    prk: Prk,
}

/// Where the KEK came from, for the startup log and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekSource {
    Setting,
    File(PathBuf),
    Generated(PathBuf),
}

impl KeyEncryptionKey {
    /// 32 bytes as base64 (standard or URL-safe, padded or not) or 64 hex digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = decode_key_text(text)
            .ok_or("it must be 32 bytes encoded as base64 or 64 hex digits (e.g. `openssl rand -base64 32`)")?;
        Ok(Self::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8; 32]) -> Self {
        let key = UnboundKey::new(&AES_256_GCM, bytes).expect("32 bytes is an AES-256 key");
        let prk = Salt::new(HKDF_SHA256, b"tessera kek v1").extract(bytes);
        Self { key: LessSafeKey::new(key), prk }
    }

    /// Finds the KEK; `database_has_keys` forbids generating a new one.
    pub fn resolve(
        setting: Option<&str>,
        keys_dir: &Path,
        database_has_keys: bool,
    ) -> anyhow::Result<(Self, KekSource)> {
        if let Some(text) = setting {
            let kek = Self::parse(text)
                .map_err(|why| anyhow!("invalid setting `key_encryption_key` (TESSERA_KEY_ENCRYPTION_KEY, or the file TESSERA_KEY_ENCRYPTION_KEY_FILE names): {why}"))?;
            return Ok((kek, KekSource::Setting));
        }
        let path = keys_dir.join(KEK_FILE_NAME);
        if path.exists() {
            private_files::tighten(&path, "key-encryption key file");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the key-encryption key file {}", path.display()))?;
            let kek = Self::parse(&text)
                .map_err(|why| anyhow!("invalid key-encryption key file {}: {why}", path.display()))?;
            return Ok((kek, KekSource::File(path)));
        }
        if database_has_keys {
            bail!(
                "the database holds signing keys, but no key-encryption key is available to decrypt them: \
                 set TESSERA_KEY_ENCRYPTION_KEY (setting `key_encryption_key`) to the key they were created with, \
                 or restore the file {}",
                path.display()
            );
        }
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).map_err(|_| anyhow!("the OS random number generator failed"))?;
        write_private_file(&path, format!("{}\n", STANDARD.encode(bytes)).as_bytes()).with_context(|| {
            format!("cannot create the key-encryption key file {} (setting `keys_dir`)", path.display())
        })?;
        Ok((Self::from_bytes(&bytes), KekSource::Generated(path)))
    }

    /// A 256-bit HMAC-SHA256 key for one `purpose`, derived with HKDF (RFC 5869), so every
    /// replica sharing the KEK derives the same key and no two purposes share one.
    pub fn derive_hmac_key(&self, purpose: &[u8]) -> hmac::Key {
        let info = [purpose];
        let okm = self.prk.expand(&info, hmac::HMAC_SHA256).expect("32 bytes is within HKDF-SHA256's output limit");
        hmac::Key::from(okm)
    }

    /// `nonce || ciphertext || tag`; `aad` binds the ciphertext to its key id.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| anyhow!("the OS random number generator failed"))?;
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buffer)
            .map_err(|_| anyhow!("encryption failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + buffer.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buffer);
        Ok(out)
    }

    /// Reverses [`seal`](Self::seal); fails when the key, the AAD or the data differ.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, WrongKey> {
        if sealed.len() < NONCE_LEN {
            return Err(WrongKey);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| WrongKey)?;
        let mut buffer = ciphertext.to_vec();
        let plaintext = self.key.open_in_place(nonce, Aad::from(aad), &mut buffer).map_err(|_| WrongKey)?;
        Ok(plaintext.to_vec())
    }
}

/// Decryption failed: a different KEK, or tampered data.
#[derive(Debug, thiserror::Error)]
#[error("authenticated decryption failed")]
pub struct WrongKey;

fn decode_key_text(text: &str) -> Option<[u8; 32]> {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut out = [0u8; 32];
        for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
            out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
        }
        return Some(out);
    }
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .and_then(|bytes| bytes.try_into().ok())
}

/// Creates `path` (0600, and its directory 0700 when missing) readable by the owner
/// only; never overwrites.
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|dir| !dir.exists()) {
        private_files::create_dir_all(dir)?;
    }
    let mut file = private_files::create_new(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_B64: &str = "dGVzc2VyYS10ZXN0LWtleS1lbmNyeXB0aW9uLWtleSE=";

    #[test]
    fn parses_base64_and_hex_and_rejects_other_lengths() {
        assert!(KeyEncryptionKey::parse(KEY_B64).is_ok());
        assert!(KeyEncryptionKey::parse(&"ab".repeat(32)).is_ok());
        assert!(KeyEncryptionKey::parse("c2hvcnQ=").is_err());
        assert!(KeyEncryptionKey::parse("not a key").is_err());
    }

    #[test]
    fn seal_and_open_round_trip_and_bind_aad() {
        let kek = KeyEncryptionKey::parse(KEY_B64).unwrap();
        let sealed = kek.seal(b"private key", b"kid-1").unwrap();
        assert_eq!(kek.open(&sealed, b"kid-1").unwrap(), b"private key");
        assert!(kek.open(&sealed, b"kid-2").is_err());
        let other = KeyEncryptionKey::parse(&"ab".repeat(32)).unwrap();
        assert!(other.open(&sealed, b"kid-1").is_err());
        assert!(kek.open(&sealed[..5], b"kid-1").is_err());
    }

    #[test]
    fn generates_a_private_file_once_and_refuses_when_keys_exist() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("keys");
        let err = KeyEncryptionKey::resolve(None, &dir, true).err().unwrap().to_string();
        assert!(err.contains("TESSERA_KEY_ENCRYPTION_KEY"), "{err}");

        let (_, source) = KeyEncryptionKey::resolve(None, &dir, false).unwrap();
        let path = dir.join(KEK_FILE_NAME);
        assert_eq!(source, KekSource::Generated(path.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "the keys directory");
        }
        let (_, source) = KeyEncryptionKey::resolve(None, &dir, true).unwrap();
        assert_eq!(source, KekSource::File(path.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            KeyEncryptionKey::resolve(None, &dir, true).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "an existing 0644 file");
        }
    }

    #[test]
    fn bad_setting_is_named() {
        let err = KeyEncryptionKey::resolve(Some("nope"), Path::new("/nonexistent"), false).err().unwrap().to_string();
        assert!(err.contains("key_encryption_key"), "{err}");
    }
}
