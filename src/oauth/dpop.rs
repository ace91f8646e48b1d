//! DPoP (RFC 9449) at the protocol surface: the proof a token request carries (§5) and
//! the one that accompanies a DPoP-bound access token at `/userinfo` (§7), each turned
//! into its endpoint's error.

use super::error::{BearerError, OAuthError};
use crate::domain::client::Client;
use crate::http::bearer::dpop_proof;
use crate::storage::Storage;
use crate::tokens::dpop::{AcceptedProof, DpopPolicy, ExpectedProof, ProofError};
use crate::tokens::TokenIssuer;
use actix_web::HttpRequest;

/// The proof of a token request, checked after the client authenticated (§5): `None` when
/// the request has none and the client does not require DPoP (§5.2
/// `dpop_bound_access_tokens`): then a Bearer token is issued.
pub async fn token_request_proof(
    req: &HttpRequest,
    client: &Client,
    policy: &DpopPolicy,
    issuer: &TokenIssuer,
    storage: &dyn Storage,
) -> Result<Option<AcceptedProof>, OAuthError> {
    let proof = dpop_proof(req).map_err(|reason| OAuthError::InvalidDpopProof(reason.into()))?;
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
    let url = issuer.issuer.endpoint("/token");
    let expected =
        ExpectedProof { method: "POST", url: &url, access_token: None, requires_nonce: policy.require_nonce };
    match policy.accept(proof, &expected, storage).await {
        Ok(accepted) => Ok(Some(accepted)),
        Err(ProofError::Invalid(reason)) => Err(OAuthError::InvalidDpopProof(reason)),
        Err(ProofError::UseNonce(nonce)) => Err(OAuthError::UseDpopNonce(nonce)),
        Err(ProofError::Storage(error)) => Err(error.into()),
    }
}

/// The proof accompanying a DPoP-bound access token at a resource endpoint of Tessera's own
/// (§7.1): `htm` the request's method, `htu` the endpoint under the issuer, `ath` the
/// token's hash, and its key the one the token is bound to (`cnf.jkt`). No server nonce
/// is asked for here (§9 makes them optional for resources).
pub async fn resource_request_proof(
    req: &HttpRequest,
    path: &str,
    access_token: &str,
    bound_jkt: &str,
    policy: &DpopPolicy,
    issuer: &TokenIssuer,
    storage: &dyn Storage,
) -> Result<(), BearerError> {
    let proof = dpop_proof(req)
        .map_err(|reason| BearerError::InvalidDpopProof(reason.into()))?
        .ok_or_else(|| BearerError::InvalidDpopProof("a DPoP-bound access token needs a DPoP proof".into()))?;
    let url = issuer.issuer.endpoint(path);
    let expected = ExpectedProof {
        method: req.method().as_str(),
        url: &url,
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
