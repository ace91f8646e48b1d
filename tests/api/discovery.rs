//! Provider metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2): what it lists is
//! what is implemented, and both documents are the same.

use crate::helpers::TestApp;

async fn openid_configuration_describes_what_is_implemented(app: &TestApp) {
    let response = app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let doc: serde_json::Value = response.json().await.unwrap();
    // OpenID Connect Discovery §3: issuer equals the configured issuer exactly.
    assert_eq!(doc["issuer"], app.address.as_str());
    assert_eq!(doc["token_endpoint"], app.url("/token"));
    assert_eq!(doc["jwks_uri"], app.url("/jwks.json"));
    assert_eq!(doc["authorization_endpoint"], app.url("/authorize"));
    assert_eq!(doc["userinfo_endpoint"], app.url("/userinfo"));
    assert_eq!(doc["end_session_endpoint"], app.url("/logout"));
    assert_eq!(doc["revocation_endpoint"], app.url("/revoke"));
    assert_eq!(doc["introspection_endpoint"], app.url("/introspect"));
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(doc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"])
    );
    // RFC 8414 §2: the algorithms of private_key_jwt assertions, at every endpoint that takes them.
    for endpoint in ["token", "revocation", "introspection"] {
        let algs = &doc[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")];
        assert_eq!(algs, &serde_json::json!(["RS256", "ES256", "EdDSA"]), "{endpoint}");
    }
    assert!(doc["introspection_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&"private_key_jwt".into()));
    // RFC 9126 §5.
    assert_eq!(doc["pushed_authorization_request_endpoint"], app.url("/par"));
    assert_eq!(doc["require_pushed_authorization_requests"], false);
    assert!(doc["scopes_supported"].as_array().unwrap().contains(&serde_json::json!("offline_access")));
    assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));
    assert_eq!(doc["subject_types_supported"], serde_json::json!(["public"]));
    // RFC 8628 §4.
    assert_eq!(doc["device_authorization_endpoint"], app.url("/device_authorization"));
    // Nothing advertised that does not exist yet.
    assert!(doc.get("registration_endpoint").is_none(), "registration_endpoint is advertised but not implemented");
}

async fn oauth_authorization_server_metadata_matches(app: &TestApp) {
    let oidc: serde_json::Value =
        app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    let response = app.http.get(app.url("/.well-known/oauth-authorization-server")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let rfc8414: serde_json::Value = response.json().await.unwrap();
    assert_eq!(rfc8414, oidc);
}

crate::backend_tests!(openid_configuration_describes_what_is_implemented, oauth_authorization_server_metadata_matches);
