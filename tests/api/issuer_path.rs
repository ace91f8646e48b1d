//! An issuer under a path (`http://127.0.0.1:PORT/auth`), as behind a reverse proxy that
//! serves Tessera at `https://example.com/auth` and passes the path through: every
//! endpoint, page, form, stylesheet, redirect, cookie and discovery URL follows the path;
//! the RFC 8414 §3.1 and SSF 1.0 §7.2 metadata are also at the root with the well-known
//! suffix inserted before the path; anything else outside the path is a 404.
//!
//! Every helper builds its URLs on `app.address`, which is the pathed issuer here, so the
//! flows below are the suite's own, below the path. The browser and interop tests run
//! here too, with a pathed issuer.

use crate::helpers::browser::{form_tokens, location, redirect_params, AuthorizeRequest};
use crate::helpers::client_assertions::{jwks, ClientKey};
use crate::helpers::clients::{ClientSpec, WEB_APP_REDIRECT_URI};
use crate::helpers::dpop::{DpopKey, Proof};
use crate::helpers::refresh::{refresh_token, refreshed};
use crate::helpers::{assert_oauth_error, TestApp};
use serde_json::{json, Value};
use tessera::domain::client::KeySource;

const CLIENT_CREDENTIALS: [(&str, &str); 1] = [("grant_type", "client_credentials")];

async fn get_json(app: &TestApp, url: &str) -> Value {
    let response = app.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.unwrap()
}

async fn status_of(app: &TestApp, method: reqwest::Method, url: &str) -> u16 {
    app.http.request(method, url).send().await.unwrap().status().as_u16()
}

/// The `Set-Cookie` headers of `response` naming `name`.
fn set_cookies<'a>(response: &'a reqwest::Response, name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}=");
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with(&prefix))
        .collect()
}

/// Asserts the cookie is scoped to the issuer's path: `Path=/auth`, never `/`.
fn assert_scoped_to_the_path(cookies: &[&str]) {
    assert!(!cookies.is_empty(), "a Set-Cookie");
    for cookie in cookies {
        let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
        assert!(attributes.contains(&"Path=/auth"), "{cookie}");
        assert!(!attributes.contains(&"Path=/"), "{cookie}");
    }
}

/// Asserts a page's links all point below the issuer's path: the stylesheet and, when it
/// has one, the form's action.
fn assert_links_below_the_path(html: &str, form_action: Option<&str>) {
    assert!(html.contains(r#"<link rel="stylesheet" href="/auth/static/tessera.css">"#), "{html}");
    if let Some(action) = form_action {
        assert!(html.contains(&format!(r#"action="/auth/{action}""#)), "{html}");
    }
    assert!(!html.contains(r#"href="/static"#) && !html.contains(r#"action="/login"#), "{html}");
}

async fn discovery_is_at_both_well_known_urls_and_names_endpoints_below_the_path(app: &TestApp) {
    assert!(app.address.ends_with("/auth"));
    // OpenID Connect Discovery §4: appended to the issuer.
    let oidc = get_json(app, &app.url("/.well-known/openid-configuration")).await;
    // RFC 8414 §3.1: inserted between the host and the path.
    let rfc8414 = get_json(app, &format!("{}/.well-known/oauth-authorization-server/auth", app.origin)).await;
    assert_eq!(oidc, rfc8414);
    // RFC 8414 §5: the appended form too, for clients that look there.
    assert_eq!(get_json(app, &app.url("/.well-known/oauth-authorization-server")).await, oidc);
    assert_eq!(oidc["issuer"], app.address.as_str(), "the issuer, exactly");
    let urls: Vec<(&String, &str)> = oidc
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.ends_with("_endpoint") || name.ends_with("_uri"))
        .map(|(name, value)| (name, value.as_str().unwrap()))
        .collect();
    assert!(urls.len() >= 9, "{urls:?}");
    for (name, url) in urls {
        if name == "ssf_configuration_uri" {
            // SSF 1.0 §7.2: the suffix inserted before the path, like RFC 8414.
            assert_eq!(url, format!("{}/.well-known/ssf-configuration/auth", app.origin));
        } else {
            assert!(url.starts_with(&format!("{}/", app.address)), "{name}: {url}");
            let is_post_only = ["token_endpoint", "revocation_endpoint", "introspection_endpoint"]
                .contains(&name.as_str())
                || name == "pushed_authorization_request_endpoint";
            let method = if is_post_only { reqwest::Method::POST } else { reqwest::Method::GET };
            assert_ne!(status_of(app, method, url).await, 404, "{name} is served at {url}");
        }
    }

    let ssf = get_json(app, &format!("{}/.well-known/ssf-configuration/auth", app.origin)).await;
    assert_eq!(get_json(app, &app.url("/.well-known/ssf-configuration")).await, ssf);
    assert_eq!(ssf["issuer"], app.address.as_str());
    for name in ["jwks_uri", "configuration_endpoint", "status_endpoint", "verification_endpoint"] {
        assert!(ssf[name].as_str().unwrap().starts_with(&format!("{}/", app.address)), "{name}: {ssf}");
    }

    // The root is not the issuer: its own well-known documents do not exist.
    for path in ["openid-configuration", "oauth-authorization-server", "ssf-configuration"] {
        let url = format!("{}/.well-known/{path}", app.origin);
        assert_eq!(status_of(app, reqwest::Method::GET, &url).await, 404, "{url}");
    }
}

async fn a_person_signs_in_and_out_below_the_path(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("paula").await;
    let request = AuthorizeRequest {
        scope: Some("openid profile email offline_access".into()),
        ..AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)
    }
    .with("prompt", "consent");

    let page = app.get_authorize(&request).await;
    assert_eq!(page.status(), 200, "the login page at {}", app.url("/authorize"));
    assert_scoped_to_the_path(&set_cookies(&page, "tessera_csrf"));
    let html = page.text().await.unwrap();
    assert_links_below_the_path(&html, Some("login"));
    let stylesheet = app.http.get(app.url("/static/tessera.css")).send().await.unwrap();
    assert_eq!(stylesheet.status(), 200);
    assert!(stylesheet.headers()["content-type"].to_str().unwrap().starts_with("text/css"));

    let consent = app.submit_login(&form_tokens(&html), "paula", crate::helpers::browser::PASSWORD).await;
    assert_eq!(consent.status(), 200, "the consent page");
    assert_scoped_to_the_path(&set_cookies(&consent, "tessera_session"));
    assert_scoped_to_the_path(&set_cookies(&consent, "tessera_csrf"));
    let html = consent.text().await.unwrap();
    assert_links_below_the_path(&html, Some("consent"));

    let allowed = app.submit_consent(&form_tokens(&html), "allow").await;
    assert!(location(&allowed).starts_with(WEB_APP_REDIRECT_URI), "{}", location(&allowed));
    let params = redirect_params(&allowed);
    assert_eq!(params["iss"], app.address.as_str(), "RFC 9207 §2: iss is the pathed issuer");
    assert_eq!(params.get("state"), request.state.as_ref());

    let response = app.exchange_code(&client, &params["code"], &request).await;
    assert_eq!(response.status(), 200, "the code exchange at {}", app.url("/token"));
    let tokens: Value = response.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims = app.verify_id_token(id_token, &client.id).await;
    assert_eq!((&claims["iss"], &claims["sub"]), (&json!(app.address), &json!(user.id.as_str())));
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.verify_access_token(access, "https://api.example.com").await["iss"], app.address.as_str());

    let info = app.userinfo(access).await;
    assert_eq!(info.status(), 200);
    assert_eq!(info.json::<Value>().await.unwrap()["sub"], user.id.as_str());

    let rotated = refreshed(app, &client, &refresh_token(&tokens)).await;
    assert_ne!(refresh_token(&rotated), refresh_token(&tokens));
    let introspected = app.introspect(&client, rotated["access_token"].as_str().unwrap()).await;
    assert_eq!(introspected["active"], true);

    // Signed in: a new request goes straight to the client (the session cookie reached
    // /auth/authorize, so its path is right for the browser too).
    let again = app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)).await;
    assert!(redirect_params(&again).contains_key("code"), "signed in already");

    // RP-Initiated Logout: the confirmation page posts below the path, and the answer
    // drops the cookies at the path they were set at.
    let ask = app.http.get(app.url("/logout")).send().await.unwrap();
    assert_eq!(ask.status(), 200);
    assert_links_below_the_path(&ask.text().await.unwrap(), Some("logout"));
    let query = [("id_token_hint", id_token), ("post_logout_redirect_uri", "https://app.example.com/logged-out")];
    let logged_out = app.log_out_confirmed(&query).await;
    assert_eq!(logged_out.status(), 303);
    assert_eq!(location(&logged_out), "https://app.example.com/logged-out");
    let removed = set_cookies(&logged_out, "tessera_session");
    assert_scoped_to_the_path(&removed);
    assert!(removed.iter().all(|c| c.contains("Max-Age=0")), "{removed:?}");
    let page = app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)).await;
    assert_eq!(page.status(), 200, "signed out: the login page again");
    assert!(page.text().await.unwrap().contains(r#"name="password""#));
}

/// An error page rendered from an error (no request at hand) links its stylesheet below
/// the path too.
async fn error_pages_link_below_the_path(app: &TestApp) {
    let response = app.http.post(app.url("/login")).form(&[("username", "x")]).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(html.contains("Invalid form"), "{html}");
    assert_links_below_the_path(&html, None);
    let response = app.http.get(app.url("/authorize")).query(&[("client_id", "nobody")]).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().contains_key("x-request-id"), "the outer middleware's headers stay");
    assert!(response.headers().contains_key("content-security-policy"), "the page's headers stay");
    assert_links_below_the_path(&response.text().await.unwrap(), None);
}

async fn client_credentials_dpop_and_private_key_jwt_work_below_the_path(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let response = app.client_credentials(&client.id, client.secret(), &[]).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let claims = app.verify_access_token(body["access_token"].as_str().unwrap(), "https://api.example.com").await;
    assert_eq!(claims["iss"], app.address.as_str());

    // RFC 9449 §4.3: htu is the token endpoint below the path.
    let key = DpopKey::es256();
    let response = app.dpop_token_request(&client, &CLIENT_CREDENTIALS, &key).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let claims = app.verify_access_token(body["access_token"].as_str().unwrap(), "https://api.example.com").await;
    assert_eq!(claims["cnf"], json!({ "jkt": key.thumbprint() }));
    // ... and not the path the server sees without the issuer's, nor the root.
    let nonce = app.dpop_nonce(&client, &key).await;
    for htu in [format!("{}/token", app.origin), format!("{}/auth/token", app.address)] {
        let proof = key.sign_proof(&Proof { nonce: Some(nonce.clone()), htu, ..Proof::at(app, "POST", "/token") });
        let refused = app.token_request_with_proof(&client, &CLIENT_CREDENTIALS, Some(&proof)).await;
        assert_oauth_error(refused, 400, "invalid_dpop_proof").await;
    }

    // RFC 7523 §3: an assertion naming the endpoint it is sent to, below the path.
    let signing = ClientKey::es256();
    let keyed = app.register_key_client(KeySource::Jwks(jwks(&[&signing]))).await;
    let revoke = app.url("/revoke");
    let assertion = signing.assertion(app, &keyed.id, &revoke);
    let response = app.post_with_assertion("/revoke", &assertion, &[("token", "unknown")]).await;
    assert_eq!(response.status(), 200, "the assertion's aud is {revoke}");
    let assertion = signing.assertion(app, &keyed.id, &app.url("/token"));
    assert_eq!(app.client_credentials_with_assertion(&assertion).await.status(), 200);
    let doubled = format!("{}/auth/revoke", app.address);
    let assertion = signing.assertion(app, &keyed.id, &doubled);
    let response = app.post_with_assertion("/revoke", &assertion, &[("token", "unknown")]).await;
    assert_oauth_error(response, 401, "invalid_client").await;
}

async fn nothing_but_the_well_known_urls_and_health_is_served_outside_the_path(app: &TestApp) {
    use reqwest::Method;
    let outside = [
        (Method::POST, "/token"),
        (Method::GET, "/authorize"),
        (Method::POST, "/login"),
        (Method::GET, "/logout"),
        (Method::GET, "/jwks.json"),
        (Method::GET, "/userinfo"),
        (Method::GET, "/static/tessera.css"),
        (Method::POST, "/ssf/streams"),
        (Method::GET, "/authx/jwks.json"),
        (Method::GET, "/"),
    ];
    for (method, path) in outside {
        let response = app.http.request(method.clone(), format!("{}{path}", app.origin)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("password"), "not the login page: {body}");
    }
    for path in ["/healthz", "/readyz"] {
        for url in [format!("{}{path}", app.origin), app.url(path)] {
            assert_eq!(status_of(app, Method::GET, &url).await, 200, "{url}");
        }
    }
}

async fn a_shared_signals_receiver_works_below_the_path(app: &TestApp) {
    let receiver = app.receiver().await;
    let config = app.create_stream(&receiver, json!({})).await;
    let endpoint = config["delivery"]["endpoint_url"].as_str().unwrap();
    assert!(endpoint.starts_with(&format!("{}/ssf/poll/", app.address)), "{config}");
    let stream_id = config["stream_id"].as_str().unwrap();
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("sam").await;
    let tokens = app.offline_login(&client, &user).await;
    assert_eq!(app.revoke(&client, &refresh_token(&tokens)).await.status(), 200);
    let sets = app.drain(&receiver, stream_id).await;
    assert!(!sets.is_empty(), "the revocation's event, signed by the pathed issuer");
}

/// The suite's other clients, with a pathed issuer: strict ones check that discovery's
/// `issuer` is the URL they were given.
async fn the_openidconnect_crate_completes_the_code_flow(app: &TestApp) {
    crate::interop::openid_connect_relying_party::the_openidconnect_crate_completes_the_code_flow(app).await
}

async fn openid_client_gets_a_token_with_private_key_jwt(app: &TestApp) {
    crate::interop::openid_client_node::openid_client_gets_a_token_with_private_key_jwt(app).await
}

async fn openid_client_pushes_its_request_and_redeems_the_code(app: &TestApp) {
    crate::interop::openid_client_node::openid_client_pushes_its_request_and_redeems_the_code(app).await
}

async fn a_person_signs_in_and_out_of_an_app_in_a_real_browser(app: &TestApp) {
    crate::browser_login::a_person_signs_in_and_out_of_an_app_in_a_real_browser(app).await
}

crate::path_issuer_tests!(
    discovery_is_at_both_well_known_urls_and_names_endpoints_below_the_path,
    a_person_signs_in_and_out_below_the_path,
    error_pages_link_below_the_path,
    client_credentials_dpop_and_private_key_jwt_work_below_the_path,
    nothing_but_the_well_known_urls_and_health_is_served_outside_the_path,
    a_shared_signals_receiver_works_below_the_path,
    the_openidconnect_crate_completes_the_code_flow,
    openid_client_gets_a_token_with_private_key_jwt,
    openid_client_pushes_its_request_and_redeems_the_code,
    a_person_signs_in_and_out_of_an_app_in_a_real_browser,
);
