//! The token request, parsed from the form into one variant per grant, so each missing
//! or malformed parameter gets its exact RFC 6749 error before any work is done.

use crate::domain::client::GrantType;
use crate::domain::pkce::CodeVerifier;
use crate::domain::scope::ScopeSet;
use crate::http::form::FormParams;
use crate::oauth::error::OAuthError;
use url::Url;

pub enum TokenRequest {
    /// RFC 6749 §4.1.3 with RFC 7636 §4.5.
    AuthorizationCode { code: String, redirect_uri: String, verifier: CodeVerifier },
    /// RFC 6749 §6.
    RefreshToken { token: String, scope: Option<ScopeSet> },
    /// RFC 6749 §4.4.2.
    ClientCredentials { scope: Option<ScopeSet>, resources: Vec<String> },
    /// RFC 8628 §3.4.
    DeviceCode { device_code: String },
}

impl TokenRequest {
    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            Self::RefreshToken { .. } => GrantType::RefreshToken,
            Self::ClientCredentials { .. } => GrantType::ClientCredentials,
            Self::DeviceCode { .. } => GrantType::DeviceCode,
        }
    }

    pub fn parse(form: &FormParams) -> Result<Self, OAuthError> {
        let grant_type = form.get("grant_type").ok_or_else(|| OAuthError::invalid_request("missing grant_type"))?;
        match grant_type.parse::<GrantType>() {
            Ok(GrantType::AuthorizationCode) => Ok(Self::AuthorizationCode {
                code: required(form, "code")?.to_owned(),
                redirect_uri: required(form, "redirect_uri")?.to_owned(),
                verifier: CodeVerifier::parse(required(form, "code_verifier")?)
                    .map_err(|e| OAuthError::invalid_request(e.to_string()))?,
            }),
            Ok(GrantType::RefreshToken) => {
                Ok(Self::RefreshToken { token: required(form, "refresh_token")?.to_owned(), scope: scope(form)? })
            }
            Ok(GrantType::ClientCredentials) => {
                Ok(Self::ClientCredentials { scope: scope(form)?, resources: resources(form)? })
            }
            Ok(GrantType::DeviceCode) => {
                Ok(Self::DeviceCode { device_code: required(form, "device_code")?.to_owned() })
            }
            Err(_) => {
                Err(OAuthError::UnsupportedGrantType(format!("grant_type `{grant_type}` is not supported").into()))
            }
        }
    }
}

impl TokenRequest {
    /// A refresh with the token from a first-party SPA's cookie (`refresh_cookie`); the rest
    /// of the request as in the form.
    pub fn refresh_from_cookie(form: &FormParams, token: String) -> Result<Self, OAuthError> {
        Ok(Self::RefreshToken { token, scope: scope(form)? })
    }
}

fn required<'a>(form: &'a FormParams, name: &str) -> Result<&'a str, OAuthError> {
    form.get(name).ok_or_else(|| OAuthError::invalid_request(format!("missing {name}")))
}

/// RFC 6749 §3.3; a malformed scope is `invalid_scope`.
fn scope(form: &FormParams) -> Result<Option<ScopeSet>, OAuthError> {
    form.get("scope")
        .map(|raw| ScopeSet::parse(raw).map_err(|e| OAuthError::InvalidScope(e.to_string().into())))
        .transpose()
}

/// RFC 8707 §2: each `resource` is an absolute URI without a fragment.
fn resources(form: &FormParams) -> Result<Vec<String>, OAuthError> {
    form.get_all("resource")
        .map(|raw| match Url::parse(raw) {
            Ok(url) if url.fragment().is_none() => Ok(raw.to_owned()),
            _ => Err(OAuthError::InvalidTarget(
                format!("resource `{raw}` must be an absolute URI without a fragment").into(),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<TokenRequest, OAuthError> {
        TokenRequest::parse(&FormParams::parse(body.as_bytes()).unwrap())
    }

    #[test]
    fn grant_type_errors() {
        assert_eq!(parse("").err().unwrap().code(), "invalid_request");
        assert_eq!(parse("grant_type=password").err().unwrap().code(), "unsupported_grant_type");
        assert!(parse("grant_type=client_credentials").is_ok());
    }

    #[test]
    fn scope_and_resource_errors() {
        assert_eq!(parse("grant_type=client_credentials&scope=%22").err().unwrap().code(), "invalid_scope");
        assert_eq!(parse("grant_type=client_credentials&resource=relative").err().unwrap().code(), "invalid_target");
        assert_eq!(
            parse("grant_type=client_credentials&resource=https%3A%2F%2Fa%23f").err().unwrap().code(),
            "invalid_target"
        );
    }
}
