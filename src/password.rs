//! Human passwords: argon2id (RFC 9106), always on the blocking pool so a burst of
//! logins cannot stall the async workers that issue tokens.

use crate::domain::user::Password;
use anyhow::Context;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::LazyLock;

/// Argon2id with the crate defaults (19 MiB, 2 passes, 1 lane: OWASP's recommendation).
fn hasher() -> Argon2<'static> {
    Argon2::default()
}

/// Hashes a password into a PHC string.
pub async fn hash(password: Password) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
    })
    .await
    .context("password hashing task")?
}

/// A hash of a password nobody knows, verified when the user does not exist so that
/// timing does not reveal which usernames exist.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    hasher().hash_password(b"tessera-dummy-password", &salt).expect("hashing a constant").to_string()
});

/// Verifies `candidate` against `stored` (or the dummy hash when `None`).
pub async fn verify(stored: Option<String>, candidate: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let is_known = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let parsed = PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored password hash is invalid: {e}"))?;
        let matches = hasher().verify_password(candidate.as_bytes(), &parsed).is_ok();
        Ok(is_known && matches)
    })
    .await
    .context("password verification task")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let phc = hash(Password::parse("correct horse".into()).unwrap()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify(Some(phc.clone()), "correct horse".into()).await.unwrap());
        assert!(!verify(Some(phc), "wrong horse".into()).await.unwrap());
        assert!(!verify(None, "tessera-dummy-password".into()).await.unwrap());
    }
}
