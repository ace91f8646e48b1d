//! Finding the `jwks_uri` through OpenID Connect Discovery 1.0 (§4), once, when the
//! verifier is built.

use crate::http::{Fetched, HttpFetcher};
use crate::VerifyError;
use serde::Deserialize;
use url::Url;

/// The provider metadata members used here (OpenID Connect Discovery 1.0 §3).
#[derive(Deserialize)]
struct ProviderMetadata {
    issuer: String,
    jwks_uri: String,
}

/// The `jwks_uri` of `issuer`, after checking that the document speaks for exactly
/// that issuer (§4.3): otherwise a wrong URL or a hostile document could substitute
/// another issuer's keys.
pub(crate) async fn jwks_uri(fetcher: &HttpFetcher, issuer: &str) -> Result<Url, VerifyError> {
    // §4: the issuer with any trailing slash removed, then the well-known path.
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let url = Url::parse(&url).map_err(|e| VerifyError::Configuration(format!("issuer {issuer:?}: {e}")))?;
    let body = match fetcher.get(&url, None).await.map_err(VerifyError::Discovery)? {
        Fetched::Body { body, .. } => body,
        Fetched::NotModified { .. } => return Err(VerifyError::Discovery(format!("{url}: HTTP 304"))),
    };
    let metadata: ProviderMetadata = serde_json::from_slice(&body)
        .map_err(|e| VerifyError::Discovery(format!("{url} is not OpenID provider metadata: {e}")))?;
    if metadata.issuer != issuer {
        return Err(VerifyError::Discovery(format!(
            "{url} describes the issuer {:?}, not the configured {issuer:?}",
            metadata.issuer
        )));
    }
    let jwks_uri = Url::parse(&metadata.jwks_uri)
        .map_err(|e| VerifyError::Discovery(format!("{url}: jwks_uri {:?} is not a URL: {e}", metadata.jwks_uri)))?;
    if !matches!(jwks_uri.scheme(), "https" | "http") {
        return Err(VerifyError::Discovery(format!("{url}: jwks_uri {jwks_uri} is not an http(s) URL")));
    }
    Ok(jwks_uri)
}
