//! End users (resource owners, RFC 6749 §1.1), who log in through Tessera's pages.

use super::InvalidParameter;
use chrono::{DateTime, Utc};
use std::fmt;

/// A user's identifier: the `sub` claim (OpenID Connect Core §2), never reassigned.
/// Tessera generates hyphenated v4 UUIDs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// An id presented from outside (a CLI argument, a token's `sub`).
    pub fn parse(raw: &str) -> Result<Self, InvalidParameter> {
        super::parse_identifier("user id", raw).map(Self)
    }

    /// Wraps an id read back from storage.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A login name: 1–64 characters of letters, digits and `. _ - @`, case-folded so
/// `Alice` and `alice` are one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, InvalidParameter> {
        let folded = raw.trim().to_lowercase();
        let allowed = |c: char| c.is_alphanumeric() || ".-_@+".contains(c);
        if folded.is_empty() || folded.chars().count() > 64 || !folded.chars().all(allowed) {
            return Err(InvalidParameter::new("username", "must be 1 to 64 letters, digits or . - _ @ +"));
        }
        Ok(Self(folded))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A plain-text password on its way to argon2; never printed.
pub struct Password(String);

impl Password {
    /// NIST SP 800-63B §5.1.1.2: at least 8 characters; a generous upper bound keeps
    /// hashing cost bounded.
    pub fn parse(raw: String) -> Result<Self, InvalidParameter> {
        let length = raw.chars().count();
        if length < 8 {
            return Err(InvalidParameter::new("password", "must be at least 8 characters"));
        }
        if length > 1024 {
            return Err(InvalidParameter::new("password", "must be at most 1024 characters"));
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A user as stored.
#[derive(Clone, Debug)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// PHC string of the argon2id hash.
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

/// Checks an e-mail address just enough to catch typos; real verification is a mail.
pub fn parse_email(raw: &str) -> Result<String, InvalidParameter> {
    let raw = raw.trim();
    let valid = raw.len() <= 254
        && raw
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.starts_with('.'))
        // Control characters are no part of an address (RFC 5321 §4.1.2), and PostgreSQL's
        // `text` cannot hold U+0000 at all: refused here, not as a 500 from the database.
        && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(InvalidParameter::new("email", format!("`{raw}` is not an e-mail address")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_generated_hyphenated_and_checked_when_presented() {
        let generated = UserId::generate();
        assert!(
            uuid::Uuid::try_parse(generated.as_str()).is_ok_and(|u| u.hyphenated().to_string() == generated.as_str())
        );
        assert_eq!(UserId::parse("5f0c").unwrap().as_str(), "5f0c");
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a\u{0}b").is_err());
        assert!(UserId::parse(&"x".repeat(256)).is_err());
        assert!(UserId::parse(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn usernames_are_case_folded_and_checked() {
        assert_eq!(Username::parse(" Alice ").unwrap().as_str(), "alice");
        assert!(Username::parse("").is_err());
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn passwords_have_bounds_and_hide() {
        assert!(Password::parse("short".into()).is_err());
        let password = Password::parse("correct horse".into()).unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }

    #[test]
    fn emails_are_checked_loosely() {
        assert!(parse_email("alice@example.com").is_ok());
        assert!(parse_email("alice").is_err());
        assert!(parse_email("alice@localhost").is_err());
    }
}
