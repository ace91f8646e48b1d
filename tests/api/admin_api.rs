//! The admin REST API (`/admin/v1/…`) as an operator's script uses it: every operation,
//! who may call it, pagination, errors as RFC 9457 problems, the effects of its changes
//! at the protocol endpoints, and the OpenAPI document it is described by.

use crate::helpers::browser::AuthorizeRequest;
use crate::helpers::clients::{ClientSpec, TestClient, WEB_APP_REDIRECT_URI};
use crate::helpers::dpop::DpopKey;
use crate::helpers::refresh::{refresh_token, refreshed};
use crate::helpers::{assert_oauth_error, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;

const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

/// An admin client (client credentials, scope `tessera:admin`, tokens meant for the
/// issuer) and an access token of it.
struct Admin {
    client: TestClient,
    token: String,
}

async fn admin(app: &TestApp) -> Admin {
    let client =
        app.register_client(ClientSpec { scope: "tessera:admin", audiences: vec![], ..ClientSpec::service() }).await;
    let token = app.token_of(&client).await;
    Admin { client, token }
}

impl Admin {
    async fn call(&self, app: &TestApp, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        call(app, Some(&self.token), method, path, body).await
    }

    /// A call that must answer `status`; its JSON body (`Null` when empty).
    async fn expect(&self, app: &TestApp, method: Method, path: &str, body: Option<Value>, status: u16) -> Value {
        let response = self.call(app, method.clone(), path, body).await;
        assert_eq!(response.headers()["cache-control"], "no-store", "{method} {path}");
        let got = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(got, status, "{method} {path}: {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }
}

async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.http.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("an admin API request")
}

/// Asserts an RFC 9457 problem with `status`; its body.
async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    assert!(body["title"].is_string() && body["detail"].is_string(), "{body}");
    body
}

/// Every operation of the document, as (method, path with its parameters filled in).
fn operations(document: &Value) -> Vec<(Method, String)> {
    let mut operations = vec![];
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let path = path
                .replace("{client_id}", "0c3a2e1f-0000-4000-8000-000000000000")
                .replace("{user_id}", "0c3a2e1f-0000-4000-8000-000000000001")
                .replace("{family_id}", "no-such-family")
                .replace("{stream_id}", "no-such-stream");
            operations.push((method.to_uppercase().parse().unwrap(), path));
        }
    }
    operations
}

async fn openapi(app: &TestApp) -> Value {
    let response = app.http.get(app.url("/admin/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn the_openapi_document_describes_every_route(app: &TestApp) {
    let document = openapi(app).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"), "OpenAPI 3.1: {}", document["openapi"]);
    assert_eq!(document["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(document["security"], json!([{ "bearer": [] }]));
    assert_eq!(document["servers"], json!([{ "url": app.address }]), "the paths are below the issuer");
    let expected = [
        ("get", "/admin/v1/clients"),
        ("post", "/admin/v1/clients"),
        ("get", "/admin/v1/clients/{client_id}"),
        ("patch", "/admin/v1/clients/{client_id}"),
        ("post", "/admin/v1/clients/{client_id}/disable"),
        ("post", "/admin/v1/clients/{client_id}/secret"),
        ("get", "/admin/v1/users"),
        ("post", "/admin/v1/users"),
        ("get", "/admin/v1/users/{user_id}"),
        ("patch", "/admin/v1/users/{user_id}"),
        ("post", "/admin/v1/users/{user_id}/disable"),
        ("post", "/admin/v1/users/{user_id}/enable"),
        ("put", "/admin/v1/users/{user_id}/password"),
        ("get", "/admin/v1/users/{user_id}/sessions"),
        ("delete", "/admin/v1/users/{user_id}/sessions"),
        ("delete", "/admin/v1/sessions/{family_id}"),
        ("get", "/admin/v1/keys"),
        ("post", "/admin/v1/keys/rotate"),
        ("post", "/admin/v1/keys/emergency-rotate"),
        ("get", "/admin/v1/streams"),
        ("get", "/admin/v1/streams/{stream_id}"),
        ("post", "/admin/v1/streams/{stream_id}/disable"),
    ];
    let documented: HashSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone())))
        .collect();
    let routes: HashSet<(String, String)> = expected.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, routes, "the document and the routes are the same set");
    // Each documented operation is routed: with no token it is refused as unauthenticated,
    // never a 404 or 405 (which would mean the document describes a route that is not there).
    for (method, path) in operations(&document) {
        let response = call(app, None, method.clone(), &path, Some(json!({}))).await;
        assert_eq!(response.status(), 401, "{method} {path}");
    }
}

async fn every_route_refuses_callers_without_admin_power(app: &TestApp) {
    let document = openapi(app).await;
    let without_scope = app.register_client(ClientSpec { audiences: vec![], ..ClientSpec::service() }).await;
    let without_scope = app.token_of(&without_scope).await;
    for (method, path) in operations(&document) {
        let missing = call(app, None, method.clone(), &path, None).await;
        assert_eq!(missing.headers()["www-authenticate"], r#"Bearer realm="tessera-admin""#, "{method} {path}");
        assert_problem(missing, 401).await;
        let forged = call(app, Some("not-a-token"), method.clone(), &path, None).await;
        let challenge = forged.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.contains(r#"error="invalid_token""#), "{method} {path}: {challenge}");
        assert_problem(forged, 401).await;
        let under_scoped = call(app, Some(&without_scope), method.clone(), &path, None).await;
        let challenge = under_scoped.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(
            challenge.contains(r#"error="insufficient_scope""#) && challenge.contains(r#"scope="tessera:admin""#),
            "{method} {path}: {challenge}"
        );
        assert_problem(under_scoped, 403).await;
    }
}

/// Admin power is a client's own: a user's token is refused even when the user granted
/// the scope, as are a token meant for another audience and a DPoP-bound token sent as Bearer.
async fn only_a_clients_own_bearer_token_for_this_issuer_is_admin(app: &TestApp) {
    let web = app
        .register_client(ClientSpec {
            scope: "openid tessera:admin",
            audiences: vec![],
            is_first_party: true,
            ..ClientSpec::web_app()
        })
        .await;
    let user = app.create_user("operator").await;
    let request = AuthorizeRequest {
        scope: Some("openid tessera:admin".into()),
        ..AuthorizeRequest::new(&web, WEB_APP_REDIRECT_URI)
    };
    let params = app.authorize_and_log_in(&request, &user).await;
    let tokens: Value = app.exchange_code(&web, &params["code"], &request).await.json().await.unwrap();
    let user_token = tokens["access_token"].as_str().unwrap();
    let claims = app.verify_access_token(user_token, &app.address).await;
    assert!(claims["scope"].as_str().unwrap().contains("tessera:admin"), "the user granted the scope: {claims}");
    assert_problem(call(app, Some(user_token), Method::GET, "/admin/v1/clients", None).await, 401).await;

    let elsewhere = app.register_client(ClientSpec { scope: "tessera:admin", ..ClientSpec::service() }).await;
    let elsewhere = app.token_of(&elsewhere).await;
    assert_problem(call(app, Some(&elsewhere), Method::GET, "/admin/v1/clients", None).await, 401).await;

    let bound =
        app.register_client(ClientSpec { scope: "tessera:admin", audiences: vec![], ..ClientSpec::service() }).await;
    let key = DpopKey::es256();
    let response = app.dpop_token_request(&bound, &[("grant_type", "client_credentials")], &key).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let bound_token = body["access_token"].as_str().unwrap();
    let refused = call(app, Some(bound_token), Method::GET, "/admin/v1/clients", None).await;
    assert!(refused.headers()["www-authenticate"].to_str().unwrap().contains("DPoP-bound"));
    assert_problem(refused, 401).await;

    // The same client without the binding is admin: the refusals above are the checks'.
    let plain = app.token_of(&bound).await;
    assert_eq!(call(app, Some(&plain), Method::GET, "/admin/v1/clients", None).await.status(), 200);
}

async fn clients_are_registered_shown_changed_rotated_and_disabled(app: &TestApp) {
    let admin = admin(app).await;
    let created = admin
        .expect(
            app,
            Method::POST,
            "/admin/v1/clients",
            Some(json!({ "name": "billing", "grant_types": ["client_credentials"], "scope": "invoices:read",
                         "audiences": ["https://api.example.com"] })),
            201,
        )
        .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("tcs_"));
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(app.client_credentials(&id, &secret, &[]).await.status(), 200, "the new client works");

    let shown = admin.expect(app, Method::GET, &format!("/admin/v1/clients/{id}"), None, 200).await;
    assert_eq!(shown["name"], "billing");
    assert!(shown.get("client_secret").is_none(), "a secret is shown once");

    let changed = admin
        .expect(
            app,
            Method::PATCH,
            &format!("/admin/v1/clients/{id}"),
            Some(json!({ "name": "billing v2", "scope": "invoices:read invoices:write", "require_pushed_authorization_requests": true })),
            200,
        )
        .await;
    assert_eq!(changed["name"], "billing v2");
    assert_eq!(changed["scope"], "invoices:read invoices:write");
    let stored = admin.expect(app, Method::GET, &format!("/admin/v1/clients/{id}"), None, 200).await;
    assert_eq!(stored["scope"], "invoices:read invoices:write", "stored, not only answered");
    assert_eq!(stored["require_pushed_authorization_requests"], true);
    let token = app.client_credentials(&id, &secret, &[("scope", "invoices:write")]).await;
    assert_eq!(token.status(), 200, "the changed scope applies at once");

    let rotated = admin.expect(app, Method::POST, &format!("/admin/v1/clients/{id}/secret"), None, 200).await;
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert_eq!(app.client_credentials(&id, &secret, &[]).await.status(), 401, "the old secret stops working now");
    assert_eq!(app.client_credentials(&id, new_secret, &[]).await.status(), 200, "the new one works");

    let disabled = admin.expect(app, Method::POST, &format!("/admin/v1/clients/{id}/disable"), None, 200).await;
    assert!(disabled["disabled_at"].is_string());
    assert_eq!(app.client_credentials(&id, new_secret, &[]).await.status(), 401, "a disabled client gets no token");
    let again = admin.expect(app, Method::POST, &format!("/admin/v1/clients/{id}/disable"), None, 200).await;
    assert_eq!(again["disabled_at"], disabled["disabled_at"], "disabling twice changes nothing");

    let public = admin
        .expect(
            app,
            Method::POST,
            "/admin/v1/clients",
            Some(json!({ "name": "spa", "grant_types": ["authorization_code"], "public": true,
                         "redirect_uris": ["https://spa.example.com/cb"] })),
            201,
        )
        .await;
    assert!(public.get("client_secret").is_none());
    let public_id = public["client_id"].as_str().unwrap();
    let no_secret = admin.call(app, Method::POST, &format!("/admin/v1/clients/{public_id}/secret"), None).await;
    assert_problem(no_secret, 409).await;
    let missing = admin.call(app, Method::GET, "/admin/v1/clients/no-such-client", None).await;
    assert_problem(missing, 404).await;
}

async fn invalid_requests_are_problems_naming_the_field(app: &TestApp) {
    let admin = admin(app).await;
    let before = app.storage.list_clients().await.unwrap().len();
    for (body, field) in [
        (
            json!({ "name": "x", "grant_types": ["authorization_code"], "redirect_uris": ["javascript:alert(1)"] }),
            "redirect_uris",
        ),
        (json!({ "name": "x", "grant_types": ["authorization_code"] }), "redirect_uris"),
        (json!({ "name": "x", "grant_types": ["password"] }), "grant_types"),
        (json!({ "name": "", "grant_types": ["client_credentials"] }), "name"),
        (json!({ "name": "x", "grant_types": ["client_credentials"], "scope": "a\"b" }), "scope"),
        (json!({ "name": "x", "grant_types": ["client_credentials"], "public": true }), "public"),
        (
            json!({ "name": "x", "grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
                    "jwks_uri": "https://10.0.0.5/jwks.json" }),
            "jwks_uri",
        ),
    ] {
        let problem =
            assert_problem(admin.call(app, Method::POST, "/admin/v1/clients", Some(body.clone())).await, 400).await;
        assert_eq!(problem["field"], field, "{body}: {problem}");
        assert!(problem["detail"].as_str().unwrap().starts_with(field), "{problem}");
    }
    let unknown = json!({ "name": "x", "grant_types": ["client_credentials"], "secret": "mine" });
    let problem = assert_problem(admin.call(app, Method::POST, "/admin/v1/clients", Some(unknown)).await, 400).await;
    assert!(problem["detail"].as_str().unwrap().contains("unknown field `secret`"), "{problem}");
    let not_json = app
        .http
        .post(app.url("/admin/v1/clients"))
        .bearer_auth(&admin.token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_problem(not_json, 400).await;
    let huge = app
        .http
        .post(app.url("/admin/v1/clients"))
        .bearer_auth(&admin.token)
        .header("content-type", "application/json")
        .body(format!("{{\"name\": \"{}\"}}", "x".repeat(100 * 1024)))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(huge, 413).await; // bounded, and a problem like every error
    assert!(problem["detail"].as_str().unwrap().contains("65536"), "{problem}");
    assert_eq!(app.storage.list_clients().await.unwrap().len(), before, "nothing stored for refused requests");

    let patch = json!({ "redirect_uris": ["http://app.example.com/cb"] });
    let id = &admin.client.id;
    let problem =
        assert_problem(admin.call(app, Method::PATCH, &format!("/admin/v1/clients/{id}"), Some(patch)).await, 400)
            .await;
    assert_eq!(problem["field"], "redirect_uris");
    let problem = assert_problem(
        admin.call(app, Method::PATCH, &format!("/admin/v1/clients/{id}"), Some(json!({ "grant_types": [] }))).await,
        400,
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("unknown field"), "grant types are fixed: {problem}");
}

/// What actix answers before a handler runs (no such route, a method the resource lacks)
/// is a problem like every other error, and a 405 keeps its `Allow` header.
async fn unrouted_requests_are_problems_too(app: &TestApp) {
    let admin = admin(app).await;
    for path in ["/admin/v1/no-such-collection", "/admin/v1/clients/x/y/z", "/admin/no-such-version"] {
        let problem = assert_problem(admin.call(app, Method::GET, path, None).await, 404).await;
        assert_eq!(problem["type"], "about:blank", "{path}: {problem}");
    }
    let refused = admin.call(app, Method::PUT, "/admin/v1/clients", Some(json!({}))).await;
    let allow = refused.headers().get("allow").map(|allow| allow.to_str().unwrap().to_owned());
    let problem = assert_problem(refused, 405).await;
    let allow = allow.expect("a 405 says which methods the resource takes (RFC 9110 §15.5.6)");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    assert!(problem["detail"].as_str().unwrap().contains("Allow"), "{problem}");
    // The API's own problems are not rewritten on the way out.
    let own = assert_problem(admin.call(app, Method::GET, "/admin/v1/users/no-such-user", None).await, 404).await;
    assert!(own["detail"].as_str().unwrap().contains("no-such-user"), "{own}");
}

async fn lists_are_paged_with_cursors(app: &TestApp) {
    let admin = admin(app).await;
    let mut ids: HashSet<String> = HashSet::from([admin.client.id.clone()]);
    for n in 0..7 {
        let body = json!({ "name": format!("service {n}"), "grant_types": ["client_credentials"] });
        let created = admin.expect(app, Method::POST, "/admin/v1/clients", Some(body), 201).await;
        ids.insert(created["client_id"].as_str().unwrap().to_owned());
    }
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/admin/v1/clients?limit=3&cursor={cursor}"),
            None => "/admin/v1/clients?limit=3".to_owned(),
        };
        let page = admin.expect(app, Method::GET, &path, None, 200).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|c| c["client_id"].as_str().unwrap().to_owned()));
        pages += 1;
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        // A client registered while paging is listed once, at the end (keyset, not offset).
        if pages == 1 {
            let body = json!({ "name": "late", "grant_types": ["client_credentials"] });
            let late = admin.expect(app, Method::POST, "/admin/v1/clients", Some(body), 201).await;
            ids.insert(late["client_id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(pages, 3, "9 clients, 3 per page");
    assert_eq!(seen.len(), ids.len(), "no client twice: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), ids, "every client once");

    let first = admin.expect(app, Method::GET, "/admin/v1/clients?limit=3", None, 200).await;
    let next = first["next"].as_str().unwrap();
    let mut tampered = next.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for cursor in [tampered.as_str(), "not base64!", "dXNlcnM6YWxpY2U"] {
        let path = format!("/admin/v1/clients?limit=3&cursor={cursor}");
        let problem = assert_problem(admin.call(app, Method::GET, &path, None).await, 400).await;
        assert_eq!(problem["field"], "cursor", "{cursor}: {problem}");
    }
    for limit in ["0", "201", "-1", "many"] {
        let response = admin.call(app, Method::GET, &format!("/admin/v1/clients?limit={limit}"), None).await;
        assert_problem(response, 400).await;
    }
    let everything = admin.expect(app, Method::GET, "/admin/v1/clients?limit=200", None, 200).await;
    assert_eq!(everything["items"].as_array().unwrap().len(), ids.len());
    assert!(everything["next"].is_null());

    for name in ["ann", "bob", "cid", "dee", "eve"] {
        app.create_user(name).await;
    }
    let page = admin.expect(app, Method::GET, "/admin/v1/users?limit=2", None, 200).await;
    let names: Vec<_> = page["items"].as_array().unwrap().iter().map(|u| u["username"].clone()).collect();
    assert_eq!(names, vec![json!("ann"), json!("bob")]);
    let next = page["next"].as_str().unwrap();
    let page = admin.expect(app, Method::GET, &format!("/admin/v1/users?limit=2&cursor={next}"), None, 200).await;
    let names: Vec<_> = page["items"].as_array().unwrap().iter().map(|u| u["username"].clone()).collect();
    assert_eq!(names, vec![json!("cid"), json!("dee")]);
    // A clients cursor does not continue the users list.
    let clients_cursor = first["next"].as_str().unwrap();
    let response = admin.call(app, Method::GET, &format!("/admin/v1/users?cursor={clients_cursor}"), None).await;
    assert_problem(response, 400).await;
}

/// Streams are paged like clients and users, with or without `receiver`, and a cursor of
/// another list is refused.
async fn streams_are_paged_with_cursors(app: &TestApp) {
    let admin = admin(app).await;
    let (one, two) = (app.receiver().await, app.receiver().await);
    let mut ids = HashSet::new();
    for receiver in [&one, &two, &one, &two, &one] {
        ids.insert(app.poll_stream(receiver).await);
    }
    let page_through = |filter: String| {
        let admin = &admin;
        async move {
            let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
            loop {
                let mut path = format!("/admin/v1/streams?limit=2{filter}");
                if let Some(cursor) = &cursor {
                    path.push_str(&format!("&cursor={cursor}"));
                }
                let page = admin.expect(app, Method::GET, &path, None, 200).await;
                let items = page["items"].as_array().unwrap();
                assert!(items.len() <= 2, "{page}");
                seen.extend(items.iter().map(|s| s["stream_id"].as_str().unwrap().to_owned()));
                pages += 1;
                match page["next"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => return (seen, pages),
                }
            }
        }
    };
    let (all, pages) = page_through(String::new()).await;
    assert_eq!((all.len(), pages), (5, 3), "5 streams, 2 per page: {all:?}");
    assert_eq!(all.iter().cloned().collect::<HashSet<_>>(), ids, "each stream once");
    let (of_one, pages) = page_through(format!("&receiver={}", one.client.id)).await;
    assert_eq!((of_one.len(), pages), (3, 2), "{of_one:?}");
    app.create_user("first").await;
    app.create_user("second").await;
    let users = admin.expect(app, Method::GET, "/admin/v1/users?limit=1", None, 200).await;
    let users_cursor = users["next"].as_str().expect("two users, one per page").to_owned();
    for cursor in [users_cursor.as_str(), "not base64!", "c3RyZWFtczpuby1zdWNo"] {
        let path = format!("/admin/v1/streams?limit=2&cursor={cursor}");
        let problem = assert_problem(admin.call(app, Method::GET, &path, None).await, 400).await;
        assert_eq!(problem["field"], "cursor", "{cursor}: {problem}");
    }
    assert_problem(admin.call(app, Method::GET, "/admin/v1/streams?limit=0", None).await, 400).await;
}

async fn users_are_created_changed_disabled_enabled_and_given_passwords(app: &TestApp) {
    let admin = admin(app).await;
    let body = json!({ "username": "carol", "email": "carol@example.com", "name": "Carol", "password": "a long enough password" });
    let created = admin.expect(app, Method::POST, "/admin/v1/users", Some(body.clone()), 201).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "active");
    assert!(created.get("password").is_none() && created.get("password_hash").is_none());
    let stored =
        app.storage.find_user_by_id(&tessera::domain::user::UserId::parse(&id).unwrap()).await.unwrap().unwrap();
    assert!(tessera::password::matches(&stored.password_hash, "a long enough password"));
    assert_problem(admin.call(app, Method::POST, "/admin/v1/users", Some(body)).await, 409).await;
    let short = json!({ "username": "dave", "password": "short" });
    let problem = assert_problem(admin.call(app, Method::POST, "/admin/v1/users", Some(short)).await, 400).await;
    assert_eq!(problem["field"], "password");

    let shown = admin.expect(app, Method::GET, &format!("/admin/v1/users/{id}"), None, 200).await;
    assert_eq!(shown["username"], "carol");
    let changed = admin
        .expect(app, Method::PATCH, &format!("/admin/v1/users/{id}"), Some(json!({ "name": "Carol C." })), 200)
        .await;
    assert_eq!((changed["name"].as_str(), changed["email"].as_str()), (Some("Carol C."), Some("carol@example.com")));
    // RFC 7396: `null` removes a member, an absent one stays.
    let cleared =
        admin.expect(app, Method::PATCH, &format!("/admin/v1/users/{id}"), Some(json!({ "email": null })), 200).await;
    assert_eq!((cleared["email"].clone(), cleared["name"].as_str()), (Value::Null, Some("Carol C.")));
    let stored =
        app.storage.find_user_by_id(&tessera::domain::user::UserId::parse(&id).unwrap()).await.unwrap().unwrap();
    assert_eq!((stored.email, stored.email_verified), (None, false));
    let renamed =
        admin.expect(app, Method::PATCH, &format!("/admin/v1/users/{id}"), Some(json!({ "name": null })), 200).await;
    assert_eq!(renamed["name"], Value::Null);
    let bad_email = json!({ "email": "not an address" });
    let problem =
        assert_problem(admin.call(app, Method::PATCH, &format!("/admin/v1/users/{id}"), Some(bad_email)).await, 400)
            .await;
    assert_eq!(problem["field"], "email");

    let disabled = admin.expect(app, Method::POST, &format!("/admin/v1/users/{id}/disable"), None, 200).await;
    assert_eq!(disabled["status"], "disabled");
    let enabled = admin.expect(app, Method::POST, &format!("/admin/v1/users/{id}/enable"), None, 200).await;
    assert_eq!(enabled["status"], "active");

    let new_password = json!({ "password": "another long password" });
    admin.expect(app, Method::PUT, &format!("/admin/v1/users/{id}/password"), Some(new_password), 204).await;
    let stored =
        app.storage.find_user_by_id(&tessera::domain::user::UserId::parse(&id).unwrap()).await.unwrap().unwrap();
    assert!(tessera::password::matches(&stored.password_hash, "another long password"));
    assert_problem(admin.call(app, Method::GET, "/admin/v1/users/no-such-user", None).await, 404).await;
}

async fn revoking_sessions_ends_refresh(app: &TestApp) {
    let admin = admin(app).await;
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("olga").await;
    let phone = app.offline_login(&client, &user).await;
    let laptop = app.offline_login(&client, &user).await;
    let id = user.id.as_str();
    let families = admin.expect(app, Method::GET, &format!("/admin/v1/users/{id}/sessions"), None, 200).await;
    assert_eq!(families.as_array().unwrap().len(), 2);
    let phone_claims =
        app.verify_access_token(phone["access_token"].as_str().unwrap(), "https://api.example.com").await;
    let fid = phone_claims["fid"].as_str().unwrap();
    admin.expect(app, Method::DELETE, &format!("/admin/v1/sessions/{fid}"), None, 204).await;
    assert_oauth_error(app.refresh(&client, &refresh_token(&phone), None).await, 400, "invalid_grant").await;
    let laptop = refreshed(app, &client, &refresh_token(&laptop)).await;
    assert_problem(admin.call(app, Method::DELETE, "/admin/v1/sessions/no-such-family", None).await, 404).await;

    let revoked = admin.expect(app, Method::DELETE, &format!("/admin/v1/users/{id}/sessions"), None, 200).await;
    assert_eq!(revoked["revoked"], 1);
    assert_oauth_error(app.refresh(&client, &refresh_token(&laptop), None).await, 400, "invalid_grant").await;
    let families = admin.expect(app, Method::GET, &format!("/admin/v1/users/{id}/sessions"), None, 200).await;
    assert!(families.as_array().unwrap().iter().all(|f| f["active"] == false), "{families}");
}

async fn keys_are_listed_and_rotated(app: &TestApp) {
    let admin = admin(app).await;
    let keys = admin.expect(app, Method::GET, "/admin/v1/keys", None, 200).await;
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["kid"], app.kid.as_str());
    assert!(keys[0].get("encrypted_private_key").is_none());
    let rotation = admin.expect(app, Method::POST, "/admin/v1/keys/rotate", None, 200).await;
    assert_eq!(rotation["steps"][0]["step"], "published", "{rotation}");
    let next = rotation["steps"][0]["kid"].as_str().unwrap();
    let keys = admin.expect(app, Method::GET, "/admin/v1/keys", None, 200).await;
    assert!(keys.as_array().unwrap().iter().any(|k| k["kid"] == next && k["state"] == "next"), "{keys}");
    let emergency = admin.expect(app, Method::POST, "/admin/v1/keys/emergency-rotate", None, 200).await;
    let steps = emergency["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["step"] == "promoted" && s["kid"] == next), "{emergency}");
    let keys = app.storage.list_signing_keys().await.unwrap();
    assert!(keys.iter().all(|k| k.kid != app.kid), "the compromised key is deleted");
}

async fn streams_are_listed_shown_and_disabled(app: &TestApp) {
    let admin = admin(app).await;
    let receiver = app.receiver().await;
    let stream = app.poll_stream(&receiver).await;
    let listed = admin.expect(app, Method::GET, "/admin/v1/streams", None, 200).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(listed.get("next").is_none_or(Value::is_null), "one page: {listed}");
    let mine =
        admin.expect(app, Method::GET, &format!("/admin/v1/streams?receiver={}", receiver.client.id), None, 200).await;
    assert_eq!(mine["items"][0]["stream_id"], stream.as_str());
    let shown = admin.expect(app, Method::GET, &format!("/admin/v1/streams/{stream}"), None, 200).await;
    assert_eq!((shown["status"].as_str(), shown["delivery"].as_str()), (Some("enabled"), Some("poll")));
    let disabled = admin
        .expect(
            app,
            Method::POST,
            &format!("/admin/v1/streams/{stream}/disable"),
            Some(json!({ "reason": "maintenance" })),
            200,
        )
        .await;
    assert_eq!(
        (disabled["status"].as_str(), disabled["status_reason"].as_str()),
        (Some("disabled"), Some("maintenance"))
    );
    assert_problem(admin.call(app, Method::GET, "/admin/v1/streams/no-such-stream", None).await, 404).await;
}

/// Disabling a client through the API ends its tokens and tells Shared Signals receivers,
/// exactly as the CLI's `client disable` does.
async fn disabling_a_client_ends_its_tokens_and_is_signalled(app: &TestApp) {
    let admin = admin(app).await;
    let receiver = app.receiver().await;
    let stream = app.poll_stream(&receiver).await;
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("alice").await;
    let tokens = app.offline_login(&client, &user).await;
    admin.expect(app, Method::POST, &format!("/admin/v1/clients/{}/disable", client.id), None, 200).await;
    assert_oauth_error(app.refresh(&client, &refresh_token(&tokens), None).await, 401, "invalid_client").await;
    assert_eq!(
        app.introspect(&admin_introspector(app).await, tokens["access_token"].as_str().unwrap()).await["active"],
        false
    );
    let sets = app.drain(&receiver, &stream).await;
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(sets[0].event_type, SESSION_REVOKED);
    assert_eq!(
        sets[0].subject(),
        &json!({ "format": "complex", "application": { "format": "opaque", "id": client.id } })
    );
}

async fn admin_introspector(app: &TestApp) -> TestClient {
    app.register_client(ClientSpec { may_introspect_any: true, ..ClientSpec::service() }).await
}

/// Thirty changes and secret rotations of one client at once: none fails, and afterwards
/// exactly one of the secrets handed out works (the last one written).
async fn concurrent_changes_and_rotations_leave_one_secret(app: &TestApp) {
    let admin = admin(app).await;
    let created = admin
        .expect(
            app,
            Method::POST,
            "/admin/v1/clients",
            Some(json!({ "name": "busy", "grant_types": ["client_credentials"] })),
            201,
        )
        .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let requests = (0..30).map(|n| {
        let (admin, id) = (&admin, &id);
        async move {
            let response = if n % 2 == 0 {
                admin.call(app, Method::POST, &format!("/admin/v1/clients/{id}/secret"), None).await
            } else {
                let body = json!({ "name": format!("busy {n}"), "scope": format!("scope{n}") });
                admin.call(app, Method::PATCH, &format!("/admin/v1/clients/{id}"), Some(body)).await
            };
            let status = response.status().as_u16();
            (n, status, response.json::<Value>().await.unwrap())
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    let mut secrets = vec![created["client_secret"].as_str().unwrap().to_owned()];
    for (n, status, body) in &answers {
        assert_eq!(*status, 200, "request {n}: {body}");
        if let Some(secret) = body["client_secret"].as_str() {
            secrets.push(secret.to_owned());
        }
    }
    assert_eq!(secrets.len(), 16);
    let mut working = 0;
    for secret in &secrets {
        if app.client_credentials(&id, secret, &[]).await.status() == 200 {
            working += 1;
        }
    }
    assert_eq!(working, 1, "exactly one secret works");
    let shown = admin.expect(app, Method::GET, &format!("/admin/v1/clients/{id}"), None, 200).await;
    let n: u32 = shown["name"].as_str().unwrap().trim_start_matches("busy ").parse().unwrap();
    assert_eq!(n % 2, 1, "the name of one of the changes: {shown}");
}

/// U+0000 (`%00` in a path or query, `\u0000` in JSON) is refused as the client's mistake it
/// is: PostgreSQL's `text` cannot hold it and answers an error, which must never become a 500.
async fn nul_characters_are_refused_not_server_errors(app: &TestApp) {
    let admin = admin(app).await;
    let body = json!({ "username": "nul", "email": "a\u{0}@b.example", "password": "a long enough password" });
    let problem = assert_problem(admin.call(app, Method::POST, "/admin/v1/users", Some(body)).await, 400).await;
    assert_eq!(problem["field"], "email", "{problem}");
    let body = json!({ "username": "nul", "email": "nul@b.example", "password": "a long enough password" });
    let created = admin.expect(app, Method::POST, "/admin/v1/users", Some(body), 201).await;
    let user = created["id"].as_str().unwrap();
    let patch = json!({ "email": "x\u{0}y@b.example" });
    let problem =
        assert_problem(admin.call(app, Method::PATCH, &format!("/admin/v1/users/{user}"), Some(patch)).await, 400)
            .await;
    assert_eq!(problem["field"], "email", "{problem}");
    for (method, path) in [
        (Method::GET, "/admin/v1/streams/a%00b"),
        (Method::POST, "/admin/v1/streams/a%00b/disable"),
        (Method::GET, "/admin/v1/clients/a%00b"),
        (Method::GET, "/admin/v1/users/a%00b"),
        (Method::GET, "/admin/v1/users/a%00b/sessions"),
        (Method::DELETE, "/admin/v1/sessions/a%00b"),
    ] {
        let response = admin.call(app, method.clone(), path, None).await;
        let status = response.status().as_u16();
        assert!(status == 400 || status == 404, "{method} {path}: {status}");
        assert_problem(response, status).await;
    }

    let receiver = app.receiver().await;
    let stream_id = app.poll_stream(&receiver).await;
    // Free text a receiver stores: a description loses its control characters, a status
    // reason with one is refused; neither reaches PostgreSQL with a NUL.
    let receiver2 = app.receiver().await;
    let config = app.create_stream(&receiver2, json!({ "description": "ours\u{0}\u{1b}" })).await;
    assert_eq!(config["description"], "ours");
    let reason = json!({ "stream_id": stream_id, "status": "paused", "reason": "a\u{0}b" });
    let response = app.ssf(Method::POST, "/ssf/status", Some(&receiver.token), Some(reason)).await;
    assert_eq!(response.status(), 400, "a NUL in the reason is the receiver's mistake");
    for (method, path, body) in [
        (Method::GET, "/ssf/status?stream_id=a%00b", None),
        (Method::GET, "/ssf/streams?stream_id=a%00b", None),
        (Method::DELETE, "/ssf/streams?stream_id=a%00b", None),
        (Method::POST, "/ssf/poll/a%00b", Some(json!({ "returnImmediately": true }))),
        (Method::POST, "/ssf/status", Some(json!({ "stream_id": "a\u{0}b", "status": "disabled" }))),
        (Method::PATCH, "/ssf/streams", Some(json!({ "stream_id": "a\u{0}b" }))),
        (Method::POST, "/ssf/verify", Some(json!({ "stream_id": "a\u{0}b" }))),
        (
            Method::POST,
            "/ssf/subjects/add",
            Some(json!({ "stream_id": "a\u{0}b", "subject": { "format": "opaque", "id": "x" } })),
        ),
    ] {
        let response = app.ssf(method.clone(), path, Some(&receiver.token), body).await;
        assert_eq!(response.status(), 404, "{method} {path}: an unknown stream, not a server error");
    }
}

/// Taking `tessera:admin` from a client (its own PATCH here) ends its admin power at once,
/// not when its current token expires.
async fn an_admin_client_whose_scope_is_taken_away_is_refused_at_once(app: &TestApp) {
    let admin = admin(app).await;
    let other = self::admin(app).await;
    let path = format!("/admin/v1/clients/{}", admin.client.id);
    admin.expect(app, Method::PATCH, &path, Some(json!({ "scope": "reports:read" })), 200).await;
    assert_problem(admin.call(app, Method::GET, "/admin/v1/clients", None).await, 403).await;
    assert_problem(admin.call(app, Method::GET, &path, None).await, 403).await;
    other.expect(app, Method::GET, "/admin/v1/clients", None, 200).await;
}

/// A scope taken from a client is not issued at its next refresh (RFC 6749 §6 lets the
/// server narrow it); the grant itself survives, with what the client still may have.
async fn refresh_issues_only_the_scope_the_client_still_has(app: &TestApp) {
    let admin = admin(app).await;
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("sigrid").await;
    let login = app.offline_login(&client, &user).await;
    assert!(login["scope"].as_str().unwrap().split(' ').any(|s| s == "invoices:read"), "{login}");
    let narrowed = json!({ "scope": "openid profile offline_access" });
    admin.expect(app, Method::PATCH, &format!("/admin/v1/clients/{}", client.id), Some(narrowed), 200).await;
    let refreshed = refreshed(app, &client, &refresh_token(&login)).await;
    let mut scope: Vec<&str> = refreshed["scope"].as_str().unwrap().split(' ').collect();
    scope.sort_unstable();
    assert_eq!(scope, ["offline_access", "openid", "profile"], "{refreshed}");
    let claims = app.verify_access_token(refreshed["access_token"].as_str().unwrap(), "https://api.example.com").await;
    assert!(!claims["scope"].as_str().unwrap().contains("invoices:read"), "{claims}");
}

/// Two PATCHes of different fields racing on one client (and on one user) both take effect:
/// the loser of the write is applied again to what the winner left, never written over it.
async fn concurrent_patches_of_different_fields_are_both_kept(app: &TestApp) {
    let admin = admin(app).await;
    let created = admin
        .expect(
            app,
            Method::POST,
            "/admin/v1/clients",
            Some(json!({ "name": "racy", "grant_types": ["client_credentials"] })),
            201,
        )
        .await;
    let client = format!("/admin/v1/clients/{}", created["client_id"].as_str().unwrap());
    let body = json!({ "username": "racy", "password": "a long enough password" });
    let user = admin.expect(app, Method::POST, "/admin/v1/users", Some(body), 201).await;
    let user = format!("/admin/v1/users/{}", user["id"].as_str().unwrap());
    for round in 0..20 {
        let patches = [
            (&client, json!({ "name": format!("n{round}") })),
            (&client, json!({ "scope": format!("s{round}") })),
            (&user, json!({ "name": format!("n{round}") })),
            (&user, json!({ "email": format!("e{round}@example.com") })),
        ];
        let answers = futures_util::future::join_all(patches.iter().map(|(path, body)| async {
            admin.call(app, Method::PATCH, path, Some(body.clone())).await.status().as_u16()
        }))
        .await;
        assert_eq!(answers, [200; 4], "round {round}");
        let shown = admin.expect(app, Method::GET, &client, None, 200).await;
        assert_eq!(
            (shown["name"].as_str(), shown["scope"].as_str()),
            (Some(&*format!("n{round}")), Some(&*format!("s{round}"))),
            "round {round}: {shown}"
        );
        let shown = admin.expect(app, Method::GET, &user, None, 200).await;
        assert_eq!(
            (shown["name"].as_str(), shown["email"].as_str()),
            (Some(&*format!("n{round}")), Some(&*format!("e{round}@example.com"))),
            "round {round}: {shown}"
        );
    }
}

/// A verification was of the old address: a changed e-mail is unverified (OpenID Connect
/// Core §5.1 `email_verified`); a change of the name alone keeps it verified.
async fn changing_the_email_makes_it_unverified(app: &TestApp) {
    use tessera::domain::user::{User, UserId, Username};
    let admin = admin(app).await;
    let now = chrono::Utc::now();
    let user = User {
        id: UserId::generate(),
        username: Username::parse("verified").unwrap(),
        email: Some("v@example.com".into()),
        email_verified: true,
        name: None,
        password_hash: "not a hash".into(),
        created_at: now,
        updated_at: now,
        disabled_at: None,
    };
    app.storage.insert_user(&user).await.unwrap();
    let path = format!("/admin/v1/users/{}", user.id);
    let verified = || async { app.storage.find_user_by_id(&user.id).await.unwrap().unwrap().email_verified };
    admin.expect(app, Method::PATCH, &path, Some(json!({ "name": "Vera" })), 200).await;
    assert!(verified().await, "a change of the name keeps the address verified");
    admin.expect(app, Method::PATCH, &path, Some(json!({ "email": "v@example.com" })), 200).await;
    assert!(verified().await, "the same address stays verified");
    admin.expect(app, Method::PATCH, &path, Some(json!({ "email": "other@example.com" })), 200).await;
    assert!(!verified().await, "a new address is unverified");
}

crate::backend_tests!(
    the_openapi_document_describes_every_route,
    every_route_refuses_callers_without_admin_power,
    only_a_clients_own_bearer_token_for_this_issuer_is_admin,
    clients_are_registered_shown_changed_rotated_and_disabled,
    invalid_requests_are_problems_naming_the_field,
    unrouted_requests_are_problems_too,
    lists_are_paged_with_cursors,
    users_are_created_changed_disabled_enabled_and_given_passwords,
    revoking_sessions_ends_refresh,
    keys_are_listed_and_rotated,
    streams_are_listed_shown_and_disabled,
    streams_are_paged_with_cursors,
    disabling_a_client_ends_its_tokens_and_is_signalled,
    concurrent_changes_and_rotations_leave_one_secret,
    nul_characters_are_refused_not_server_errors,
    an_admin_client_whose_scope_is_taken_away_is_refused_at_once,
    refresh_issues_only_the_scope_the_client_still_has,
    concurrent_patches_of_different_fields_are_both_kept,
    changing_the_email_makes_it_unverified,
);

/// Under an issuer with a path the API is below it, and its document says so.
mod at_a_path {
    use super::*;

    crate::path_issuer_tests!(
        the_openapi_document_describes_every_route,
        clients_are_registered_shown_changed_rotated_and_disabled
    );
}

/// `admin.listen`: the API on a listener of its own, or nowhere.
mod listeners {
    use super::*;
    use crate::helpers::TestDatabase;
    use tessera::config::AdminListen;

    /// On its own listener the API is served at the root with its document and still
    /// needs a token; the public listener has none of it, and the admin listener none of
    /// the public routes.
    async fn the_admin_api_can_have_a_listener_of_its_own(database: &TestDatabase) {
        let own = |s: &mut tessera::config::Settings| s.admin.listen = AdminListen::Own("127.0.0.1:0".parse().unwrap());
        let app = TestApp::spawn(database, own).await.unwrap();
        let admin = admin(&app).await;
        let there = app.admin_address.clone().expect("the admin listener's address");
        let get = |path: &str, token: Option<&str>| {
            let mut request = app.http.get(format!("{there}{path}"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let listed = get("/admin/v1/clients", Some(&admin.token)).await.unwrap();
        assert_eq!(listed.status(), 200);
        assert_eq!(listed.headers()["cache-control"], "no-store");
        let body: Value = listed.json().await.unwrap();
        assert!(body["items"].as_array().unwrap().iter().any(|c| c["client_id"] == admin.client.id.as_str()), "{body}");
        let created = app
            .http
            .post(format!("{there}/admin/v1/users"))
            .bearer_auth(&admin.token)
            .json(&json!({ "username": "olga", "password": "correct horse battery staple" }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "changes are made there too");
        let olga = tessera::domain::user::Username::parse("olga").unwrap();
        assert!(app.storage.find_user_by_username(&olga).await.unwrap().is_some());
        assert_problem(get("/admin/v1/clients", None).await.unwrap(), 401).await;
        let document: Value = get("/admin/openapi.json", None).await.unwrap().json().await.unwrap();
        assert_eq!(document["servers"][0]["url"], "/", "relative to the listener it was fetched from");
        assert!(document["paths"]["/admin/v1/clients"].is_object());
        assert_problem(get("/admin/v1/no-such-collection", Some(&admin.token)).await.unwrap(), 404).await;

        for path in ["/admin/v1/clients", "/admin/openapi.json"] {
            let public = admin.call(&app, Method::GET, path, None).await;
            assert_eq!(public.status(), 404, "{path} is not on the public listener");
        }
        for path in ["/.well-known/openid-configuration", "/jwks.json", "/token", "/authorize"] {
            assert_eq!(get(path, None).await.unwrap().status(), 404, "{path} is not on the admin listener");
        }
        for path in ["/healthz", "/readyz"] {
            assert_eq!(get(path, None).await.unwrap().status(), 200, "{path}: health checks are there too");
        }
        app.stop().await;
    }

    /// A graceful stop lets an admin call in flight on the API's own listener finish, as
    /// on the public one: a rotated secret, shown once, must reach its caller.
    async fn a_graceful_stop_finishes_admin_calls_in_flight(database: &TestDatabase) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let own = |s: &mut tessera::config::Settings| s.admin.listen = AdminListen::Own("127.0.0.1:0".parse().unwrap());
        let app = TestApp::spawn(database, own).await.unwrap();
        let admin = admin(&app).await;
        let there = app.admin_address.clone().unwrap();
        let body = json!({ "username": "late", "password": "correct horse battery staple" }).to_string();
        let head = format!(
            "POST /admin/v1/users HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            there.trim_start_matches("http://"),
            admin.token,
            body.len()
        );
        let mut connection = tokio::net::TcpStream::connect(there.trim_start_matches("http://")).await.unwrap();
        connection.write_all(head.as_bytes()).await.unwrap();
        connection.write_all(&body.as_bytes()[..10]).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await; // the call is in flight
        let stopping = tokio::spawn({
            let (app, _) = app.other_browser();
            async move { app.stop().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(500)).await; // the public listener has stopped
        connection.write_all(&body.as_bytes()[10..]).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), connection.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 201"), "the call finished: {answer:?}");
        stopping.await.unwrap();
    }

    async fn the_admin_api_can_be_off(database: &TestDatabase) {
        let app = TestApp::spawn(database, |s| s.admin.listen = AdminListen::Off).await.unwrap();
        let admin = admin(&app).await;
        assert!(app.admin_address.is_none());
        for path in ["/admin/v1/clients", "/admin/openapi.json"] {
            assert_eq!(admin.call(&app, Method::GET, path, None).await.status(), 404, "{path}");
        }
        app.stop().await;
    }

    /// A port already taken stops startup naming the setting.
    async fn a_taken_admin_port_stops_startup_naming_the_setting(database: &TestDatabase) {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap();
        let error = TestApp::spawn(database, |s| s.admin.listen = AdminListen::Own(address))
            .await
            .err()
            .expect("startup stops")
            .to_string();
        assert!(error.contains("admin.listen") && error.contains(&address.to_string()), "{error}");
    }

    crate::database_tests!(
        the_admin_api_can_have_a_listener_of_its_own,
        the_admin_api_can_be_off,
        a_taken_admin_port_stops_startup_naming_the_setting,
        a_graceful_stop_finishes_admin_calls_in_flight,
    );
}
