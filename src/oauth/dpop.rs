//! DPoP (RFC 9449) at the protocol surface: the proof a token request carries (§5) and
//! the one that accompanies a DPoP-bound access token at `/userinfo` (§7), each turned
//! into its endpoint's error.

use super::error::{BearerError, OAuthError};
use crate::domain::client::Client;
use crate::storage::Storage;
use crate::tokens::dpop::{AcceptedProof, DpopPolicy, ExpectedProof, ProofError};
use actix_web::HttpRequest;
use tessera_verify::dpop::single_proof;

/// The request's one `DPoP` header, if any (§4.3 check 1: several are refused).
fn dpop_header(req: &HttpRequest) -> Result<Option<&str>, &'static str> {
    single_proof(req.headers().get_all("dpop").map(|value| value.as_bytes())).map_err(|e| e.error_description())
}

/// The proof of a token request, checked after the client authenticated (§5): `None` when
/// the request has none and the client does not require DPoP (§5.2
/// `dpop_bound_access_tokens`): then a Bearer token is issued.
pub async fn token_request_proof(
    req: &HttpRequest,
    client: &Client,
    policy: &DpopPolicy,
    storage: &dyn Storage,
) -> Result<Option<AcceptedProof>, OAuthError> {
    let proof = dpop_header(req).map_err(|reason| OAuthError::InvalidDpopProof(reason.into()))?;
    let Some(proof) = proof else {
        if client.dpop_bound_access_tokens {
            return Err(OAuthError::InvalidDpopProof(
                "DPoP proof required: the client is registered for DPoP-bound access tokens".into(),
            ));
        }
        return Ok(None);
    };
    // htu is the token endpoint as the configured issuer names it, never as the Host
    // header does: behind a proxy the request's own URL may differ, and it is the client's
    // view (the discovery document's) that the proof covers.
    let expected = ExpectedProof {
        method: "POST",
        url: &policy.token_endpoint,
        access_token: None,
        requires_nonce: policy.require_nonce,
    };
    match policy.accept(proof, &expected, storage).await {
        Ok(accepted) => Ok(Some(accepted)),
        Err(ProofError::Invalid(reason)) => Err(OAuthError::InvalidDpopProof(reason)),
        Err(ProofError::UseNonce(nonce)) => Err(OAuthError::UseDpopNonce(nonce)),
        Err(ProofError::Storage(error)) => Err(error.into()),
    }
}

/// The proof accompanying a DPoP-bound access token at `/userinfo` (§7.1): `htm` the
/// request's method, `htu` the endpoint under the issuer, `ath` the
/// token's hash, and its key the one the token is bound to (`cnf.jkt`). No server nonce
/// is asked for here (§9 makes them optional for resources).
pub async fn userinfo_proof(
    req: &HttpRequest,
    access_token: &str,
    bound_jkt: &str,
    policy: &DpopPolicy,
    storage: &dyn Storage,
) -> Result<(), BearerError> {
    let proof = dpop_header(req)
        .map_err(|reason| BearerError::InvalidDpopProof(reason.into()))?
        .ok_or_else(|| BearerError::InvalidDpopProof("a DPoP-bound access token needs a DPoP proof".into()))?;
    let expected = ExpectedProof {
        method: req.method().as_str(),
        url: &policy.userinfo_endpoint,
        access_token: Some(access_token),
        requires_nonce: false,
    };
    // The key is compared before the proof is recorded, so that a proof made with another
    // key leaves no row behind.
    let accepted = policy.accept_bound(proof, &expected, bound_jkt, storage).await.map_err(|error| match error {
        ProofError::Invalid(reason) => BearerError::InvalidDpopProof(reason),
        // Not asked for (requires_nonce is false); refused the same way if it ever is.
        ProofError::UseNonce(_) => BearerError::InvalidDpopProof("a DPoP nonce is required".into()),
        ProofError::Storage(error) => error.into(),
    })?;
    debug_assert_eq!(accepted.jkt, bound_jkt);
    Ok(())
}
