//! CORS for browser apps on another origin (Fetch Standard §3.2): preflights answered for
//! origins an active client registered, actual responses naming the origin only when it is
//! one of the client the request is about, discovery and JWKS open to any origin, and
//! `Access-Control-Allow-Credentials` nowhere. Web origins registered through the CLI and
//! the admin API, or derived from the redirect URIs.

use crate::helpers::cli::tessera;
use crate::helpers::clients::{ClientSpec, TestClient};
use crate::helpers::TestApp;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

/// The SPA's origin: that of `ClientSpec::web_app()`'s redirect URI, derived.
const SPA: &str = "https://app.example.com";
const OTHER: &str = "https://other.example";

/// A public SPA client with refresh tokens (its origin derived from its redirect URI), and
/// another client whose registered origin is [`OTHER`].
async fn two_clients(app: &TestApp) -> (TestClient, TestClient) {
    let spa = app
        .register_client(ClientSpec {
            auth_method: tessera::domain::client::AuthMethod::None,
            ..ClientSpec::offline_app()
        })
        .await;
    let other = app.register_client(ClientSpec { web_origins: Some(vec![OTHER]), ..ClientSpec::offline_app() }).await;
    (spa, other)
}

async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> reqwest::Response {
    app.http
        .request(Method::OPTIONS, app.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", "content-type,dpop")
        .send()
        .await
        .unwrap()
}

/// A form post as `client` (Basic or client_id) with `Origin: origin`.
async fn post_from(
    app: &TestApp,
    origin: &str,
    client: &TestClient,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let request = app.http.post(app.url(path)).header("Origin", origin);
    let request = match &client.secret {
        Some(secret) => request.basic_auth(&client.id, Some(secret)),
        None => {
            form.push(("client_id", &client.id));
            request
        }
    };
    request.form(&form).send().await.unwrap()
}

fn allowed_origin(headers: &HeaderMap) -> Option<&str> {
    headers.get("access-control-allow-origin").map(|v| v.to_str().unwrap())
}

fn assert_no_credentials(headers: &HeaderMap, what: &str) {
    assert!(headers.get("access-control-allow-credentials").is_none(), "{what}: no Access-Control-Allow-Credentials");
}

fn varies_on_origin(headers: &HeaderMap) -> bool {
    headers.get_all("vary").iter().any(|v| v.to_str().unwrap().to_ascii_lowercase().contains("origin"))
}

async fn preflights_are_answered_for_origins_an_active_client_registered(app: &TestApp) {
    let (_spa, _other) = two_clients(app).await;
    app.register_client(ClientSpec {
        web_origins: Some(vec!["https://disabled.example"]),
        disabled: true,
        ..ClientSpec::web_app()
    })
    .await;
    for (path, methods, headers) in [
        ("/token", "POST", "Content-Type, Authorization, DPoP"),
        ("/revoke", "POST", "Content-Type, Authorization, DPoP"),
        ("/userinfo", "GET, POST", "Authorization, DPoP"),
        ("/device_authorization", "POST", "Content-Type, Authorization, DPoP"),
    ] {
        for origin in [SPA, OTHER] {
            let response = preflight(app, path, origin, "POST").await;
            assert_eq!(response.status(), 204, "{path} {origin}");
            let h = response.headers();
            assert_eq!(allowed_origin(h), Some(origin), "{path} {origin}");
            assert!(varies_on_origin(h), "{path}");
            assert_eq!(h["access-control-allow-methods"], methods, "{path}");
            assert_eq!(h["access-control-allow-headers"], headers, "{path}");
            assert_eq!(h["access-control-max-age"], "600", "{path}");
            assert_no_credentials(h, path);
        }
        let long = format!("https://{}.example", "a".repeat(400));
        for stranger in [
            "https://evil.example",
            "https://disabled.example",
            "null",
            "*",
            "https://app.example.com/",
            "http://app.example.com",
            "https://app.example.com.evil.example",
            long.as_str(),
        ] {
            let response = preflight(app, path, stranger, "POST").await;
            assert_eq!(response.status(), 204, "{path} {stranger}");
            assert_eq!(allowed_origin(response.headers()), None, "{path} {stranger}");
            assert!(response.headers().get("access-control-allow-methods").is_none(), "{path} {stranger}");
            assert_no_credentials(response.headers(), path);
        }
    }
}

/// Many preflights at once, half of them from strangers, while the set of origins is read
/// once: every one is answered as it should be.
async fn concurrent_preflights_are_each_answered_right(app: &TestApp) {
    let (_spa, _other) = two_clients(app).await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let origin = if i % 2 == 0 { SPA.to_owned() } else { format!("https://stranger{i}.example") };
        let (http, url) = (app.http.clone(), app.url("/token"));
        tasks.push(tokio::spawn(async move {
            let response = http
                .request(Method::OPTIONS, url)
                .header("Origin", &origin)
                .header("Access-Control-Request-Method", "POST")
                .send()
                .await
                .unwrap();
            (origin, response.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned()))
        }));
    }
    for task in tasks {
        let (origin, allowed) = task.await.unwrap();
        if origin == SPA {
            assert_eq!(allowed.as_deref(), Some(SPA));
        } else {
            assert_eq!(allowed, None, "{origin}");
        }
    }
}

async fn token_and_revoke_responses_name_only_the_requesting_clients_origin(app: &TestApp) {
    let (spa, other) = two_clients(app).await;
    let user = app.create_user("alice").await;
    let login = app.offline_login(&spa, &user).await;
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();

    // From the SPA's own origin: readable, with the headers a DPoP app needs exposed.
    let ok = post_from(app, SPA, &spa, "/token", &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(ok.status(), 200);
    let h = ok.headers().clone();
    assert_eq!(allowed_origin(&h), Some(SPA));
    assert!(varies_on_origin(&h));
    let exposed = h["access-control-expose-headers"].to_str().unwrap();
    assert!(exposed.contains("DPoP-Nonce") && exposed.contains("WWW-Authenticate"), "{exposed}");
    assert_no_credentials(&h, "token");
    let body: Value = ok.json().await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();

    // The other client's origin is registered (its preflight passes) but not the SPA's:
    // the answer to the SPA's request is not readable there.
    let elsewhere =
        post_from(app, OTHER, &spa, "/token", &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(elsewhere.status(), 200);
    assert_eq!(allowed_origin(elsewhere.headers()), None);
    assert_no_credentials(elsewhere.headers(), "token");
    let refresh = refresh_of(elsewhere).await;

    // An error of the SPA's request is readable by the SPA (it must see invalid_grant).
    let error =
        post_from(app, SPA, &spa, "/token", &[("grant_type", "refresh_token"), ("refresh_token", "trt_nope")]).await;
    assert_eq!(error.status(), 400);
    assert_eq!(allowed_origin(error.headers()), Some(SPA));
    // A request naming no client, or a client that does not exist, names no origin.
    let anonymous = app
        .http
        .post(app.url("/token"))
        .header("Origin", SPA)
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(allowed_origin(anonymous.headers()), None);
    let unknown = TestClient { id: "no-such-client".into(), secret: None };
    let response =
        post_from(app, SPA, &unknown, "/token", &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(allowed_origin(response.headers()), None);
    // The other client's own requests are readable from its origin, not from the SPA's.
    let other_error =
        post_from(app, OTHER, &other, "/token", &[("grant_type", "refresh_token"), ("refresh_token", "trt_nope")])
            .await;
    assert_eq!(allowed_origin(other_error.headers()), Some(OTHER));
    let other_from_spa =
        post_from(app, SPA, &other, "/token", &[("grant_type", "refresh_token"), ("refresh_token", "trt_nope")]).await;
    assert_eq!(allowed_origin(other_from_spa.headers()), None);

    // Revocation: the same rule.
    let revoked = post_from(app, OTHER, &spa, "/revoke", &[("token", "trt_nope")]).await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(allowed_origin(revoked.headers()), None);
    let revoked = post_from(app, SPA, &spa, "/revoke", &[("token", &refresh)]).await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(allowed_origin(revoked.headers()), Some(SPA));
    assert_no_credentials(revoked.headers(), "revoke");
    // A request without Origin (not a browser's cross-origin call) gets no CORS headers.
    let plain = app.refresh(&spa, &refresh, None).await;
    assert_eq!(allowed_origin(plain.headers()), None);
}

/// RFC 8628 §3.1 from a browser app: the device authorization endpoint follows the same
/// rule as `/token`.
async fn device_authorization_names_only_the_requesting_clients_origin(app: &TestApp) {
    let device = app
        .register_client(ClientSpec {
            auth_method: tessera::domain::client::AuthMethod::None,
            grant_types: vec![tessera::domain::client::GrantType::DeviceCode],
            redirect_uris: vec![],
            web_origins: Some(vec![SPA]),
            ..ClientSpec::web_app()
        })
        .await;
    let mine = post_from(app, SPA, &device, "/device_authorization", &[("scope", "openid")]).await;
    assert_eq!(mine.status(), 200);
    assert_eq!(allowed_origin(mine.headers()), Some(SPA));
    assert_no_credentials(mine.headers(), "device_authorization");
    let elsewhere = post_from(app, OTHER, &device, "/device_authorization", &[("scope", "openid")]).await;
    assert_eq!(elsewhere.status(), 200);
    assert_eq!(allowed_origin(elsewhere.headers()), None);
}

async fn refresh_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["refresh_token"].as_str().expect("a refresh token").to_owned()
}

async fn userinfo_names_the_origin_of_the_tokens_client(app: &TestApp) {
    let (spa, _other) = two_clients(app).await;
    let user = app.create_user("bob").await;
    let login = app.offline_login(&spa, &user).await;
    let token = login["access_token"].as_str().unwrap();
    let get = |origin: &'static str, token: String| {
        app.http.get(app.url("/userinfo")).header("Origin", origin).bearer_auth(token).send()
    };
    let ok = get(SPA, token.to_owned()).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(allowed_origin(ok.headers()), Some(SPA));
    assert!(varies_on_origin(ok.headers()));
    assert_no_credentials(ok.headers(), "userinfo");
    let elsewhere = get(OTHER, token.to_owned()).await.unwrap();
    assert_eq!(elsewhere.status(), 200);
    assert_eq!(allowed_origin(elsewhere.headers()), None, "the token's client did not register that origin");
    let invalid = get(SPA, "not-a-token".into()).await.unwrap();
    assert_eq!(invalid.status(), 401);
    assert_eq!(allowed_origin(invalid.headers()), None, "no token, no client");
    let post = app.http.post(app.url("/userinfo")).header("Origin", SPA).bearer_auth(token).send().await.unwrap();
    assert_eq!(allowed_origin(post.headers()), Some(SPA));
}

async fn discovery_and_jwks_are_readable_from_any_origin(app: &TestApp) {
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/jwks.json"] {
        let response = app.http.get(app.url(path)).header("Origin", "https://anyone.example").send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(allowed_origin(response.headers()), Some("*"), "{path}");
        assert_no_credentials(response.headers(), path);
    }
}

fn created(app: &TestApp, extra: &[&str]) -> Value {
    let mut args = vec!["client", "create", "--name", "spa", "--grant", "authorization_code", "--public", "--json"];
    args.extend(extra);
    let output = tessera(app, &args, None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn the_cli_derives_web_origins_from_redirect_uris_or_takes_them(app: &TestApp) {
    let derived = created(
        app,
        &[
            "--redirect-uri",
            "https://app.example.com/callback",
            "--redirect-uri",
            "https://app.example.com/silent",
            "--redirect-uri",
            "http://127.0.0.1:5173/cb",
            "--redirect-uri",
            "com.example.app:/oauth2redirect",
        ],
    );
    assert_eq!(derived["web_origins"], json!(["https://app.example.com", "http://127.0.0.1:5173"]));
    assert_eq!(derived["web_origins_explicit"], false);
    let native = created(app, &["--redirect-uri", "com.example.app:/oauth2redirect"]);
    assert_eq!(native["web_origins"], json!([]), "a private-use scheme has no web origin");
    let explicit = created(
        app,
        &[
            "--redirect-uri",
            "https://app.example.com/callback",
            "--web-origin",
            "https://spa.example",
            "--web-origin",
            "HTTPS://SPA.example",
            "--web-origin",
            "http://localhost:3000",
        ],
    );
    assert_eq!(explicit["web_origins"], json!(["https://spa.example", "http://localhost:3000"]));
    // The stored registration says the same, and its preflights follow it.
    let stored = tessera(app, &["client", "show", explicit["client_id"].as_str().unwrap(), "--json"], None);
    let stored: Value = serde_json::from_slice(&stored.stdout).unwrap();
    assert_eq!(stored["web_origins"], explicit["web_origins"]);
    assert_eq!(
        allowed_origin(preflight(app, "/token", "https://spa.example", "POST").await.headers()),
        Some("https://spa.example")
    );
    assert_eq!(
        allowed_origin(preflight(app, "/token", SPA, "POST").await.headers()),
        Some(SPA),
        "derived for the first"
    );

    for bad in [
        "*",
        "null",
        "https://spa.example/",
        "https://spa.example/app",
        "http://spa.example",
        "spa.example",
        "https://spa.example:443",
    ] {
        let output = tessera(
            app,
            &[
                "client",
                "create",
                "--name",
                "spa",
                "--grant",
                "authorization_code",
                "--public",
                "--redirect-uri",
                "https://app.example.com/cb",
                "--web-origin",
                bad,
            ],
            None,
        );
        assert!(!output.status.success(), "{bad} must be refused");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--web-origin"), "{bad}: {stderr}");
    }
}

async fn the_admin_api_registers_and_changes_web_origins(app: &TestApp) {
    let admin =
        app.register_client(ClientSpec { scope: "tessera:admin", audiences: vec![], ..ClientSpec::service() }).await;
    let token = app.token_of(&admin).await;
    let call = |method: Method, path: String, body: Value| {
        app.http.request(method, app.url(&path)).bearer_auth(&token).json(&body).send()
    };
    let new = json!({
        "name": "spa", "grant_types": ["authorization_code"], "public": true,
        "redirect_uris": ["https://app.example.com/callback"],
    });
    let response = call(Method::POST, "/admin/v1/clients".into(), new.clone()).await.unwrap();
    assert_eq!(response.status(), 201);
    let derived: Value = response.json().await.unwrap();
    assert_eq!(derived["web_origins"], json!([SPA]));
    let id = derived["client_id"].as_str().unwrap();

    let mut explicit = new.clone();
    explicit["web_origins"] = json!(["https://spa.example"]);
    let response = call(Method::POST, "/admin/v1/clients".into(), explicit).await.unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["web_origins"], json!(["https://spa.example"]));
    assert_eq!(body["web_origins_explicit"], true);

    for bad in ["*", "null", "https://spa.example/", "http://spa.example"] {
        let mut invalid = new.clone();
        invalid["web_origins"] = json!([bad]);
        let response = call(Method::POST, "/admin/v1/clients".into(), invalid).await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["field"], "web_origins", "{problem}");
        let response =
            call(Method::PATCH, format!("/admin/v1/clients/{id}"), json!({ "web_origins": [bad] })).await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }

    // Derived origins follow the redirect URIs; a registered list replaces them.
    let response = call(
        Method::PATCH,
        format!("/admin/v1/clients/{id}"),
        json!({ "redirect_uris": ["https://moved.example/callback"] }),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["web_origins"], json!(["https://moved.example"]));
    assert_eq!(
        allowed_origin(preflight(app, "/token", "https://moved.example", "POST").await.headers()),
        Some("https://moved.example")
    );
    let response =
        call(Method::PATCH, format!("/admin/v1/clients/{id}"), json!({ "web_origins": ["https://new.example"] }))
            .await
            .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["web_origins"], json!(["https://new.example"]));
    // This replica's preflights see the change at once.
    assert_eq!(
        allowed_origin(preflight(app, "/token", "https://new.example", "POST").await.headers()),
        Some("https://new.example")
    );
    assert_eq!(allowed_origin(preflight(app, "/token", "https://moved.example", "POST").await.headers()), None);
}

crate::backend_tests!(
    preflights_are_answered_for_origins_an_active_client_registered,
    concurrent_preflights_are_each_answered_right,
    token_and_revoke_responses_name_only_the_requesting_clients_origin,
    userinfo_names_the_origin_of_the_tokens_client,
    device_authorization_names_only_the_requesting_clients_origin,
    discovery_and_jwks_are_readable_from_any_origin,
    the_cli_derives_web_origins_from_redirect_uris_or_takes_them,
    the_admin_api_registers_and_changes_web_origins,
);
