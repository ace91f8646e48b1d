//! PKCE (RFC 7636). Tessera accepts `S256` only (RFC 9700 §2.1.1: `plain` protects nothing
//! against an attacker who can read the authorization request).

use super::InvalidParameter;
use aws_lc_rs::digest::{digest, SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use subtle::ConstantTimeEq;

fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~".contains(c)
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(verifier))`, which is exactly 43 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// Parses `code_challenge` and `code_challenge_method` (§4.3); only S256 is accepted.
    pub fn parse(challenge: Option<&str>, method: Option<&str>) -> Result<Self, InvalidParameter> {
        let challenge =
            challenge.ok_or_else(|| InvalidParameter::new("code_challenge", "PKCE is required (RFC 9700 §2.1.1)"))?;
        match method {
            Some("S256") => {}
            Some("plain") | None => {
                return Err(InvalidParameter::new("code_challenge_method", "only S256 is supported; plain is refused"))
            }
            Some(other) => {
                return Err(InvalidParameter::new("code_challenge_method", format!("`{other}` is not supported")))
            }
        }
        if challenge.len() != 43 || !challenge.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(InvalidParameter::new(
                "code_challenge",
                "must be the 43-character base64url SHA-256 of the verifier",
            ));
        }
        Ok(Self(challenge.to_owned()))
    }

    /// Wraps a challenge read back from storage.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// RFC 7636 §4.6: does `verifier` hash to this challenge? Constant time.
    pub fn is_satisfied_by(&self, verifier: &CodeVerifier) -> bool {
        let computed = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.0.as_bytes()));
        computed.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

/// RFC 7636 §4.1: 43–128 unreserved characters.
pub struct CodeVerifier(String);

impl CodeVerifier {
    pub fn parse(raw: &str) -> Result<Self, InvalidParameter> {
        if !(43..=128).contains(&raw.len()) || !raw.chars().all(is_unreserved) {
            return Err(InvalidParameter::new(
                "code_verifier",
                "must be 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1)",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// RFC 7636 §4.2 S256 challenge of this verifier, for comparison with a stored one
    /// (challenges are public: they travel in the front channel).
    pub fn s256_challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(digest(&SHA256, self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    #[test]
    fn rfc7636_appendix_b_pair_matches() {
        let verifier = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        let challenge =
            CodeChallenge::parse(Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), Some("S256")).unwrap();
        assert!(challenge.is_satisfied_by(&verifier));
        let other = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl").unwrap();
        assert!(!challenge.is_satisfied_by(&other));
    }

    #[test]
    fn plain_and_missing_methods_are_refused() {
        let challenge = Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(CodeChallenge::parse(challenge, Some("plain")).is_err());
        assert!(CodeChallenge::parse(challenge, None).is_err());
        assert!(CodeChallenge::parse(None, Some("S256")).is_err());
        assert!(CodeChallenge::parse(Some("short"), Some("S256")).is_err());
    }

    #[test]
    fn verifier_length_and_alphabet() {
        assert!(CodeVerifier::parse(&"a".repeat(42)).is_err());
        assert!(CodeVerifier::parse(&"a".repeat(129)).is_err());
        assert!(CodeVerifier::parse(&format!("{}+", "a".repeat(43))).is_err());
        assert!(CodeVerifier::parse(&"a".repeat(128)).is_ok());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// RFC 7636 §4.1: `code-verifier = 43*128unreserved`.
        const VERIFIER: &str = "[A-Za-z0-9._~-]{43,128}";

        /// RFC 7636 §4.2, computed here rather than through the code under test.
        fn s256(verifier: &str) -> String {
            URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
        }

        /// A character outside `allowed`: mostly ASCII (the near misses: base64's `+`, `/`
        /// and `=`, or `.` and `~` in a challenge), sometimes anything else.
        fn outside(allowed: &'static str) -> impl Strategy<Value = char> {
            let ascii: Vec<char> = (0u8..0x80).map(char::from).filter(|c| !allowed.contains(*c)).collect();
            prop_oneof![
                3 => proptest::sample::select(ascii),
                1 => any::<char>().prop_filter("not ASCII", |c| !c.is_ascii()),
            ]
        }

        // Written out from RFC 7636 §4.1 and RFC 4648 §5 rather than through the code under test.
        const UNRESERVED: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
        const BASE64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

        fn not_unreserved() -> impl Strategy<Value = char> {
            outside(UNRESERVED)
        }

        fn not_base64url() -> impl Strategy<Value = char> {
            outside(BASE64URL)
        }

        proptest! {
            #[test]
            fn the_s256_challenge_of_a_valid_verifier_parses_and_is_satisfied(raw in VERIFIER) {
                let verifier = CodeVerifier::parse(&raw).unwrap();
                let challenge = CodeChallenge::parse(Some(&s256(&raw)), Some("S256")).unwrap();
                prop_assert!(challenge.is_satisfied_by(&verifier));
            }

            #[test]
            fn any_other_verifier_fails(raw in VERIFIER, other in VERIFIER) {
                prop_assume!(raw != other);
                let challenge = CodeChallenge::parse(Some(&s256(&raw)), Some("S256")).unwrap();
                prop_assert!(!challenge.is_satisfied_by(&CodeVerifier::parse(&other).unwrap()));
            }

            #[test]
            fn a_one_character_change_fails(raw in VERIFIER, at in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9._~-]") {
                let i = at.index(raw.len());
                let mut other = raw.clone();
                other.replace_range(i..=i, &replacement);
                prop_assume!(other != raw);
                let challenge = CodeChallenge::parse(Some(&s256(&raw)), Some("S256")).unwrap();
                prop_assert!(!challenge.is_satisfied_by(&CodeVerifier::parse(&other).unwrap()));
            }

            #[test]
            fn challenges_of_another_length_are_refused(raw in "[A-Za-z0-9_-]{0,100}") {
                prop_assume!(raw.len() != 43);
                prop_assert!(CodeChallenge::parse(Some(&raw), Some("S256")).is_err());
            }

            #[test]
            fn challenges_outside_base64url_are_refused(
                prefix in "[A-Za-z0-9_-]{0,42}",
                bad in not_base64url(),
                suffix in "[A-Za-z0-9_-]{42}",
            ) {
                // 43 characters, one of them not base64url (and maybe more than 43 bytes).
                let raw = format!("{prefix}{bad}{}", &suffix[prefix.len()..]);
                prop_assert_eq!(raw.chars().count(), 43);
                prop_assert!(CodeChallenge::parse(Some(&raw), Some("S256")).is_err(), "{:?}", raw);
            }

            #[test]
            fn forty_three_base64url_characters_are_a_challenge(raw in "[A-Za-z0-9_-]{43}") {
                prop_assert!(CodeChallenge::parse(Some(&raw), Some("S256")).is_ok());
            }

            #[test]
            fn verifiers_of_another_length_are_refused(
                raw in prop_oneof!["[A-Za-z0-9._~-]{0,42}", "[A-Za-z0-9._~-]{129,300}"],
            ) {
                prop_assert!(CodeVerifier::parse(&raw).is_err());
            }

            #[test]
            fn verifiers_outside_the_unreserved_alphabet_are_refused(
                raw in VERIFIER,
                at in any::<prop::sample::Index>(),
                bad in not_unreserved(),
            ) {
                let i = at.index(raw.len());
                let mut other = raw.clone();
                other.replace_range(i..=i, bad.encode_utf8(&mut [0; 4]));
                prop_assert!(CodeVerifier::parse(&other).is_err(), "{:?}", other);
            }
        }
    }
}
