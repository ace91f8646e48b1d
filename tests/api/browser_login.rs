//! A real browser through the whole login flow: headless Chromium, driven over WebDriver
//! (chromedriver), opens an example app, which sends it to Tessera; it signs in, allows
//! access and lands back at the app, which exchanges the code. Then it signs out from the
//! app (Tessera asks first) and lands back at the app's post-logout page, and signs in
//! again, straight back to the app this time, since consent was given. A screenshot of the
//! login page is saved to `target/test-artifacts/`.
//!
//! The last two hops are cross-origin 303s answering a form post on a Tessera page, which
//! the page's CSP `form-action` governs too (in Chromium): only a real browser shows
//! whether the login page and the logout-confirmation page allow them.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test is skipped with
//! a message, except when `CI` is set: there it fails (`.ci/run` installs them).

use crate::helpers::browser::PASSWORD;
use crate::helpers::example_app::ExampleApp;
use crate::helpers::TestApp;
use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, TimeoutConfiguration};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tessera::config::DatabaseUrl;
use tessera::domain::user::User;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The bound on every single wait: chromedriver and Chromium starting, a page, an element.
pub(crate) const WAIT: Duration = Duration::from_secs(20);
/// The bound on the whole browser session, so that nothing in it can hang the test run.
const WHOLE_FLOW: Duration = Duration::from_secs(90);

crate::backend_tests!(a_person_signs_in_and_out_of_an_app_in_a_real_browser);

pub(crate) async fn a_person_signs_in_and_out_of_an_app_in_a_real_browser(app: &TestApp) {
    let backend = match app.settings.database_url {
        DatabaseUrl::Sqlite { .. } => "sqlite",
        DatabaseUrl::Postgres { .. } => "postgres",
    };
    let Some(driver) = ChromeDriver::start(backend).await else { return };
    let example = ExampleApp::spawn(app).await;
    let user = app.create_user("alice").await;

    let browser = driver.open_browser().await;
    let flow = tokio::time::timeout(WHOLE_FLOW, async {
        sign_in(&browser, app, &example, &user, backend).await;
        sign_out(&browser, app, &example).await;
        sign_in_again(&browser, app, &example, &user).await;
    })
    .await;
    let _ = tokio::time::timeout(WAIT, browser.close()).await;
    example.stop().await;
    flow.unwrap_or_else(|_| panic!("the browser flow did not finish within {WHOLE_FLOW:?}"));

    // What the app received: verified as a relying party must (OIDC Core §3.1.3.7).
    let sign_ins = example.sign_ins();
    assert_eq!(sign_ins.len(), 2, "two sign-ins: {sign_ins:?}");
    let mut sids = Vec::new();
    for sign_in in &sign_ins {
        let claims = app.verify_id_token(&sign_in.id_token, &example.client.id).await;
        assert_eq!(claims["sub"], user.id.as_str());
        assert_eq!(claims["nonce"], sign_in.nonce.as_str());
        assert_eq!(claims["azp"], example.client.id.as_str());
        let access = app.verify_access_token(&sign_in.access_token, "https://api.example.com").await;
        assert_eq!(access["sub"], user.id.as_str());
        assert_eq!(access["client_id"], example.client.id.as_str());
        sids.push(claims["sid"].clone());
    }
    assert_ne!(sign_ins[0].nonce, sign_ins[1].nonce);
    // The sign-out ended the first SSO session; the second sign-in started another.
    assert!(sids[0].is_string(), "the ID token names its session: {sids:?}");
    assert_ne!(sids[0], sids[1], "a new session after signing out");
    assert_eq!(example.sign_outs().len(), 1, "one sign-out came back: {:?}", example.sign_outs());
}

/// The browser's part: app → Tessera login → consent → back at the app.
async fn sign_in(browser: &Client, app: &TestApp, example: &ExampleApp, user: &User, backend: &str) {
    browser.goto(&example.url("/")).await.expect("the example app's home page loads");
    assert_eq!(browser.title().await.unwrap(), "Welcome · Example app");
    browser.find(Locator::LinkText("Log in")).await.expect("a Log in link").click().await.unwrap();

    let username = wait_for(browser, Locator::Css("input[name=username]"), "Tessera's login page").await;
    let url = browser.current_url().await.unwrap();
    assert!(url.as_str().starts_with(&app.url("/authorize?")), "the login page is at /authorize: {url}");
    assert_eq!(browser.title().await.unwrap(), "Sign in · Tessera");
    assert_eq!(text(browser, Locator::Css("h1")).await, "Sign in");
    assert_eq!(text(browser, Locator::Css(".lead")).await, "to continue to Test client");
    // The stylesheet loaded (below the issuer's path when it has one): a link to a missing
    // one leaves no sheet in `document.styleSheets`.
    let is_styled = browser
        .execute("return document.styleSheets.length === 1 && document.styleSheets[0].cssRules.length > 0", vec![])
        .await
        .unwrap();
    assert_eq!(is_styled, serde_json::json!(true), "the login page's stylesheet loads");
    save_screenshot(browser, &format!("login-page-{backend}.png")).await;

    username.send_keys(user.username.as_str()).await.unwrap();
    browser.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    let button = browser.find(Locator::XPath("//button[normalize-space()='Sign in']")).await.expect("a Sign in button");
    submit(browser, button).await;

    let allow = wait_for(browser, Locator::Css("button[name=decision][value=allow]"), "the consent page").await;
    assert_eq!(browser.title().await.unwrap(), "Allow access · Tessera");
    assert_eq!(text(browser, Locator::Css("h1")).await, "Allow access?");
    assert_eq!(allow.text().await.unwrap(), "Allow");
    submit(browser, allow).await;

    let status = wait_for(browser, Locator::Id("status"), "the example app's signed-in page").await;
    let url = browser.current_url().await.unwrap();
    assert!(url.as_str().starts_with(&example.url("/callback?")), "back at the app's callback: {url}");
    assert_eq!(browser.title().await.unwrap(), "Signed in · Example app");
    assert_eq!(status.text().await.unwrap(), format!("Signed in as {}", user.id));
}

/// App → Tessera's logout confirmation (no id_token_hint, so it asks) → the app's
/// registered post-logout page, with the app's `state`.
async fn sign_out(browser: &Client, app: &TestApp, example: &ExampleApp) {
    browser.find(Locator::LinkText("Log out")).await.expect("a Log out link").click().await.unwrap();

    let confirm = wait_for(browser, Locator::Css("button[name=confirm][value=yes]"), "Tessera's sign-out page").await;
    let url = browser.current_url().await.unwrap();
    assert!(url.as_str().starts_with(&app.url("/logout?")), "the confirmation is at /logout: {url}");
    assert_eq!(browser.title().await.unwrap(), "Sign out · Tessera");
    assert_eq!(text(browser, Locator::Css("h1")).await, "Sign out of Tessera?");
    assert_eq!(confirm.text().await.unwrap(), "Sign out");
    submit(browser, confirm).await;

    let status = wait_for(browser, Locator::Id("status"), "the example app's post-logout page").await;
    let url = browser.current_url().await.unwrap();
    assert!(url.as_str().starts_with(&example.url("/logged-out?")), "at the app's post-logout URI: {url}");
    assert_eq!(browser.title().await.unwrap(), "Signed out · Example app");
    assert_eq!(status.text().await.unwrap(), "Signed out");
    let state = url.query_pairs().find(|(name, _)| name == "state").map(|(_, value)| value.into_owned());
    let sign_outs = example.sign_outs();
    assert_eq!(state.as_ref(), sign_outs.last(), "the app's state came back: {url}");
}

/// App → Tessera login → straight back at the app: consent was given the first time, so
/// the login post answers with the 303 to the app's redirect_uri.
async fn sign_in_again(browser: &Client, app: &TestApp, example: &ExampleApp, user: &User) {
    browser.find(Locator::LinkText("Log in")).await.expect("a Log in link").click().await.unwrap();

    let username = wait_for(browser, Locator::Css("input[name=username]"), "Tessera's login page, again").await;
    let url = browser.current_url().await.unwrap();
    assert!(url.as_str().starts_with(&app.url("/authorize?")), "the login page is at /authorize: {url}");
    assert_eq!(browser.title().await.unwrap(), "Sign in · Tessera");

    username.send_keys(user.username.as_str()).await.unwrap();
    browser.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    let button = browser.find(Locator::XPath("//button[normalize-space()='Sign in']")).await.expect("a Sign in button");
    submit(browser, button).await;

    let status =
        wait_for(browser, Locator::Id("status"), "the example app's signed-in page (no consent page this time)").await;
    let url = browser.current_url().await.unwrap();
    assert!(url.as_str().starts_with(&example.url("/callback?")), "back at the app's callback: {url}");
    assert_eq!(browser.title().await.unwrap(), "Signed in · Example app");
    assert_eq!(status.text().await.unwrap(), format!("Signed in as {}", user.id));
}

/// Clicks a form's submit button, first recording on the page any CSP violation, so
/// that a blocked redirect (the page stays) says so in `wait_for`'s message.
async fn submit(browser: &Client, button: Element) {
    // WebDriver's scripts are exempt from the page's CSP (which allows none).
    let watch = "window.cspViolations = [];
        document.addEventListener('securitypolicyviolation', (e) =>
            window.cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI}`));";
    browser.execute(watch, vec![]).await.expect("watch for CSP violations");
    button.click().await.unwrap();
}

/// Waits (at most `WAIT`) for an element; on timeout, says where the browser is instead,
/// and which CSP violations `submit` saw there.
pub(crate) async fn wait_for(browser: &Client, locator: Locator<'_>, what: &str) -> Element {
    match browser.wait().at_most(WAIT).every(Duration::from_millis(100)).for_element(locator).await {
        Ok(element) => element,
        Err(error) => {
            let url = browser.current_url().await.map(|url| url.to_string()).unwrap_or_default();
            let page = text(browser, Locator::Css("body")).await;
            let violations = browser.execute("return window.cspViolations || []", vec![]).await.unwrap_or_default();
            panic!(
                "{what} did not show within {WAIT:?} ({error}); the browser is at {url}, \
                 with the CSP violations {violations}, showing:\n{page}"
            )
        }
    }
}

pub(crate) async fn text(browser: &Client, locator: Locator<'_>) -> String {
    let element = browser.find(locator).await.unwrap_or_else(|e| panic!("no {locator:?} on the page: {e}"));
    element.text().await.unwrap()
}

async fn save_screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    eprintln!("saved the login page screenshot to {}", path.display());
}

/// `$CARGO_TARGET_DIR/test-artifacts`, or `<manifest dir>/target/test-artifacts`.
fn artifacts_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| root.join(dir));
    target.join("test-artifacts")
}

/// A chromedriver child process on a free local port, with a fresh Chromium profile.
/// Dropping it ends chromedriver and every browser process it started.
pub(crate) struct ChromeDriver {
    child: Child,
    url: String,
    profile: TempDir,
}

impl ChromeDriver {
    /// `None` (after saying so) when Chromium is not installed, unless `CI` is set.
    pub(crate) async fn start(backend: &str) -> Option<Self> {
        let missing: Vec<&str> =
            [CHROMEDRIVER, CHROMIUM].into_iter().filter(|path| !Path::new(path).exists()).collect();
        if !missing.is_empty() {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "{} not found: in CI the browser test must run; install chromium and chromium-driver \
                     (apt-get install chromium chromium-driver; .ci/run does this)",
                    missing.join(" and ")
                );
            }
            eprintln!("skipping the browser test: install chromium and chromium-driver");
            return None;
        }
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let log = dir.join(format!("chromedriver-{backend}.log"));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so that Drop can end Chromium with it.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"))
        };
        let mut driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile: tempfile::tempdir().expect("a temporary Chromium profile"),
        };
        driver.wait_until_ready(&log).await;
        Some(driver)
    }

    async fn wait_until_ready(&mut self, log: &Path) {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("chromedriver exited during startup ({status}); see {}", log.display());
            }
            if let Ok(response) = http.get(format!("{}/status", self.url)).send().await {
                let ready = response.json::<serde_json::Value>().await.ok().map(|body| body["value"]["ready"].clone());
                if ready == Some(serde_json::Value::Bool(true)) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver was not ready within {WAIT:?}; see {}", log.display());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts headless Chromium with a fresh profile and no network beyond 127.0.0.1.
    pub(crate) async fn open_browser(&self) -> Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!("--user-data-dir={}", self.profile.path().display())])
        .collect::<Vec<_>>();
        let mut capabilities = Capabilities::new();
        capabilities.insert("browserName".into(), "chrome".into());
        capabilities.insert("goog:chromeOptions".into(), serde_json::json!({ "binary": CHROMIUM, "args": args }));
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let browser = tokio::time::timeout(WAIT, builder.connect(&self.url))
            .await
            .unwrap_or_else(|_| panic!("Chromium did not start within {WAIT:?}"))
            .unwrap_or_else(|e| panic!("chromedriver could not start {CHROMIUM}: {e}"));
        let timeouts = TimeoutConfiguration::new(Some(WAIT), Some(WAIT), Some(Duration::ZERO));
        browser.update_timeouts(timeouts).await.expect("set the WebDriver timeouts");
        browser.set_window_size(1280, 900).await.expect("size the window");
        browser
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // On success the session is closed and Chromium gone already; after a failure it is
        // still running. chromedriver does not take it down on exit, so signal the whole
        // process group: SIGTERM lets Chromium shut down with its crashpad handlers (which
        // sit in groups of their own), SIGKILL follows if anything is left after 5 s.
        let group = format!("-{}", self.child.id());
        let signal = |signal: &str| {
            let script = format!(r#"kill -s {signal} -- "$1" 2>/dev/null"#);
            Command::new("sh").args(["-c", &script, "sh", &group]).status().is_ok_and(|status| status.success())
        };
        if signal("TERM") {
            let deadline = Instant::now() + Duration::from_secs(5);
            // Reap chromedriver as it exits; `kill -0` fails once the group is empty.
            while Instant::now() < deadline && self.child.try_wait().is_ok() && signal("0") {
                std::thread::sleep(Duration::from_millis(100));
            }
            signal("KILL");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
