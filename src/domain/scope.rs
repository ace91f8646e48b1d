//! Scopes (RFC 6749 §3.3): `scope = scope-token *( SP scope-token )`,
//! `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.

use super::InvalidParameter;
use std::collections::BTreeSet;
use std::fmt;

/// A set of scope tokens. Order carries no meaning (§3.3), so it is kept sorted, which
/// also makes the `scope` claim and response deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<String>);

impl ScopeSet {
    /// Parses a space-delimited scope string. Tokens are separated by single spaces;
    /// repeated spaces are tolerated, as clients in the wild send them.
    pub fn parse(raw: &str) -> Result<Self, InvalidParameter> {
        let mut set = BTreeSet::new();
        for token in raw.split(' ').filter(|t| !t.is_empty()) {
            if !token.bytes().all(is_scope_char) {
                return Err(InvalidParameter::new(
                    "scope",
                    format!("`{token}` has a character not allowed by RFC 6749 §3.3"),
                ));
            }
            set.insert(token.to_owned());
        }
        Ok(Self(set))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.union(&other.0).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for token in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_sorts() {
        let scopes = ScopeSet::parse("b a  c a").unwrap();
        assert_eq!(scopes.to_string(), "a b c");
    }

    #[test]
    fn rejects_characters_outside_nqchar() {
        for bad in ["a\"b", "a\\b", "é", "a\tb", "a\u{7f}"] {
            assert!(ScopeSet::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ScopeSet::parse("invoices:read https://api.example.com/x.write").is_ok());
    }

    #[test]
    fn subset_rules() {
        let allowed = ScopeSet::parse("a b c").unwrap();
        assert!(ScopeSet::parse("a c").unwrap().is_subset_of(&allowed));
        assert!(ScopeSet::parse("").unwrap().is_subset_of(&allowed));
        assert!(!ScopeSet::parse("a d").unwrap().is_subset_of(&allowed));
    }
}
