//! Key rotation: the schedule, the manual and emergency steps, and several replicas on
//! one PostgreSQL signing through rotations while a strict verifier never fails.

use crate::helpers::cli::tessera;
use crate::helpers::clients::ClientSpec;
use crate::helpers::{Backend, TestApp, TestDatabase};
use chrono::{Duration, Utc};
use tessera::keys::kek::KeyEncryptionKey;
use tessera::keys::rotation::{self, RotationSchedule, Step};
use tessera::storage::KeyState;

/// Waits (bounded) until the server's JWKS satisfies `done`.
async fn wait_for_jwks(app: &TestApp, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    for _ in 0..50 {
        let kids: Vec<String> = app.jwks().await.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
        if done(&kids) {
            return kids;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the JWKS never reached the expected state");
}

async fn signing_kid(app: &TestApp, client: &crate::helpers::clients::TestClient) -> String {
    let body: serde_json::Value = app.client_credentials(&client.id, client.secret(), &[]).await.json().await.unwrap();
    jsonwebtoken::decode_header(body["access_token"].as_str().unwrap()).unwrap().kid.unwrap()
}

fn kek(app: &TestApp) -> KeyEncryptionKey {
    KeyEncryptionKey::parse(app.settings.key_encryption_key.as_ref().unwrap().expose()).unwrap()
}

async fn the_schedule_publishes_early_promotes_on_time_and_unpublishes_late(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let schedule = RotationSchedule::from_settings(&app.settings);
    let kek = kek(app);
    let start = Utc::now();
    let old = app.kid.clone();
    assert!(
        rotation::run_due_steps(&*app.storage, &kek, &schedule, start).await.unwrap().is_empty(),
        "nothing due yet"
    );

    // One publish lead before the period ends, the next key is published — not signing.
    let publish_at = start + schedule.period - schedule.publish_lead + Duration::seconds(1);
    let steps = rotation::run_due_steps(&*app.storage, &kek, &schedule, publish_at).await.unwrap();
    let Some(Step::Published { kid: next, .. }) = steps.first().cloned() else {
        panic!("expected a published key: {steps:?}")
    };
    wait_for_jwks(app, |kids| kids.contains(&next) && kids.contains(&old)).await;
    assert_eq!(signing_kid(app, &client).await, old, "a published key does not sign yet");

    // At the end of the period it signs, and the old key stays published.
    let promote_at = start + schedule.period + Duration::seconds(1);
    let steps = rotation::run_due_steps(&*app.storage, &kek, &schedule, promote_at).await.unwrap();
    assert_eq!(steps, vec![Step::Promoted { old: old.clone(), new: next.clone() }]);
    for _ in 0..50 {
        if signing_kid(app, &client).await == next {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(signing_kid(app, &client).await, next);
    assert!(app.jwks().await.find(&old).is_some(), "the retired key stays published");

    // Not before every token it signed has expired...
    let early = promote_at + schedule.retire_after - Duration::seconds(2);
    let steps = rotation::run_due_steps(&*app.storage, &kek, &schedule, early).await.unwrap();
    assert!(!steps.iter().any(|s| matches!(s, Step::Removed { .. })), "{steps:?}");
    // ...then it goes.
    let late = promote_at + schedule.retire_after + Duration::seconds(1);
    let steps = rotation::run_due_steps(&*app.storage, &kek, &schedule, late).await.unwrap();
    assert!(steps.contains(&Step::Removed { kid: old.clone() }), "{steps:?}");
    wait_for_jwks(app, |kids| !kids.contains(&old)).await;
    let states: Vec<KeyState> = app.storage.list_signing_keys().await.unwrap().iter().map(|k| k.state).collect();
    assert_eq!(states, vec![KeyState::Current]);
}

async fn keys_rotate_publishes_then_waits_for_verifier_caches(app: &TestApp) {
    let output = tessera(app, &["keys", "rotate"], None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("Published the next key"));
    let again = tessera(app, &["keys", "rotate"], None);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("Nothing to do yet"),
        "promotion waits for jwks_max_age + margin"
    );
    let listed: serde_json::Value =
        serde_json::from_slice(&tessera(app, &["keys", "list", "--json"], None).stdout).unwrap();
    let states: Vec<&str> = listed.as_array().unwrap().iter().map(|k| k["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["current", "next"]);
}

async fn an_emergency_rotation_replaces_the_key_at_once(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let output = tessera(app, &["keys", "rotate", "--emergency"], None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let kids = wait_for_jwks(app, |kids| !kids.contains(&app.kid)).await;
    assert_eq!(kids.len(), 1, "the compromised key is gone from the JWKS");
    for _ in 0..50 {
        if signing_kid(app, &client).await == kids[0] {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the new key never signed");
}

async fn jwks_caching_headers_follow_the_schedule(app: &TestApp) {
    let response = app.http.get(app.url("/jwks.json")).send().await.unwrap();
    let cache_control = response.headers()["cache-control"].to_str().unwrap();
    assert!(cache_control.contains("max-age=900") && cache_control.contains("must-revalidate"), "{cache_control}");
}

crate::backend_tests!(
    the_schedule_publishes_early_promotes_on_time_and_unpublishes_late,
    keys_rotate_publishes_then_waits_for_verifier_caches,
    an_emergency_rotation_replaces_the_key_at_once,
    jwks_caching_headers_follow_the_schedule,
);

/// Two `tessera serve` processes on one PostgreSQL database, a bounded stream of token
/// requests to both, rotations forced with `tessera keys rotate`, and a verifier that
/// honours the JWKS max-age strictly (no refetch on an unknown kid): zero failures.
#[tokio::test]
async fn replicas_rotate_keys_under_load_without_breaking_a_verifier() {
    replicas::run().await
}

mod replicas {
    use super::*;
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
    use std::collections::{HashMap, HashSet};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration as StdDuration, Instant};

    const ISSUER: &str = "http://tessera.test";
    const KEK: &str = "dGVzc2VyYS10ZXN0LWtleS1lbmNyeXB0aW9uLWtleSE=";

    struct Replica {
        child: Child,
        url: String,
    }

    impl Drop for Replica {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn env(database_url: &str) -> Vec<(&'static str, String)> {
        vec![
            ("TESSERA_DATABASE_URL", database_url.to_owned()),
            ("TESSERA_ISSUER", ISSUER.to_owned()),
            ("TESSERA_KEY_ENCRYPTION_KEY", KEK.to_owned()),
            ("TESSERA_KEYS__JWKS_MAX_AGE", "1".to_owned()),
            ("TESSERA_KEYS__ROTATION_MARGIN", "2".to_owned()),
            ("TESSERA_KEYS__REFRESH_INTERVAL", "1".to_owned()),
            ("TESSERA_TOKENS__ACCESS_TOKEN_TTL", "2".to_owned()),
            ("TESSERA_TOKENS__ID_TOKEN_TTL", "2".to_owned()),
            ("TESSERA_HTTP__WORKERS", "1".to_owned()),
            ("TESSERA_LOG__FILTER", "warn".to_owned()),
            (
                "TESSERA_KEYS__BOOTSTRAP_KEY_FILE",
                concat!(env!("CARGO_MANIFEST_DIR"), "/keys/test-signing-key.pem").to_owned(),
            ),
        ]
    }

    fn command(database_url: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")) {
            command.env_remove(name);
        }
        command.envs(env(database_url)).stdout(Stdio::null()).stderr(Stdio::null());
        command
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    async fn start(database_url: &str, http: &reqwest::Client) -> Replica {
        let port = free_port();
        let child =
            command(database_url).env("TESSERA_BIND", format!("127.0.0.1:{port}")).arg("serve").spawn().unwrap();
        let replica = Replica { child, url: format!("http://127.0.0.1:{port}") };
        for _ in 0..100 {
            if http.get(format!("{}/readyz", replica.url)).send().await.is_ok_and(|r| r.status() == 200) {
                return replica;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        panic!("replica on port {port} did not become ready");
    }

    /// A resource server's key cache: refetches only when the cached JWKS is older than
    /// its max-age, never because of an unknown kid — the strictest honest verifier.
    struct StrictVerifier {
        keys: JwkSet,
        fetched_at: Instant,
        max_age: StdDuration,
    }

    impl StrictVerifier {
        async fn refresh_if_stale(&mut self, http: &reqwest::Client, url: &str) {
            if self.fetched_at.elapsed() >= self.max_age {
                self.keys = http.get(format!("{url}/jwks.json")).send().await.unwrap().json().await.unwrap();
                self.fetched_at = Instant::now();
            }
        }

        fn verify(&self, token: &str) -> Result<serde_json::Value, String> {
            let kid = decode_header(token).map_err(|e| e.to_string())?.kid.ok_or("no kid")?;
            let jwk = self.keys.find(&kid).ok_or_else(|| format!("kid {kid} is not in the cached JWKS"))?;
            let mut validation = Validation::new(Algorithm::RS256);
            validation.set_issuer(&[ISSUER]);
            validation.set_audience(&["https://api.example.com"]);
            decode::<serde_json::Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
                .map(|d| d.claims)
                .map_err(|e| e.to_string())
        }
    }

    /// A login on one replica is a session on the other; refresh tokens from one rotate on
    /// the other.
    async fn one_issuer_across_replicas(storage: &dyn tessera::storage::Storage, a: &Replica, b: &Replica) {
        use crate::helpers::browser::{form_tokens, redirect_params, AuthorizeRequest, PASSWORD};
        use crate::helpers::clients::WEB_APP_REDIRECT_URI;
        use tessera::domain::user::{Password, User, UserId, Username};
        let now = Utc::now();
        let user = User {
            id: UserId::generate(),
            username: Username::parse("replica-user").unwrap(),
            email: None,
            email_verified: false,
            name: None,
            password_hash: tessera::password::hash(Password::parse(PASSWORD.into()).unwrap()).await.unwrap(),
            created_at: now,
            updated_at: now,
            disabled_at: None,
        };
        storage.insert_user(&user).await.unwrap();
        let client = crate::helpers::clients::register(storage, ClientSpec::offline_app()).await;
        let browser =
            reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();

        let on_a = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
        let page = browser.get(format!("{}/authorize", a.url)).query(&on_a.params()).send().await.unwrap();
        let tokens = form_tokens(&page.text().await.unwrap());
        let form = [
            ("pending", tokens.pending.as_str()),
            ("csrf_token", &tokens.csrf_token),
            ("username", "replica-user"),
            ("password", PASSWORD),
        ];
        let logged_in = browser.post(format!("{}/login", a.url)).form(&form).send().await.unwrap();
        assert!(redirect_params(&logged_in).contains_key("code"), "login on replica A");

        let on_b = AuthorizeRequest {
            scope: Some("openid offline_access".into()),
            ..AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)
        };
        let sso = browser.get(format!("{}/authorize", b.url)).query(&on_b.params()).send().await.unwrap();
        let code = redirect_params(&sso).remove("code").expect("replica B knows the session from replica A");
        let exchange = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", WEB_APP_REDIRECT_URI),
            ("code_verifier", &on_b.pkce.verifier),
        ];
        let body: serde_json::Value = browser
            .post(format!("{}/token", b.url))
            .basic_auth(&client.id, client.secret.as_ref())
            .form(&exchange)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut refresh_token = body["refresh_token"].as_str().expect("a refresh token from B").to_owned();
        for replica in [a, b, a] {
            let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
            let response = browser
                .post(format!("{}/token", replica.url))
                .basic_auth(&client.id, client.secret.as_ref())
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "refresh on {}", replica.url);
            let body: serde_json::Value = response.json().await.unwrap();
            refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
        }
    }

    pub async fn run() {
        let Some(database) = TestDatabase::create(Backend::Postgres).await else { return };
        let http = reqwest::Client::new();
        let a = start(database.url(), &http).await;
        let b = start(database.url(), &http).await;
        let storage = tessera::storage::connect(
            &tessera::config::DatabaseUrl::parse(database.url()).unwrap(),
            &crate::helpers::test_app::test_settings(&database).database,
        )
        .await
        .unwrap();
        let client = crate::helpers::clients::register(&*storage, ClientSpec::service()).await;
        one_issuer_across_replicas(&*storage, &a, &b).await;

        let database_url = database.url().to_owned();
        let rotator = tokio::spawn(async move {
            let deadline = Instant::now() + StdDuration::from_secs(14);
            while Instant::now() < deadline {
                let output = command(&database_url).args(["keys", "rotate"]).output().unwrap();
                assert!(output.status.success(), "keys rotate failed: {}", String::from_utf8_lossy(&output.stderr));
                tokio::time::sleep(StdDuration::from_millis(700)).await;
            }
        });

        let mut verifier = StrictVerifier {
            keys: JwkSet { keys: vec![] },
            fetched_at: Instant::now() - StdDuration::from_secs(60),
            max_age: StdDuration::from_secs(1),
        };
        let mut failures = vec![];
        let mut signed_by: HashMap<String, i64> = HashMap::new(); // kid -> latest exp
        let mut published_before: HashSet<String> = HashSet::new();
        let deadline = Instant::now() + StdDuration::from_secs(18);
        let mut requests = 0;
        while Instant::now() < deadline {
            for replica in [&a, &b] {
                requests += 1;
                let response = http
                    .post(format!("{}/token", replica.url))
                    .basic_auth(&client.id, client.secret.as_ref())
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let body: serde_json::Value = response.json().await.unwrap();
                let token = body["access_token"].as_str().unwrap();
                verifier.refresh_if_stale(&http, &replica.url).await;
                match verifier.verify(token) {
                    Ok(claims) => {
                        let kid = decode_header(token).unwrap().kid.unwrap();
                        let exp = claims["exp"].as_i64().unwrap();
                        let entry = signed_by.entry(kid).or_insert(exp);
                        *entry = (*entry).max(exp);
                    }
                    Err(error) => failures.push(error),
                }
                // A kid leaves the JWKS only after every token it signed has expired.
                let now = Utc::now().timestamp();
                let published: HashSet<String> =
                    verifier.keys.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
                for gone in published_before.difference(&published) {
                    if let Some(exp) = signed_by.get(gone) {
                        assert!(now >= *exp, "kid {gone} was unpublished at {now}, before its token expiring at {exp}");
                    }
                }
                published_before = published;
            }
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
        rotator.await.unwrap();
        assert!(
            failures.is_empty(),
            "{} of {requests} tokens failed to verify: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        assert!(signed_by.len() >= 3, "at least two rotations happened: kids {:?}", signed_by.keys());
        drop((a, b));
        database.drop_database().await;
    }
}
