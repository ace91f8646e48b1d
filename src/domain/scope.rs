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

    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.intersection(&other.0).cloned().collect())
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

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use proptest::sample::subsequence;

        /// `scope-token = 1*NQCHAR`: `%x21 / %x23-5B / %x5D-7E` (RFC 6749 §3.3, Appendix A).
        const TOKEN: &str = "[\\x21\\x23-\\x5B\\x5D-\\x7E]{1,12}";

        fn tokens() -> impl Strategy<Value = Vec<String>> {
            proptest::collection::vec(TOKEN, 0..12)
        }

        fn set() -> impl Strategy<Value = ScopeSet> {
            tokens().prop_map(|tokens| ScopeSet::parse(&tokens.join(" ")).unwrap())
        }

        /// A set and two chains of subsets beneath it: `a ⊆ b ⊆ c`.
        fn chain() -> impl Strategy<Value = (ScopeSet, ScopeSet, ScopeSet)> {
            tokens().prop_flat_map(|c| {
                let len = c.len();
                subsequence(c.clone(), 0..=len).prop_flat_map(move |b| {
                    let (c, len) = (c.clone(), b.len());
                    subsequence(b.clone(), 0..=len).prop_map(move |a| {
                        let parse = |tokens: &[String]| ScopeSet::parse(&tokens.join(" ")).unwrap();
                        (parse(&a), parse(&b), parse(&c))
                    })
                })
            })
        }

        /// Any character a scope token may not contain, the separator aside: mostly the
        /// ASCII ones (controls, `"`, `\\`, DEL), which a parser is likeliest to let through.
        fn forbidden_char() -> impl Strategy<Value = char> {
            // Written out from the ABNF rather than through `is_scope_char`, which is under test.
            let is_nqchar = |b: u8| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b);
            let ascii: Vec<char> = (0u8..0x80).filter(|&b| b != b' ' && !is_nqchar(b)).map(char::from).collect();
            prop_oneof![
                3 => proptest::sample::select(ascii),
                1 => any::<char>().prop_filter("not ASCII", |c| !c.is_ascii()),
            ]
        }

        proptest! {
            #[test]
            fn parse_then_display_is_sorted_deduplicated_and_single_spaced(
                tokens in tokens(),
                separators in proptest::collection::vec(1usize..4, 12),
            ) {
                let raw: String = tokens.iter().zip(&separators).map(|(t, n)| format!("{t}{}", " ".repeat(*n))).collect();
                let parsed = ScopeSet::parse(&format!("  {raw}")).unwrap();
                let mut canonical = tokens.clone();
                canonical.sort();
                canonical.dedup();
                prop_assert_eq!(parsed.to_string(), canonical.join(" "));
                prop_assert_eq!(parsed.iter().count(), canonical.len());
                prop_assert!(tokens.iter().all(|t| parsed.contains(t)));
            }

            #[test]
            fn display_then_parse_is_the_identity(set in set()) {
                let shown = set.to_string();
                let reparsed = ScopeSet::parse(&shown).unwrap();
                prop_assert_eq!(reparsed.to_string(), shown);
                prop_assert_eq!(reparsed, set);
            }

            #[test]
            fn subset_is_reflexive_and_transitive((a, b, c) in chain(), x in set(), y in set(), z in set()) {
                prop_assert!(a.is_subset_of(&a));
                prop_assert!(a.is_subset_of(&b) && b.is_subset_of(&c));
                prop_assert!(a.is_subset_of(&c));
                if x.is_subset_of(&y) && y.is_subset_of(&z) {
                    prop_assert!(x.is_subset_of(&z));
                }
            }

            #[test]
            fn union_is_the_least_upper_bound(a in set(), b in set(), extra in set(), other in set()) {
                let union = a.union(&b);
                prop_assert!(a.is_subset_of(&union) && b.is_subset_of(&union));
                prop_assert!(union.iter().all(|t| a.contains(t) || b.contains(t)), "nothing else");
                // Any upper bound of both contains the union.
                let bound = union.union(&extra);
                prop_assert!(a.is_subset_of(&bound) && b.is_subset_of(&bound) && union.is_subset_of(&bound));
                if a.is_subset_of(&other) && b.is_subset_of(&other) {
                    prop_assert!(union.is_subset_of(&other));
                }
                prop_assert_eq!(b.union(&a), union.clone());
                prop_assert_eq!(union.union(&a), union);
            }

            #[test]
            fn a_character_outside_nqchar_is_always_rejected(
                before in tokens(),
                prefix in "[\\x21\\x23-\\x5B\\x5D-\\x7E]{0,4}",
                bad in forbidden_char(),
                suffix in "[\\x21\\x23-\\x5B\\x5D-\\x7E]{0,4}",
                after in tokens(),
            ) {
                let raw = format!("{} {prefix}{bad}{suffix} {}", before.join(" "), after.join(" "));
                prop_assert!(ScopeSet::parse(&raw).is_err(), "{:?}", raw);
            }

            #[test]
            fn nqchar_tokens_and_spaces_always_parse(raw in "[ \\x21\\x23-\\x5B\\x5D-\\x7E]{0,40}") {
                prop_assert!(ScopeSet::parse(&raw).is_ok());
            }
        }
    }
}
