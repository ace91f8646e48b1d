//! Finding the `jwks_uri` (and the `introspection_endpoint`, RFC 8414 §2) through OpenID
//! Connect Discovery 1.0 (§4), once, when the verifier is built.

use crate::http::{Fetched, HttpFetcher};
use crate::{BuildError, DiscoveryError, FetchError};
use serde::Deserialize;
use url::Url;

/// The provider metadata members used here (OpenID Connect Discovery 1.0 §3).
#[derive(Deserialize)]
struct ProviderMetadata {
    issuer: String,
    jwks_uri: String,
    /// Only the revocation feed needs it, to get its own access token.
    #[cfg_attr(not(feature = "revocations"), allow(dead_code))]
    #[serde(default)]
    token_endpoint: Option<String>,
    /// RFC 8414 §2 (OAuth 2.0 Authorization Server Metadata), which Tessera publishes in
    /// its OpenID discovery document too; only introspection needs it.
    #[serde(default)]
    introspection_endpoint: Option<String>,
}

/// What discovery tells a verifier.
pub(crate) struct Provider {
    pub jwks_uri: Url,
    /// As published, unchecked: only the revocation feed uses it, and checks it then.
    #[cfg_attr(not(feature = "revocations"), allow(dead_code))]
    pub token_endpoint: Option<String>,
    /// As published, unchecked: only introspection uses it, and checks it then.
    pub introspection_endpoint: Option<String>,
}

/// The `jwks_uri` (and `token_endpoint`) of `issuer`, after checking that the document
/// speaks for exactly that issuer (§4.3): otherwise a wrong URL or a hostile document could
/// substitute another issuer's keys.
pub(crate) async fn discover(fetcher: &HttpFetcher, issuer: &str) -> Result<Provider, BuildError> {
    // §4: the issuer with any trailing slash removed, then the well-known path.
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let url = Url::parse(&url).map_err(|source| BuildError::IssuerNotUrl { issuer: issuer.to_owned(), source })?;
    let body = match fetcher.get(&url, None).await.map_err(DiscoveryError::Unavailable)? {
        Fetched::Body { body, .. } => body,
        // Only conditional requests accept 304, so this arm is an `Err` in practice.
        Fetched::NotModified { .. } => return Err(DiscoveryError::Unavailable(FetchError::status(&url, 304)).into()),
    };
    let metadata: ProviderMetadata =
        serde_json::from_slice(&body).map_err(|e| DiscoveryError::Unavailable(FetchError::invalid(&url, e)))?;
    if metadata.issuer != issuer {
        return Err(DiscoveryError::IssuerMismatch { expected: issuer.to_owned(), found: metadata.issuer }.into());
    }
    let jwks_uri = Url::parse(&metadata.jwks_uri)
        .map_err(|source| DiscoveryError::JwksUriNotUrl { jwks_uri: metadata.jwks_uri, source })?;
    if !matches!(jwks_uri.scheme(), "https" | "http") {
        return Err(DiscoveryError::JwksUriNotHttp { jwks_uri }.into());
    }
    Ok(Provider {
        jwks_uri,
        token_endpoint: metadata.token_endpoint,
        introspection_endpoint: metadata.introspection_endpoint,
    })
}
