//! First-party single-page apps: the refresh token in an `HttpOnly; SameSite=Strict`
//! cookie scoped to the token endpoint, never in the JSON body; a refresh from the cookie
//! only from one of the client's origins with the `X-Tessera-Refresh: 1` header; CORS with
//! credentials for those clients only; revocation clears the cookie.

use crate::helpers::browser::AuthorizeRequest;
use crate::helpers::cli::tessera;
use crate::helpers::clients::{ClientSpec, TestClient, WEB_APP_REDIRECT_URI};
use crate::helpers::TestApp;
use reqwest::Method;
use serde_json::Value;
use tessera::domain::client::{AuthMethod, GrantType};

const SPA: &str = "https://app.example.com";
/// The test issuer is http on a loopback address: no `__Secure-` prefix, no `Secure`.
const COOKIE: &str = "tessera_refresh";

async fn first_party_spa(app: &TestApp) -> TestClient {
    app.register_client(ClientSpec {
        auth_method: AuthMethod::None,
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        is_first_party: true,
        always_issue_refresh_token: true,
        first_party_spa: true,
        ..ClientSpec::web_app()
    })
    .await
}

/// The refresh cookie a response sets: its value and its attributes.
fn set_cookie(response: &reqwest::Response) -> (String, String) {
    let header = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{COOKIE}=")))
        .expect("a refresh cookie");
    let value = header.split(';').next().unwrap().trim_start_matches(&format!("{COOKIE}=")).to_owned();
    (value, header)
}

async fn log_in(app: &TestApp, client: &TestClient) -> (Value, String, String) {
    let user = app.create_user("dana").await;
    let request = AuthorizeRequest::new(client, WEB_APP_REDIRECT_URI);
    let params = app.authorize_and_log_in(&request, &user).await;
    let exchange = |origin: Option<&'static str>, marked: bool| {
        let mut post = app.http.post(app.url("/token")).form(&[
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", request.redirect_uri.as_str()),
            ("code_verifier", request.pkce.verifier.as_str()),
            ("client_id", client.id.as_str()),
        ]);
        if let Some(origin) = origin {
            post = post.header("Origin", origin);
        }
        if marked {
            post = post.header("X-Tessera-Refresh", "1");
        }
        post.send()
    };
    // Every token request of a first-party SPA comes from the app: a form another site
    // posts (no header) is refused before the code is used, and sets no cookie.
    for (origin, marked) in [(Some("https://evil.example"), false), (Some(SPA), false), (None, false)] {
        let refused = exchange(origin, marked).await.unwrap();
        assert_eq!(refused.status(), 400, "{origin:?} {marked}");
        assert!(refused.headers().get("set-cookie").is_none(), "{origin:?} {marked}");
    }
    let response = exchange(Some(SPA), true).await.unwrap();
    assert_eq!(response.status(), 200);
    let (value, header) = set_cookie(&response);
    (response.json().await.unwrap(), value, header)
}

async fn refresh_with_cookie(
    app: &TestApp,
    client: &TestClient,
    cookie: &str,
    origin: Option<&str>,
    marked: bool,
) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url("/token"))
        .header("Cookie", format!("{COOKIE}={cookie}"))
        .form(&[("grant_type", "refresh_token"), ("client_id", client.id.as_str())]);
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    if marked {
        request = request.header("X-Tessera-Refresh", "1");
    }
    request.send().await.unwrap()
}

async fn the_refresh_token_lives_in_an_http_only_cookie(app: &TestApp) {
    let client = first_party_spa(app).await;
    let (body, cookie, header) = log_in(app, &client).await;
    assert!(body.get("refresh_token").is_none(), "never in the body: {body}");
    assert!(body["access_token"].is_string());
    assert!(cookie.starts_with("trt_"), "{header}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/token"] {
        assert!(header.contains(attribute), "{attribute}: {header}");
    }
    assert!(!header.contains("Secure"), "no Secure on an http issuer: {header}");

    // A refresh from the app: the cookie, the origin, the header.
    let refreshed = refresh_with_cookie(app, &client, &cookie, Some(SPA), true).await;
    assert_eq!(refreshed.status(), 200);
    assert_eq!(refreshed.headers()["access-control-allow-origin"], SPA);
    assert_eq!(refreshed.headers()["access-control-allow-credentials"], "true");
    let (next, _) = set_cookie(&refreshed);
    assert_ne!(next, cookie, "rotated");
    let body: Value = refreshed.json().await.unwrap();
    assert!(body.get("refresh_token").is_none() && body["access_token"].is_string(), "{body}");

    // The CSRF defence: the origin and the header are both needed.
    for (origin, marked) in [(Some(SPA), false), (Some("https://evil.example"), true), (None, true)] {
        let refused = refresh_with_cookie(app, &client, &next, origin, marked).await;
        assert_eq!(refused.status(), 400, "{origin:?} {marked}");
        let error: Value = refused.json().await.unwrap();
        assert_eq!(error["error"], "invalid_request", "{error}");
    }
    // The refused attempts did not use the token: it still works, once.
    let again = refresh_with_cookie(app, &client, &next, Some(SPA), true).await;
    assert_eq!(again.status(), 200);
    // The rotated-out cookie is a reused refresh token.
    let reused = refresh_with_cookie(app, &client, &cookie, Some(SPA), true).await;
    assert_eq!(reused.status(), 400);
    assert_eq!(reused.json::<Value>().await.unwrap()["error"], "invalid_grant");

    // Revocation by the app clears the cookie; another site's form post does not.
    let revoke = |marked: bool| {
        let post = app
            .http
            .post(app.url("/revoke"))
            .header("Origin", if marked { SPA } else { "https://evil.example" })
            .form(&[("token", body["access_token"].as_str().unwrap()), ("client_id", client.id.as_str())]);
        if marked {
            post.header("X-Tessera-Refresh", "1").send()
        } else {
            post.send()
        }
    };
    let cross_site = revoke(false).await.unwrap();
    assert_eq!(cross_site.status(), 200);
    assert!(cross_site.headers().get("set-cookie").is_none(), "another site cannot sign the person out");
    let revoked = revoke(true).await.unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(revoked.headers()["access-control-allow-credentials"], "true");
    let (value, header) = set_cookie(&revoked);
    assert!(value.is_empty() && header.contains("Max-Age=0") && header.contains("Path=/token"), "{header}");
}

/// Login CSRF: another site's top-level form posts the attacker's own refresh token in the
/// body. Were it answered, the response's Set-Cookie (allowed on a top-level navigation
/// even with SameSite=Strict) would plant the attacker's sign-in in the victim's browser.
async fn another_site_cannot_plant_a_refresh_cookie(app: &TestApp) {
    let client = first_party_spa(app).await;
    let (_, attackers, _) = log_in(app, &client).await;
    let planted = app
        .http
        .post(app.url("/token"))
        .header("Origin", "https://evil.example")
        .form(&[("grant_type", "refresh_token"), ("client_id", client.id.as_str()), ("refresh_token", &attackers)])
        .send()
        .await
        .unwrap();
    assert_eq!(planted.status(), 400);
    assert!(planted.headers().get("set-cookie").is_none(), "no cookie planted");
    assert_eq!(planted.json::<Value>().await.unwrap()["error"], "invalid_request");
    // Refused before use: the attacker's token was not rotated.
    assert_eq!(refresh_with_cookie(app, &client, &attackers, Some(SPA), true).await.status(), 200);
}

async fn only_a_first_party_spas_origin_gets_credentialed_cors(app: &TestApp) {
    let _spa = first_party_spa(app).await;
    let other = app
        .register_client(ClientSpec { web_origins: Some(vec!["https://other.example"]), ..ClientSpec::web_app() })
        .await;
    let preflight = |path: &'static str, origin: &'static str| {
        app.http
            .request(Method::OPTIONS, app.url(path))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .send()
    };
    for path in ["/token", "/revoke"] {
        let response = preflight(path, SPA).await.unwrap();
        assert_eq!(response.headers()["access-control-allow-credentials"], "true", "{path}");
        assert!(response.headers()["access-control-allow-headers"].to_str().unwrap().contains("X-Tessera-Refresh"));
        let response = preflight(path, "https://other.example").await.unwrap();
        assert_eq!(response.headers()["access-control-allow-origin"], "https://other.example");
        assert!(response.headers().get("access-control-allow-credentials").is_none(), "{path}");
    }
    let response = preflight("/userinfo", SPA).await.unwrap();
    assert!(response.headers().get("access-control-allow-credentials").is_none(), "no cookie at /userinfo");
    // A confidential client's own answers never carry credentials.
    let error = app
        .http
        .post(app.url("/token"))
        .header("Origin", "https://other.example")
        .basic_auth(&other.id, Some(other.secret()))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "trt_nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(error.headers()["access-control-allow-origin"], "https://other.example");
    assert!(error.headers().get("access-control-allow-credentials").is_none());
}

async fn the_cli_registers_first_party_spas_with_a_refresh_grant_and_an_origin(app: &TestApp) {
    let base = ["client", "create", "--name", "spa", "--public", "--first-party-spa", "--json"];
    let ok = tessera(
        app,
        &[&base[..], &["--grant", "authorization_code,refresh_token", "--redirect-uri", "https://app.example.com/cb"]]
            .concat(),
        None,
    );
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let created: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(created["first_party_spa"], true);
    for extra in [
        &["--grant", "authorization_code", "--redirect-uri", "https://app.example.com/cb"][..],
        &["--grant", "authorization_code,refresh_token", "--redirect-uri", "com.example.app:/cb"][..],
    ] {
        let refused = tessera(app, &[&base[..], extra].concat(), None);
        assert!(!refused.status.success(), "{extra:?}");
        assert!(String::from_utf8_lossy(&refused.stderr).contains("--first-party-spa"), "{extra:?}");
    }
}

crate::backend_tests!(
    the_refresh_token_lives_in_an_http_only_cookie,
    another_site_cannot_plant_a_refresh_cookie,
    only_a_first_party_spas_origin_gets_credentialed_cors,
    the_cli_registers_first_party_spas_with_a_refresh_grant_and_an_origin,
);
