//! An independent OAuth client library (the `oauth2` crate) talking to Tessera.

use crate::helpers::clients::ClientSpec;
use crate::helpers::TestApp;
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};

fn http_client() -> oauth2::reqwest::Client {
    oauth2::reqwest::ClientBuilder::new().redirect(oauth2::reqwest::redirect::Policy::none()).build().unwrap()
}

async fn the_oauth2_crate_obtains_a_client_credentials_token(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let oauth = BasicClient::new(ClientId::new(client.id.clone()))
        .set_client_secret(ClientSecret::new(client.secret().to_owned()))
        .set_token_uri(TokenUrl::new(app.url("/token")).unwrap());
    let token = oauth
        .exchange_client_credentials()
        .add_scope(Scope::new("invoices:read".into()))
        .request_async(&http_client())
        .await
        .expect("the oauth2 crate accepts the token response");
    assert_eq!(token.expires_in(), Some(std::time::Duration::from_secs(300)));
    assert_eq!(token.scopes().map(|s| s.len()), Some(1));
    app.verify_access_token(token.access_token().secret(), "https://api.example.com").await;
}

async fn the_oauth2_crate_understands_tessera_errors(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let oauth = BasicClient::new(ClientId::new(client.id.clone()))
        .set_client_secret(ClientSecret::new("tcs_wrong".into()))
        .set_token_uri(TokenUrl::new(app.url("/token")).unwrap());
    match oauth.exchange_client_credentials().request_async(&http_client()).await {
        Err(RequestTokenError::ServerResponse(error)) => {
            assert_eq!(error.error(), &BasicErrorResponseType::InvalidClient)
        }
        other => panic!("expected invalid_client, got {other:?}"),
    }
    let oauth = BasicClient::new(ClientId::new(client.id.clone()))
        .set_client_secret(ClientSecret::new(client.secret().to_owned()))
        .set_token_uri(TokenUrl::new(app.url("/token")).unwrap());
    match oauth.exchange_client_credentials().add_scope(Scope::new("admin".into())).request_async(&http_client()).await
    {
        Err(RequestTokenError::ServerResponse(error)) => {
            assert_eq!(error.error(), &BasicErrorResponseType::InvalidScope)
        }
        other => panic!("expected invalid_scope, got {other:?}"),
    }
}

crate::backend_tests!(the_oauth2_crate_obtains_a_client_credentials_token, the_oauth2_crate_understands_tessera_errors);

/// The `openidconnect` crate as a relying party: discovery, authorization URL with PKCE
/// and nonce, code exchange, ID-token verification (signature, nonce, at_hash), userinfo.
pub(crate) mod openid_connect_relying_party {
    use crate::helpers::browser::{form_tokens, PASSWORD};
    use crate::helpers::clients::{ClientSpec, WEB_APP_REDIRECT_URI};
    use crate::helpers::TestApp;
    use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
    use openidconnect::{
        AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
        PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
    };

    pub(crate) async fn the_openidconnect_crate_completes_the_code_flow(app: &TestApp) {
        let registered = app.register_client(ClientSpec::web_app()).await;
        let user = app.create_user("olivia").await;
        let http = super::http_client();
        let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(app.address.clone()).unwrap(), &http)
            .await
            .expect("the openidconnect crate accepts the discovery document");
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(registered.id.clone()),
            Some(ClientSecret::new(registered.secret().to_owned())),
        )
        .set_redirect_uri(RedirectUrl::new(WEB_APP_REDIRECT_URI.into()).unwrap());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();

        // The browser part: follow the URL, log in, allow.
        let page = app.http.get(url.as_str()).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let consent = app.submit_login(&form_tokens(&page.text().await.unwrap()), "olivia", PASSWORD).await;
        let params = app.finish_consent(consent).await;
        assert_eq!(&params["state"], state.secret());

        let token = client
            .exchange_code(AuthorizationCode::new(params["code"].clone()))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .expect("the code exchange succeeds");
        let id_token = token.id_token().expect("an ID token for the openid scope");
        let id_verifier = client.id_token_verifier();
        let claims = id_token.claims(&id_verifier, &nonce).expect("the ID token verifies (signature, iss, aud, nonce)");
        assert_eq!(claims.subject().as_str(), user.id.as_str());
        let expected = claims.access_token_hash().expect("at_hash");
        let actual = AccessTokenHash::from_token(
            token.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&id_verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(&actual, expected);

        let info: CoreUserInfoClaims = client
            .user_info(token.access_token().to_owned(), None)
            .unwrap()
            .request_async(&http)
            .await
            .expect("userinfo is accepted");
        assert_eq!(info.subject().as_str(), user.id.as_str());
        assert_eq!(info.email().map(|e| e.as_str()), Some("olivia@example.com"));
        assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("olivia"));
    }

    crate::backend_tests!(the_openidconnect_crate_completes_the_code_flow);
}

/// Resource servers in other languages verify Tessera's tokens with their own JOSE
/// libraries: `jose` (Node, strict about `typ: at+jwt`) and PyJWT (Python).
mod other_languages {
    use crate::helpers::clients::ClientSpec;
    use crate::helpers::TestApp;
    use std::path::PathBuf;
    use std::process::Command;

    fn interop_dir(language: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop").join(language)
    }

    /// Runs a verifier script; `None` when its runtime or library is missing outside CI.
    fn run(program: &str, script: PathBuf, ready: bool, args: [&str; 3]) -> Option<serde_json::Value> {
        if !ready {
            assert!(
                std::env::var_os("CI").is_none(),
                "{program} interop dependencies are missing in CI (.ci/run installs them)"
            );
            eprintln!("skipping the {program} interop check: run .ci/run once to install its dependencies");
            return None;
        }
        let output = Command::new(program).arg(script).args(args).output().expect("the interpreter runs");
        assert!(output.status.success(), "{program} rejected the token: {}", String::from_utf8_lossy(&output.stderr));
        Some(serde_json::from_slice(&output.stdout).expect("claims as JSON"))
    }

    async fn token(app: &TestApp) -> (String, String) {
        let client = app.register_client(ClientSpec::service()).await;
        let body: serde_json::Value =
            app.client_credentials(&client.id, client.secret(), &[]).await.json().await.unwrap();
        (body["access_token"].as_str().unwrap().to_owned(), client.id)
    }

    async fn node_jose_verifies_access_tokens(app: &TestApp) {
        let (token, client_id) = token(app).await;
        let ready = interop_dir("node").join("node_modules/jose").is_dir();
        let script = interop_dir("node").join("verify-token.mjs");
        if let Some(claims) = run("node", script, ready, [&app.address, "https://api.example.com", &token]) {
            assert_eq!(claims["client_id"], client_id.as_str());
        }
    }

    async fn python_pyjwt_verifies_access_tokens(app: &TestApp) {
        let (token, client_id) = token(app).await;
        let ready =
            Command::new("python3").args(["-c", "import jwt, cryptography"]).output().is_ok_and(|o| o.status.success());
        let script = interop_dir("python").join("verify_token.py");
        if let Some(claims) = run("python3", script, ready, [&app.address, "https://api.example.com", &token]) {
            assert_eq!(claims["client_id"], client_id.as_str());
        }
    }

    crate::backend_tests!(node_jose_verifies_access_tokens, python_pyjwt_verifies_access_tokens);
}

/// openid-client 6 (Node), an independent client, as a confidential client that
/// authenticates with `private_key_jwt` (RFC 7523) and pushes its authorization requests
/// (RFC 9126): it must accept every response Tessera gives.
pub(crate) mod openid_client_node {
    use crate::helpers::browser::{form_tokens, location, PASSWORD};
    use crate::helpers::clients::{ClientSpec, WEB_APP_REDIRECT_URI};
    use crate::helpers::node::run_script;
    use crate::helpers::TestApp;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    use serde_json::{json, Value};
    use tessera::domain::client::{AuthMethod, KeySource};

    /// Runs `client.mjs` with `args` (see `helpers::node::run_script`).
    async fn run(args: &[&str]) -> Option<Value> {
        run_script("client.mjs", args).await
    }

    /// A P-256 key: its PKCS#8 DER in base64 (for the script) and its public JWK Set.
    fn client_key() -> (String, String, String) {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let kid = format!("node-{}", uuid::Uuid::new_v4().simple());
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        (STANDARD.encode(pkcs8.as_ref()), kid, json!({ "keys": [jwk] }).to_string())
    }

    pub(crate) async fn openid_client_gets_a_token_with_private_key_jwt(app: &TestApp) {
        let (pkcs8, kid, jwks) = client_key();
        let client = app
            .register_client(ClientSpec {
                auth_method: AuthMethod::PrivateKeyJwt,
                keys: Some(KeySource::Jwks(jwks)),
                ..ClientSpec::service()
            })
            .await;
        let Some(tokens) = run(&["credentials", &app.address, &client.id, &pkcs8, &kid]).await else { return };
        let claims = app.verify_access_token(tokens["access_token"].as_str().unwrap(), "https://api.example.com").await;
        assert_eq!(claims["client_id"], client.id.as_str());
        assert_eq!(tokens["scope"], "invoices:read");
    }

    pub(crate) async fn openid_client_pushes_its_request_and_redeems_the_code(app: &TestApp) {
        let (pkcs8, kid, jwks) = client_key();
        let client = app
            .register_client(ClientSpec {
                auth_method: AuthMethod::PrivateKeyJwt,
                keys: Some(KeySource::Jwks(jwks)),
                require_pushed_authorization_requests: true,
                ..ClientSpec::web_app()
            })
            .await;
        let user = app.create_user("nora").await;
        let Some(pushed) = run(&["par", &app.address, &client.id, &pkcs8, &kid, WEB_APP_REDIRECT_URI]).await else {
            return;
        };
        let url = pushed["url"].as_str().unwrap();
        assert!(url.contains("request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3A"), "{url}");
        let page = app.http.get(url).send().await.unwrap();
        assert_eq!(page.status(), 200, "the login page");
        let mut response = app.submit_login(&form_tokens(&page.text().await.unwrap()), "nora", PASSWORD).await;
        if response.status() == 200 {
            response = app.submit_consent(&form_tokens(&response.text().await.unwrap()), "allow").await;
        }
        let callback = location(&response);
        let [verifier, state, nonce] =
            ["code_verifier", "state", "nonce"].map(|k| pushed[k].as_str().unwrap().to_owned());
        let args = ["code", &app.address, &client.id, &pkcs8, &kid, &callback, &verifier, &state, &nonce];
        let tokens = run(&args).await.expect("openid-client ran before");
        assert_eq!(tokens["claims"]["sub"], user.id.as_str());
        assert_eq!(tokens["claims"]["aud"], client.id.as_str());
    }

    crate::backend_tests!(
        openid_client_gets_a_token_with_private_key_jwt,
        openid_client_pushes_its_request_and_redeems_the_code
    );
}
