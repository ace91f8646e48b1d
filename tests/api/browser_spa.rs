//! A single-page app on another origin, in a real browser: headless Chromium loads a page
//! from a small static server (another port, so another origin) that uses `oauth4webapi`,
//! a well-known browser OAuth library, exactly as an SPA does: discovery, authorization
//! code with PKCE as a public client, the person signs in on Tessera's page, then `fetch`
//! to `/token`, `/userinfo` and `/token` again to refresh. Every one of those calls is
//! cross-origin, so each works only if Tessera's CORS answers let the page read it.
//!
//! Needs Chromium (see `browser_login`) and `tests/interop/node/node_modules` (`npm ci`);
//! skipped without them unless `CI` is set.

use crate::browser_login::{wait_for, ChromeDriver, WAIT};
use crate::helpers::browser::PASSWORD;
use crate::helpers::clients::ClientSpec;
use crate::helpers::TestApp;
use actix_web::{web, App, HttpResponse, HttpServer};
use fantoccini::Locator;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;
use tessera::config::DatabaseUrl;
use tessera::domain::client::{AuthMethod, GrantType};

/// The bound on the whole browser session.
const WHOLE_FLOW: Duration = Duration::from_secs(90);

crate::backend_tests!(
    a_single_page_app_on_another_origin_signs_in_calls_userinfo_and_refreshes,
    a_first_party_spa_refreshes_through_a_cookie_its_javascript_never_sees,
);

fn oauth4webapi() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/node/node_modules/oauth4webapi/build/index.js")
}

/// The whole app: one page, which starts the login when it has no `code` and finishes it
/// when it has. What it got ends up in `#result` (or the error in `#error`).
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>SPA</title></head>
<body><pre id="log"></pre>
<script type="module">
import * as oauth from '/oauth4webapi.js';
const issuer = new URL('__ISSUER__');
const client = { client_id: '__CLIENT_ID__' };
const redirectUri = location.origin + '/callback';
// The test issuer is http on a loopback address; oauth4webapi wants https otherwise.
const options = { [oauth.allowInsecureRequests]: true };
const clientAuth = oauth.None();
const show = (id, value) => {
  const el = document.createElement('pre');
  el.id = id;
  el.textContent = typeof value === 'string' ? value : JSON.stringify(value);
  document.body.append(el);
};
try {
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, options));
  const here = new URL(location.href);
  if (!here.searchParams.has('code')) {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    sessionStorage.setItem('verifier', verifier);
    sessionStorage.setItem('state', state);
    const url = new URL(as.authorization_endpoint);
    url.searchParams.set('client_id', client.client_id);
    url.searchParams.set('redirect_uri', redirectUri);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('scope', 'openid profile');
    url.searchParams.set('state', state);
    url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
    url.searchParams.set('code_challenge_method', 'S256');
    location.assign(url);
  } else {
    const params = oauth.validateAuthResponse(as, client, here, sessionStorage.getItem('state'));
    const tokenResponse = await oauth.authorizationCodeGrantRequest(
      as, client, clientAuth, params, redirectUri, sessionStorage.getItem('verifier'), options);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, tokenResponse);
    const sub = oauth.getValidatedIdTokenClaims(tokens).sub;
    const userinfo = await oauth.processUserInfoResponse(
      as, client, sub, await oauth.userInfoRequest(as, client, tokens.access_token, options));
    const refreshed = await oauth.processRefreshTokenResponse(
      as, client, await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, options));
    show('result', {
      sub,
      userinfo,
      access_token: refreshed.access_token,
      new_access_token: refreshed.access_token !== tokens.access_token,
      new_refresh_token: typeof refreshed.refresh_token === 'string' && refreshed.refresh_token !== tokens.refresh_token,
    });
  }
} catch (error) {
  show('error', `${error.name}: ${error.message} ${error.code ?? ''} ${JSON.stringify(error.cause ?? '')}`);
}
</script></body></html>"#;

/// Serves the page at `/` and `/callback`, and oauth4webapi's ES module, on `listener`.
fn serve_spa(listener: TcpListener, page: String, library: Vec<u8>) -> actix_web::dev::ServerHandle {
    let (page, library) = (web::Data::new(page), web::Data::new(library));
    let server = HttpServer::new(move || {
        let html = |page: web::Data<String>| async move {
            HttpResponse::Ok().content_type("text/html; charset=utf-8").body(page.get_ref().clone())
        };
        App::new()
            .app_data(page.clone())
            .app_data(library.clone())
            .route("/", web::get().to(html))
            .route("/callback", web::get().to(html))
            .route(
                "/token",
                web::get().to(|| async { HttpResponse::Ok().content_type("text/html").body("<!doctype html>") }),
            )
            .route(
                "/oauth4webapi.js",
                web::get().to(|library: web::Data<Vec<u8>>| async move {
                    HttpResponse::Ok().content_type("text/javascript").body(library.get_ref().clone())
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

/// The first-party SPA's page: oauth4webapi up to `/userinfo` (its `/token` fetches with
/// `credentials: 'include'`, so the cookie is stored), then the refresh as the app does it,
/// with the cookie and the CSRF header and no refresh token. It reports what its
/// JavaScript could see.
const COOKIE_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>SPA</title></head>
<body>
<script type="module">
import * as oauth from '/oauth4webapi.js';
const issuer = new URL('__ISSUER__');
const client = { client_id: '__CLIENT_ID__' };
const redirectUri = location.origin + '/callback';
// Only the token endpoint takes the cookie (and answers with credentials); discovery and
// the JWK Set answer `*`, which a credentialed request may not read.
const withCookies = (url, init) =>
  fetch(url, String(url).endsWith('/token') ? { ...init, credentials: 'include' } : init);
const options = { [oauth.allowInsecureRequests]: true, [oauth.customFetch]: withCookies };
const show = (id, value) => {
  const el = document.createElement('pre');
  el.id = id;
  el.textContent = typeof value === 'string' ? value : JSON.stringify(value);
  document.body.append(el);
};
try {
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, options));
  const here = new URL(location.href);
  if (!here.searchParams.has('code')) {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    sessionStorage.setItem('verifier', verifier);
    sessionStorage.setItem('state', state);
    const url = new URL(as.authorization_endpoint);
    for (const [k, v] of Object.entries({ client_id: client.client_id, redirect_uri: redirectUri, response_type: 'code',
        scope: 'openid profile', state, code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256' })) url.searchParams.set(k, v);
    location.assign(url);
  } else {
    const params = oauth.validateAuthResponse(as, client, here, sessionStorage.getItem('state'));
    // Every token request of a first-party SPA carries the header (the CSRF defence).
    const exchange = await oauth.authorizationCodeGrantRequest(
      as, client, oauth.None(), params, redirectUri, sessionStorage.getItem('verifier'),
      { ...options, headers: { 'X-Tessera-Refresh': '1' } });
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, exchange);
    const sub = oauth.getValidatedIdTokenClaims(tokens).sub;
    const userinfo = await oauth.processUserInfoResponse(
      as, client, sub, await oauth.userInfoRequest(as, client, tokens.access_token, options));
    const refresh = await fetch(as.token_endpoint, {
      method: 'POST', credentials: 'include',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Tessera-Refresh': '1' },
      body: new URLSearchParams({ grant_type: 'refresh_token', client_id: client.client_id }),
    });
    const refreshed = await refresh.json();
    // Cookies are per host, not per port: a page of this origin at the path /token sees
    // every cookie of 127.0.0.1 scoped there that is not HttpOnly.
    const frame = document.createElement('iframe');
    const loaded = new Promise((resolve) => { frame.onload = resolve; });
    frame.src = '/token';
    document.body.append(frame);
    await loaded;
    show('result', {
      cookie_at_token_path: frame.contentDocument.cookie,
      sub,
      userinfo,
      refresh_status: refresh.status,
      access_token: refreshed.access_token,
      new_access_token: typeof refreshed.access_token === 'string' && refreshed.access_token !== tokens.access_token,
      refresh_token_in_json: 'refresh_token' in tokens || 'refresh_token' in refreshed,
      document_cookie: document.cookie,
    });
  }
} catch (error) {
  show('error', `${error.name}: ${error.message} ${error.code ?? ''} ${JSON.stringify(error.cause ?? '')}`);
}
</script></body></html>"#;

async fn a_first_party_spa_refreshes_through_a_cookie_its_javascript_never_sees(app: &TestApp) {
    let Some(result) = run_spa(app, COOKIE_PAGE, true, "spa-cookie").await else { return };
    let (result, client_id, user) = result;
    assert_eq!(result["sub"], user.id.as_str(), "{result}");
    assert_eq!(result["userinfo"]["sub"], user.id.as_str(), "the page read /userinfo: {result}");
    assert_eq!(result["refresh_status"], 200, "the refresh through the cookie worked: {result}");
    assert_eq!(result["new_access_token"], true, "{result}");
    assert_eq!(result["refresh_token_in_json"], false, "no refresh token in any JSON: {result}");
    for seen in [&result["document_cookie"], &result["cookie_at_token_path"]] {
        let seen = seen.as_str().expect("the page read document.cookie");
        assert!(!seen.contains("trt_") && !seen.contains("tessera_refresh"), "document.cookie: {seen}");
    }
    let access = app.verify_access_token(result["access_token"].as_str().unwrap(), "https://api.example.com").await;
    assert_eq!(access["client_id"], client_id.as_str());
}

async fn a_single_page_app_on_another_origin_signs_in_calls_userinfo_and_refreshes(app: &TestApp) {
    let Some((result, client_id, user)) = run_spa(app, PAGE, false, "spa").await else { return };
    assert_eq!(result["sub"], user.id.as_str(), "{result}");
    assert_eq!(result["userinfo"]["sub"], user.id.as_str(), "the page read /userinfo: {result}");
    assert_eq!(result["userinfo"]["preferred_username"], user.username.as_str(), "{result}");
    assert_eq!(result["new_access_token"], true, "the page refreshed: {result}");
    assert_eq!(result["new_refresh_token"], true, "the refresh token rotated: {result}");
    let access = app.verify_access_token(result["access_token"].as_str().unwrap(), "https://api.example.com").await;
    assert_eq!(access["client_id"], client_id.as_str());
}

/// Runs `page` as a registered SPA (a first-party SPA with `first_party_spa`) through the
/// sign-in in Chromium; what the page reported, the client's id and the user. `None` when
/// the browser or the library is missing (outside CI).
async fn run_spa(
    app: &TestApp,
    page: &str,
    first_party_spa: bool,
    name: &str,
) -> Option<(serde_json::Value, String, tessera::domain::user::User)> {
    let backend = match app.settings.database_url {
        DatabaseUrl::Sqlite { .. } => "sqlite",
        DatabaseUrl::Postgres { .. } => "postgres",
    };
    let Ok(library) = std::fs::read(oauth4webapi()) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing: run npm ci in tests/interop/node",
            oauth4webapi().display()
        );
        eprintln!("skipping the SPA browser test: run npm ci in tests/interop/node");
        return None;
    };
    let driver = ChromeDriver::start(&format!("{name}-{backend}")).await?;
    let user = app.create_user("carol").await;
    // Registered with the redirect URI of the SPA's server: its origin is derived from it.
    let (spa, handle) = serve_spa_for(app, page, library, first_party_spa).await;
    let browser = driver.open_browser().await;
    let flow = tokio::time::timeout(WHOLE_FLOW, async {
        browser.goto(&format!("{}/", spa.address)).await.expect("the SPA loads");
        let username = wait_for(&browser, Locator::Css("input[name=username]"), "Tessera's login page").await;
        username.send_keys(user.username.as_str()).await.unwrap();
        browser.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(PASSWORD).await.unwrap();
        browser.find(Locator::XPath("//button[normalize-space()='Sign in']")).await.unwrap().click().await.unwrap();
        let outcome = wait_for(&browser, Locator::Css("#result, #error"), "the SPA's result").await;
        (outcome.attr("id").await.unwrap(), outcome.text().await.unwrap())
    })
    .await;
    let _ = tokio::time::timeout(WAIT, browser.close()).await;
    handle.stop(true).await;
    let (id, text) = flow.unwrap_or_else(|_| panic!("the SPA flow did not finish within {WHOLE_FLOW:?}"));
    assert_eq!(id.as_deref(), Some("result"), "the SPA failed: {text}");
    let result: serde_json::Value = serde_json::from_str(&text).unwrap();
    Some((result, spa.client_id, user))
}

struct Spa {
    address: String,
    client_id: String,
}

/// Starts the SPA's server and registers it as a public client of `app`.
async fn serve_spa_for(
    app: &TestApp,
    page: &str,
    library: Vec<u8>,
    first_party_spa: bool,
) -> (Spa, actix_web::dev::ServerHandle) {
    // The page needs the client id and the client needs the page's address: bind first,
    // register, then serve the page with the id in it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let redirect: &'static str = format!("{address}/callback").leak();
    let client = app
        .register_client(ClientSpec {
            auth_method: AuthMethod::None,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scope: "openid profile",
            redirect_uris: vec![redirect],
            is_first_party: true,
            always_issue_refresh_token: true,
            first_party_spa,
            ..ClientSpec::web_app()
        })
        .await;
    let page = page.replace("__ISSUER__", &app.address).replace("__CLIENT_ID__", &client.id);
    let handle = serve_spa(listener, page, library);
    (Spa { address, client_id: client.id }, handle)
}
