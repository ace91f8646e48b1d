//! The JWS algorithms a verifier can be told to accept (RFC 7518 §3.1, RFC 8037 §3.1).

use aws_lc_rs::signature::{self, RsaParameters, VerificationAlgorithm};
use std::fmt;
use std::str::FromStr;

/// An asymmetric JWS signature algorithm (RFC 7518 §3.3, §3.4 and §3.5, RFC 8037 §3.1).
///
/// There is deliberately no variant for `none` (RFC 7518 §3.6) or for the HMAC
/// algorithms `HS256`/`HS384`/`HS512` (§3.2): a verifier cannot be configured to
/// accept them, so a token that names them is always refused. This is what makes
/// the algorithm-confusion attack (an HMAC "signed" with the issuer's public key)
/// impossible, whatever the allow-list says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256: what Tessera signs with, and the default.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256 and MGF1 with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384 and MGF1 with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512 and MGF1 with SHA-512.
    PS512,
    /// ECDSA with the P-256 curve and SHA-256 (RFC 7518 §3.4): the signature is `R || S`,
    /// 64 octets, not DER.
    ES256,
    /// EdDSA (RFC 8037 §3.1) with Ed25519 only: the only curve of RFC 8037 that
    /// aws-lc verifies, and what DPoP and `private_key_jwt` clients use.
    EdDSA,
}

/// The key type (`kty`, RFC 7517 §4.1) and curve an algorithm needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// `kty` `RSA` (RFC 7518 §6.3).
    Rsa,
    /// `kty` `EC`, `crv` `P-256` (RFC 7518 §6.2).
    P256,
    /// `kty` `OKP`, `crv` `Ed25519` (RFC 8037 §2).
    Ed25519,
}

impl Algorithm {
    pub(crate) const ALL: [Algorithm; 8] =
        [Self::RS256, Self::RS384, Self::RS512, Self::PS256, Self::PS384, Self::PS512, Self::ES256, Self::EdDSA];

    /// The `alg` header value (RFC 7518 §3.1).
    pub fn name(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    /// Exact, case-sensitive match: JOSE algorithm names are case-sensitive (RFC 7515 §4.1.1).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The key type and curve this algorithm signs with.
    pub(crate) fn key_kind(self) -> KeyKind {
        match self {
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => KeyKind::Rsa,
            Self::ES256 => KeyKind::P256,
            Self::EdDSA => KeyKind::Ed25519,
        }
    }

    /// aws-lc parameters of the RSA algorithms, `None` for the others. All of them refuse
    /// RSA keys below 2048 bits.
    pub(crate) fn rsa_parameters(self) -> Option<&'static RsaParameters> {
        Some(match self {
            Self::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Self::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Self::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Self::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Self::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            Self::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
            Self::ES256 | Self::EdDSA => return None,
        })
    }

    /// aws-lc parameters of the algorithms whose keys are points: the `_FIXED` ECDSA
    /// variant, since a JWS carries `R || S` rather than DER (RFC 7518 §3.4).
    pub(crate) fn point_parameters(self) -> Option<&'static dyn VerificationAlgorithm> {
        match self {
            Self::ES256 => Some(&signature::ECDSA_P256_SHA256_FIXED),
            Self::EdDSA => Some(&signature::ED25519),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses an `alg` name such as `"RS256"`, for configuration files. `"none"` and
/// `"HS256"` fail like any unknown name.
impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(name: &str) -> Result<Self, UnknownAlgorithm> {
        Self::from_name(name).ok_or(UnknownAlgorithm)
    }
}

/// A name that is not an [`Algorithm`]: unknown, misspelt (names are case-sensitive), or
/// one that is never accepted (`none`, the HMAC algorithms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a JWS algorithm this crate verifies (RS256, RS384, RS512, PS256, PS384, PS512, ES256, EdDSA)")]
pub struct UnknownAlgorithm;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.name().parse::<Algorithm>().unwrap(), alg);
        }
    }

    #[test]
    fn each_algorithm_has_exactly_one_kind_of_parameters() {
        for alg in Algorithm::ALL {
            let is_rsa = alg.key_kind() == KeyKind::Rsa;
            assert_eq!(alg.rsa_parameters().is_some(), is_rsa, "{alg}");
            assert_eq!(alg.point_parameters().is_some(), !is_rsa, "{alg}");
        }
    }

    #[test]
    fn none_and_hmac_cannot_be_named() {
        for name in [
            "none", "None", "NONE", "HS256", "HS384", "HS512", "rs256", "RS256 ", "es256", "ES384", "Ed25519", "EDDSA",
            "",
        ] {
            assert!(name.parse::<Algorithm>().is_err(), "{name:?} must not parse");
        }
    }
}
