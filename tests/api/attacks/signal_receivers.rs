//! What a Shared Signals receiver, or a client turned away, tries against the transmitter:
//! keep hearing about every user after being disabled, make one revocation announce itself
//! many times, and break the management endpoints with bodies they do not expect.

use crate::helpers::cli::tessera;
use crate::helpers::clients::ClientSpec;
use crate::helpers::refresh::refresh_token;
use crate::helpers::signals::{PushReceiver, PUSH, SESSION_REVOKED};
use crate::helpers::{TestApp, TestDatabase};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// A disabled client is cut off (its tokens die at once); the revocation feed is no
/// exception. Its push endpoint hears nothing of revocations that follow, while a receiver
/// still enabled hears them all.
async fn a_disabled_receiver_is_pushed_nothing_more(app: &TestApp) {
    let cut_off = app.receiver().await;
    let cut_off_endpoint = PushReceiver::start(vec![]);
    app.create_stream(&cut_off, json!({ "delivery": { "method": PUSH, "endpoint_url": cut_off_endpoint.url } })).await;
    let witness = app.receiver().await;
    let witness_endpoint = PushReceiver::start(vec![]);
    app.create_stream(&witness, json!({ "delivery": { "method": PUSH, "endpoint_url": witness_endpoint.url } })).await;

    let disabled = tessera(app, &["client", "disable", &cut_off.client.id], None);
    assert!(disabled.status.success(), "{}", String::from_utf8_lossy(&disabled.stderr));
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("alice").await;
    let tokens = app.offline_login(&client, &user).await;
    assert_eq!(app.revoke(&client, &refresh_token(&tokens)).await.status(), 200);

    // The client-disabled event and the family's revocation.
    assert_eq!(witness_endpoint.wait_for(2, Duration::from_secs(10)).await.len(), 2, "the feed runs");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let leaked = cut_off_endpoint.wait_for(1, Duration::ZERO).await;
    assert!(leaked.is_empty(), "a disabled client was pushed {} SETs", leaked.len());
    cut_off_endpoint.stop().await;
    witness_endpoint.stop().await;
}

/// A long poll authenticated before its client was disabled must not hand out what is
/// owed afterwards: the token check happened once, at the start of the wait.
async fn a_long_poll_outliving_its_clients_disabling_gets_nothing(app: &TestApp) {
    let receiver = app.receiver().await;
    let stream = app.poll_stream(&receiver).await;
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("alice").await;
    let tokens = app.offline_login(&client, &user).await;

    let path = format!("/ssf/poll/{stream}");
    let waiting = app.ssf(Method::POST, &path, Some(&receiver.token), Some(json!({})));
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let disabled = tessera(app, &["client", "disable", &receiver.client.id], None);
        assert!(disabled.status.success(), "{}", String::from_utf8_lossy(&disabled.stderr));
        assert_eq!(app.revoke(&client, &refresh_token(&tokens)).await.status(), 200);
    };
    let (answer, ()) = tokio::join!(waiting, meanwhile);
    assert_eq!(answer.status(), 200, "the poll began with a live token");
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["sets"], json!({}), "a disabled client was handed SETs: {body}");
}

/// One revocation, one event, however many requests race to make it: a family revoked by
/// 20 parallel RFC 7009 requests, and an access token likewise.
async fn racing_revocations_announce_once(app: &TestApp) {
    let receiver = app.receiver().await;
    let stream = app.poll_stream(&receiver).await;
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("alice").await;
    let tokens = app.offline_login(&client, &user).await;
    let refresh = refresh_token(&tokens);
    let access = tokens["access_token"].as_str().unwrap();

    for token in [refresh.as_str(), access] {
        let answers = crate::attacks::in_parallel(20, |_| app.revoke(&client, token)).await;
        assert!(answers.iter().all(|r| r.status() == 200), "RFC 7009 §2.2: 200 every time");
    }
    let sets = app.drain(&receiver, &stream).await;
    assert_eq!(sets.len(), 2, "one SET for the family, one for the access token: {sets:?}");
    assert!(sets.iter().all(|s| s.event_type == SESSION_REVOKED));
    let token_set = sets.iter().filter(|s| s.subject()["format"] == "jwt_id").count();
    assert_eq!(token_set, 1, "{sets:?}");
}

/// Bodies of the wrong shape, wrong types, deep nesting or no JSON at all: each is a 400
/// with an RFC 6749 §5.2-shaped JSON error, never a 500, at every endpoint that reads one.
async fn malformed_bodies_are_400_with_a_json_error_everywhere(app: &TestApp) {
    let receiver = app.receiver().await;
    let stream = app.poll_stream(&receiver).await;
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    // Wrong for every endpoint: no JSON, not an object, nested past any parser's patience.
    let anywhere: Vec<String> =
        vec![String::new(), "null".into(), "[]".into(), "\"stream\"".into(), "{".into(), "\u{0}".into(), deep];
    let poll = format!("/ssf/poll/{stream}");
    // Right shape, wrong types, per endpoint.
    let typed: [(Method, &str, Vec<Value>); 8] = [
        (
            Method::POST,
            "/ssf/streams",
            vec![json!({ "events_requested": [1, 2] }), json!({ "delivery": "push" }), json!({ "description": 5 })],
        ),
        (
            Method::PATCH,
            "/ssf/streams",
            vec![json!({ "stream_id": 7 }), json!({ "stream_id": stream, "delivery": { "method": 5 } })],
        ),
        (
            Method::PUT,
            "/ssf/streams",
            vec![json!({ "stream_id": [stream] }), json!({ "stream_id": stream, "events_requested": {} })],
        ),
        (
            Method::POST,
            "/ssf/status",
            vec![
                json!({ "stream_id": stream, "status": 5 }),
                json!({ "stream_id": stream, "status": "enabled", "reason": [] }),
            ],
        ),
        (Method::POST, "/ssf/verify", vec![json!({ "stream_id": stream, "state": {} }), json!({ "stream_id": ["x"] })]),
        (Method::POST, "/ssf/subjects/add", vec![json!({ "stream_id": stream, "subject": "x" })]),
        (Method::POST, "/ssf/subjects/remove", vec![json!({ "stream_id": stream })]),
        (
            Method::POST,
            poll.as_str(),
            vec![
                json!({ "maxEvents": 1.5 }),
                json!({ "maxEvents": 1e300 }),
                json!({ "maxEvents": "9" }),
                json!({ "ack": "all" }),
                json!({ "ack": [1] }),
                json!({ "setErrs": [] }),
                json!({ "setErrs": { "jti": { "description": "no err" } } }),
                json!({ "returnImmediately": "yes" }),
            ],
        ),
    ];
    for (method, path, wrong) in typed {
        let bodies = anywhere.iter().cloned().chain(wrong.iter().map(Value::to_string));
        for body in bodies {
            // The empty body is a valid poll (all defaults).
            if path == poll && body.is_empty() {
                continue;
            }
            let response = app
                .http
                .request(method.clone(), app.url(path))
                .bearer_auth(&receiver.token)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let shown: String = body.chars().take(60).collect();
            assert_eq!(response.status(), 400, "{method} {path} with {shown:?}");
            let error: Value = response.json().await.expect("a JSON error body");
            assert_eq!(error["error"], "invalid_request", "{method} {path} with {shown:?}");
        }
    }
    let status: Value = app
        .ssf(Method::GET, &format!("/ssf/status?stream_id={stream}"), Some(&receiver.token), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "enabled", "nothing changed");
}

crate::backend_tests!(
    a_disabled_receiver_is_pushed_nothing_more,
    a_long_poll_outliving_its_clients_disabling_gets_nothing,
    racing_revocations_announce_once,
    malformed_bodies_are_400_with_a_json_error_everywhere,
);

/// Long polls hold a socket and a task each, and each looks for SETs every second and at
/// every revocation: a receiver opening a thousand on one stream would multiply the
/// database's load and take every place from other receivers. A stream has a few waiting
/// at once; past that a poll answers at once, and another stream's poll still waits.
async fn one_stream_cannot_hoard_the_long_polls(database: &TestDatabase) {
    let timeout = tessera::config::Lifetime::parse("3s").unwrap();
    let app = TestApp::spawn(database, |s| s.ssf.long_poll_timeout = timeout).await.unwrap();
    let hoarder = app.receiver().await;
    let hoarded = app.poll_stream(&hoarder).await;
    let other = app.receiver().await;
    let others = app.poll_stream(&other).await;
    let hoarding = crate::attacks::in_parallel(12, |_| long_poll(&app, &hoarder, &hoarded));
    let (hoarding, other_wait) = tokio::join!(hoarding, async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        long_poll(&app, &other, &others).await
    });
    let waited = hoarding.iter().filter(|elapsed| **elapsed >= Duration::from_millis(2500)).count();
    assert!((1..=4).contains(&waited), "{waited} of 12 long polls of one stream waited: {hoarding:?}");
    assert!(other_wait >= Duration::from_millis(2500), "another stream still long-polls: {other_wait:?}");
    app.stop().await;
}

/// A receiver whose push endpoints never answer (gone dark, or made so on purpose) holds
/// only its own streams: another receiver's pushes go out while its attempts wait out
/// `ssf.push_timeout`. (With attempts sent in rounds, a round waited for its slowest.)
async fn a_dead_push_endpoint_delays_no_other_receiver(database: &TestDatabase) {
    let app = TestApp::spawn(database, |settings| {
        settings.ssf.push_timeout = tessera::config::Lifetime(Duration::from_secs(30));
    })
    .await
    .unwrap();
    // Accepts connections and never answers.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/events", black_hole.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<std::net::TcpStream> = black_hole.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    let dark = app.receiver().await;
    for _ in 0..5 {
        app.create_stream(&dark, json!({ "delivery": { "method": PUSH, "endpoint_url": dead_url } })).await;
    }
    let witness = app.receiver().await;
    let endpoint = PushReceiver::start(vec![]);
    app.create_stream(&witness, json!({ "delivery": { "method": PUSH, "endpoint_url": endpoint.url } })).await;

    // Twenty revocations: 120 deliveries, 100 of them to the dead endpoint.
    let service = app.register_client(ClientSpec::service()).await;
    let started = std::time::Instant::now();
    for _ in 0..20 {
        let token: Value = app.client_credentials(&service.id, service.secret(), &[]).await.json().await.unwrap();
        assert_eq!(app.revoke(&service, token["access_token"].as_str().unwrap()).await.status(), 200);
    }
    let received = endpoint.wait_for(20, Duration::from_secs(15)).await;
    assert_eq!(received.len(), 20, "the witness got every SET while the dead endpoint hung");
    eprintln!("twenty SETs to a live receiver beside a dead one: {:?}", started.elapsed());
    endpoint.stop().await;
    app.stop().await;
}

/// How long a long poll of `stream` waited; it must end empty.
async fn long_poll(app: &TestApp, receiver: &crate::helpers::signals::Receiver, stream: &str) -> Duration {
    let started = std::time::Instant::now();
    let (sets, _) = app.poll(receiver, stream, json!({})).await;
    assert!(sets.is_empty());
    started.elapsed()
}

mod on_their_own_servers {
    use super::*;
    crate::database_tests!(one_stream_cannot_hoard_the_long_polls, a_dead_push_endpoint_delays_no_other_receiver);
}
