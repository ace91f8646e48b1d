//! Pushed authorization requests (RFC 9126): the client pushes its request to `/par`,
//! authenticated as at `/token`, and sends the browser to `/authorize` with the
//! `request_uri` it got back, which works once, for that client, for `par.lifetime`.

use crate::attacks::in_parallel;
use crate::helpers::browser::{form_tokens, redirect_params, AuthorizeRequest, PASSWORD};
use crate::helpers::clients::{ClientSpec, TestClient, WEB_APP_REDIRECT_URI};
use crate::helpers::{assert_oauth_error, TestApp, TestDatabase};
use serde_json::Value;

const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

impl TestApp {
    /// POST /par with `request`'s parameters (Basic auth when `client` has a secret).
    pub async fn push_request(&self, client: &TestClient, request: &AuthorizeRequest) -> reqwest::Response {
        let params = request.params();
        let mut form: Vec<(&str, &str)> =
            params.iter().filter(|(name, _)| name != "client_id").map(|(n, v)| (n.as_str(), v.as_str())).collect();
        self.client_post(client, "/par", &mut form).await
    }

    /// Pushes `request`, which must succeed; returns the `request_uri`.
    pub async fn pushed(&self, client: &TestClient, request: &AuthorizeRequest) -> String {
        let response = self.push_request(client, request).await;
        assert_eq!(response.status(), 201, "RFC 9126 §2.2: 201 Created");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["expires_in"], 60);
        body["request_uri"].as_str().expect("a request_uri").to_owned()
    }

    /// GET /authorize with `client_id` and `request_uri` and whatever else is given.
    pub async fn authorize_with_request_uri(
        &self,
        client_id: &str,
        request_uri: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut query = vec![("client_id", client_id), ("request_uri", request_uri)];
        query.extend_from_slice(extra);
        self.http.get(self.url("/authorize")).query(&query).send().await.unwrap()
    }
}

fn assert_error_page(response: &reqwest::Response) {
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none(), "no redirect: the redirect URI is not verified");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
}

async fn a_pushed_request_signs_in_and_its_code_redeems(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let user = app.create_user("alice").await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let request_uri = app.pushed(&client, &request).await;
    assert!(request_uri.starts_with(REQUEST_URI_PREFIX), "{request_uri}");
    assert_eq!(app.count_rows("pushed_authorization_requests").await, 1);

    // §4: the other parameters are ignored; the pushed ones count.
    let ignored = [("redirect_uri", "https://evil.example.com/callback"), ("state", "forged"), ("scope", "openid")];
    let page = app.authorize_with_request_uri(&client.id, &request_uri, &ignored).await;
    assert_eq!(page.status(), 200, "the login page");
    assert_eq!(app.count_rows("pushed_authorization_requests").await, 0, "used once: gone");
    // The login and consent round trip carries the request itself, not the request_uri.
    let consent = app.submit_login(&form_tokens(&page.text().await.unwrap()), "alice", PASSWORD).await;
    let params = app.finish_consent(consent).await;
    assert_eq!(params["state"], request.state.clone().unwrap());
    assert_eq!(params["iss"], app.address);
    let response = app.exchange_code(&client, &params["code"], &request).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "email openid profile", "the pushed scope, not the query's");
    let id_claims = app.verify_id_token(body["id_token"].as_str().unwrap(), &client.id).await;
    assert_eq!(id_claims["sub"], user.id.as_str());
    assert_eq!(id_claims["nonce"], request.nonce.clone().unwrap());

    // Single use.
    assert_error_page(&app.authorize_with_request_uri(&client.id, &request_uri, &[]).await);
}

async fn a_public_client_pushes_with_its_client_id(app: &TestApp) {
    let client = app.register_client(ClientSpec::public_app()).await;
    app.create_user("bob").await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let request_uri = app.pushed(&client, &request).await;
    let page = app.authorize_with_request_uri(&client.id, &request_uri, &[]).await;
    let consent = app.submit_login(&form_tokens(&page.text().await.unwrap()), "bob", PASSWORD).await;
    let params = app.finish_consent(consent).await;
    assert_eq!(app.exchange_code(&client, &params["code"], &request).await.status(), 200);
}

async fn a_pushed_request_is_validated_as_authorize_would_and_nothing_is_stored(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let base = || AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let unregistered = AuthorizeRequest::new(&client, "https://evil.example.com/callback");
    assert_oauth_error(app.push_request(&client, &unregistered).await, 400, "invalid_request").await;
    let prefix = AuthorizeRequest::new(&client, &format!("{WEB_APP_REDIRECT_URI}/more"));
    assert_oauth_error(app.push_request(&client, &prefix).await, 400, "invalid_request").await;
    let implicit: Vec<(String, String)> = base()
        .params()
        .into_iter()
        .filter(|(name, _)| name != "client_id")
        .map(|(name, value)| if name == "response_type" { (name, "token".to_owned()) } else { (name, value) })
        .collect();
    let response =
        app.http.post(app.url("/par")).basic_auth(&client.id, client.secret.as_ref()).form(&implicit).send().await;
    assert_oauth_error(response.unwrap(), 400, "unsupported_response_type").await;
    let mut no_pkce = base();
    no_pkce.pkce.challenge = String::new();
    assert_oauth_error(app.push_request(&client, &no_pkce).await, 400, "invalid_request").await;
    let mut scope = base();
    scope.scope = Some("openid admin".into());
    assert_oauth_error(app.push_request(&client, &scope).await, 400, "invalid_scope").await;
    let nested = base().with("request_uri", &format!("{REQUEST_URI_PREFIX}abc"));
    let body = assert_oauth_error(app.push_request(&client, &nested).await, 400, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("request_uri"), "§2.1: {body}");
    let object = base().with("request", "eyJhbGciOiJub25lIn0.e30.");
    assert_oauth_error(app.push_request(&client, &object).await, 400, "request_not_supported").await;
    let mode = base().with("response_mode", "fragment");
    assert_oauth_error(app.push_request(&client, &mode).await, 400, "invalid_request").await;

    // Client authentication as at /token.
    let wrong = TestClient { id: client.id.clone(), secret: Some("tcs_wrong".into()) };
    assert_oauth_error(app.push_request(&wrong, &base()).await, 401, "invalid_client").await;
    let public = TestClient { id: client.id.clone(), secret: None };
    assert_oauth_error(app.push_request(&public, &base()).await, 401, "invalid_client").await;
    let service = app.register_client(ClientSpec::service()).await;
    let no_code_flow = AuthorizeRequest::new(&service, WEB_APP_REDIRECT_URI);
    assert_oauth_error(app.push_request(&service, &no_code_flow).await, 400, "invalid_request").await;
    let get = app.http.get(app.url("/par")).send().await.unwrap();
    assert_eq!(get.status(), 405);

    assert_eq!(app.count_rows("pushed_authorization_requests").await, 0, "refused pushes store nothing");
}

async fn a_request_uri_works_only_for_its_client_and_only_while_fresh(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let other = app.register_client(ClientSpec::web_app()).await;
    let request_uri = app.pushed(&client, &AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)).await;
    assert_error_page(&app.authorize_with_request_uri(&other.id, &request_uri, &[]).await);
    assert_error_page(&app.authorize_with_request_uri(&client.id, &format!("{request_uri}x"), &[]).await);
    assert_error_page(&app.authorize_with_request_uri(&client.id, "https://client.example.com/r.jwt", &[]).await);
    let page = app.authorize_with_request_uri(&client.id, &request_uri, &[]).await;
    assert_eq!(page.status(), 200, "another client's attempt did not use it up");

    let stale = app.pushed(&client, &AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)).await;
    app.clock.advance(chrono::Duration::seconds(61));
    assert_error_page(&app.authorize_with_request_uri(&client.id, &stale, &[]).await);
    assert_eq!(app.count_rows("pushed_authorization_requests").await, 1, "expired, not yet purged");
    tessera::housekeeping::purge(&*app.storage, &*app.clock, 500, app.settings.ssf.inactivity_timeout.chrono())
        .await
        .unwrap();
    assert_eq!(app.count_rows("pushed_authorization_requests").await, 0, "housekeeping purges it");
}

async fn forty_parallel_uses_of_one_request_uri_let_exactly_one_through(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let request_uri = app.pushed(&client, &AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)).await;
    let statuses = in_parallel(40, |_| {
        let (app, client, request_uri) = (app, &client, &request_uri);
        async move { app.authorize_with_request_uri(&client.id, request_uri, &[]).await.status().as_u16() }
    })
    .await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 400).count(), 39, "{statuses:?}");
}

async fn a_client_that_must_push_cannot_send_its_request_to_authorize(app: &TestApp) {
    let client =
        app.register_client(ClientSpec { require_pushed_authorization_requests: true, ..ClientSpec::web_app() }).await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    assert_error_page(&app.get_authorize(&request).await);
    let request_uri = app.pushed(&client, &request).await;
    assert_eq!(app.authorize_with_request_uri(&client.id, &request_uri, &[]).await.status(), 200);
    let other = app.register_client(ClientSpec::web_app()).await;
    assert_eq!(app.get_authorize(&AuthorizeRequest::new(&other, WEB_APP_REDIRECT_URI)).await.status(), 200);
    let metadata: Value =
        app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["pushed_authorization_request_endpoint"], app.url("/par"));
    assert_eq!(metadata["require_pushed_authorization_requests"], false);
}

async fn prompt_none_from_a_pushed_request_answers_the_client(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).with("prompt", "none");
    let request_uri = app.pushed(&client, &request).await;
    let response = app.authorize_with_request_uri(&client.id, &request_uri, &[]).await;
    let params = redirect_params(&response);
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], request.state.clone().unwrap(), "the pushed state");
}

crate::backend_tests!(
    a_pushed_request_signs_in_and_its_code_redeems,
    a_public_client_pushes_with_its_client_id,
    a_pushed_request_is_validated_as_authorize_would_and_nothing_is_stored,
    a_request_uri_works_only_for_its_client_and_only_while_fresh,
    forty_parallel_uses_of_one_request_uri_let_exactly_one_through,
    a_client_that_must_push_cannot_send_its_request_to_authorize,
    prompt_none_from_a_pushed_request_answers_the_client,
);

async fn par_required_for_every_client(database: &TestDatabase) {
    let app = TestApp::spawn(database, |s| s.par.required = true).await.unwrap();
    let client = app.register_client(ClientSpec::web_app()).await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    assert_error_page(&app.get_authorize(&request).await);
    let request_uri = app.pushed(&client, &request).await;
    assert_eq!(app.authorize_with_request_uri(&client.id, &request_uri, &[]).await.status(), 200);
    let metadata: Value =
        app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["require_pushed_authorization_requests"], true);
    app.stop().await;
}

/// A public client's id is all a stranger needs to push: the rows one client id can make,
/// and all clients together, are bounded, also against parallel pushes.
async fn pushed_requests_are_bounded_per_client_and_in_total(database: &TestDatabase) {
    let app = TestApp::spawn(database, |s| {
        s.par.max_per_client = 10;
        s.par.max_total = 15;
    })
    .await
    .unwrap();
    let public = app.register_client(ClientSpec::public_app()).await;
    let statuses =
        in_parallel(30, |_| {
            let (app, public) = (&app, &public);
            async move {
                app.push_request(public, &AuthorizeRequest::new(public, WEB_APP_REDIRECT_URI)).await.status().as_u16()
            }
        })
        .await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 10, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 20, "{statuses:?}");
    let refused = app.push_request(&public, &AuthorizeRequest::new(&public, WEB_APP_REDIRECT_URI)).await;
    assert_oauth_error(refused, 429, "invalid_request").await;

    let other = app.register_client(ClientSpec::web_app()).await;
    let statuses =
        in_parallel(10, |_| {
            let (app, other) = (&app, &other);
            async move {
                app.push_request(other, &AuthorizeRequest::new(other, WEB_APP_REDIRECT_URI)).await.status().as_u16()
            }
        })
        .await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 5, "the total bound: {statuses:?}");
    assert_eq!(app.count_rows("pushed_authorization_requests").await, 15);

    // Expired requests count no more.
    app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(app.push_request(&public, &AuthorizeRequest::new(&public, WEB_APP_REDIRECT_URI)).await.status(), 201);
    app.stop().await;
}

/// A stranger with a public client's id fills the share of its own network
/// (`par.max_per_ip`), not the client's whole bound: a push from elsewhere still succeeds.
async fn one_network_fills_only_its_share_of_a_public_clients_pushes(database: &TestDatabase) {
    let app = TestApp::spawn(database, |s| {
        s.http.trust_forwarded_headers = true;
        s.par.max_per_ip = 3;
    })
    .await
    .unwrap();
    let public = app.register_client(ClientSpec::public_app()).await;
    let params = AuthorizeRequest::new(&public, WEB_APP_REDIRECT_URI).params();
    let push_from = |ip: &'static str| {
        let (app, params) = (&app, &params);
        async move { app.http.post(app.url("/par")).header("x-forwarded-for", ip).form(params).send().await.unwrap() }
    };
    let statuses = in_parallel(20, |_| async { push_from("203.0.113.7").await.status().as_u16() }).await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 17, "{statuses:?}");
    assert_oauth_error(push_from("203.0.113.7").await, 429, "invalid_request").await;
    assert_eq!(push_from("198.51.100.9").await.status(), 201, "another network still pushes");
    // IPv6 counts by /64.
    for _ in 0..3 {
        assert_eq!(push_from("2001:db8:1:2::1").await.status(), 201);
    }
    assert_eq!(push_from("2001:db8:1:2::ffff").await.status(), 429, "the same /64");
    assert_eq!(push_from("2001:db8:1:3::1").await.status(), 201, "another /64");
    assert_eq!(app.count_rows("pushed_authorization_requests").await, 8);
    let networks = ["203.0.113.7", "198.51.100.9", "2001:db8:1:2::/64", "2001:db8:1:3::/64"];
    app.assert_sources_keyed("pushed_authorization_requests", &networks).await;
    // A confidential client authenticated: its pushes are its own, not counted per IP.
    let confidential = app.register_client(ClientSpec::web_app()).await;
    for _ in 0..5 {
        app.pushed(&confidential, &AuthorizeRequest::new(&confidential, WEB_APP_REDIRECT_URI)).await;
    }
    // Expired pushes count no more.
    app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(push_from("203.0.113.7").await.status(), 201);
    app.stop().await;
}

mod with_settings {
    use super::*;
    crate::database_tests!(
        par_required_for_every_client,
        pushed_requests_are_bounded_per_client_and_in_total,
        one_network_fills_only_its_share_of_a_public_clients_pushes,
    );
}
