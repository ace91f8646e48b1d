//! The Shared Signals transmitter from a receiver's side (SSF 1.0 §7, §8; RFC 8935, RFC
//! 8936): metadata, stream management, who may see which stream, verification, poll with
//! long polling, push with retries, and the SSRF guard on push endpoints. What each
//! revocation sends is in `revocation_events.rs`.

use crate::helpers::clients::ClientSpec;
use crate::helpers::signals::{Answer, PushReceiver, POLL, PUSH, STREAM_UPDATED, VERIFICATION};
use crate::helpers::{TestApp, TestDatabase};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn the_metadata_names_every_endpoint_and_discovery_names_the_metadata(app: &TestApp) {
    let response = app.http.get(app.url("/.well-known/ssf-configuration")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let metadata: Value = response.json().await.unwrap();
    assert_eq!(metadata["spec_version"], "1_0");
    assert_eq!(metadata["issuer"], app.address.as_str(), "SSF §7.2.4: the issuer the receiver used");
    assert_eq!(metadata["jwks_uri"], app.url("/jwks.json"));
    assert_eq!(metadata["delivery_methods_supported"], json!([PUSH, POLL]));
    for endpoint in ["configuration_endpoint", "status_endpoint", "verification_endpoint", "add_subject_endpoint"] {
        assert!(metadata[endpoint].as_str().is_some_and(|url| url.starts_with(&app.address)), "{endpoint}");
    }
    assert_eq!(metadata["authorization_schemes"], json!([{ "spec_urn": "urn:ietf:rfc:6749" }]));
    assert_eq!(metadata["default_subjects"], "ALL");
    let discovery: Value =
        app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["ssf_configuration_uri"], app.url("/.well-known/ssf-configuration"));
}

async fn turned_off_there_is_no_transmitter(database: &TestDatabase) {
    let app = TestApp::spawn(database, |settings| settings.ssf.enabled = false).await.unwrap();
    let metadata = app.http.get(app.url("/.well-known/ssf-configuration")).send().await.unwrap();
    assert_eq!(metadata.status(), 404);
    let discovery: Value =
        app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert!(discovery.get("ssf_configuration_uri").is_none());
    let receiver = app.receiver().await;
    let create = app.ssf(Method::POST, "/ssf/streams", Some(&receiver.token), Some(json!({}))).await;
    assert_eq!(create.status(), 404);
    app.stop().await;
}

async fn a_stream_is_created_read_changed_and_deleted(app: &TestApp) {
    let receiver = app.receiver().await;
    let requested = [crate::helpers::signals::SESSION_REVOKED, "https://example.com/unknown-event"];
    let config =
        app.create_stream(&receiver, json!({ "events_requested": requested, "description": "orders-service" })).await;
    let id = config["stream_id"].as_str().unwrap();
    assert_eq!(config["iss"], app.address.as_str());
    assert_eq!(config["aud"], receiver.client.id.as_str());
    assert_eq!(config["events_supported"].as_array().unwrap().len(), 4);
    assert_eq!(config["events_requested"], json!(requested), "kept as sent");
    assert_eq!(config["events_delivered"], json!([crate::helpers::signals::SESSION_REVOKED]));
    assert_eq!(config["delivery"], json!({ "method": POLL, "endpoint_url": app.url(&format!("/ssf/poll/{id}")) }));
    assert_eq!(config["description"], "orders-service");

    let read = app.ssf(Method::GET, &format!("/ssf/streams?stream_id={id}"), Some(&receiver.token), None).await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.json::<Value>().await.unwrap(), config);
    let list: Value = app.ssf(Method::GET, "/ssf/streams", Some(&receiver.token), None).await.json().await.unwrap();
    assert_eq!(list, json!([config]));

    // PATCH changes what is present; the transmitter's members may be echoed, not changed.
    let patch = json!({ "stream_id": id, "description": "renamed", "iss": app.address });
    let patched: Value =
        app.ssf(Method::PATCH, "/ssf/streams", Some(&receiver.token), Some(patch)).await.json().await.unwrap();
    assert_eq!((&patched["description"], &patched["events_requested"]), (&json!("renamed"), &json!(requested)));
    let forged = json!({ "stream_id": id, "aud": "someone-else" });
    let refused = app.ssf(Method::PATCH, "/ssf/streams", Some(&receiver.token), Some(forged)).await;
    assert_eq!(refused.status(), 400, "SSF §8.1.1.3: a transmitter-supplied member cannot change");
    // PUT replaces: what is missing is removed.
    let replaced: Value = app
        .ssf(Method::PUT, "/ssf/streams", Some(&receiver.token), Some(json!({ "stream_id": id })))
        .await
        .json()
        .await
        .unwrap();
    assert!(replaced.get("description").is_none() && replaced.get("events_requested").is_none());
    assert_eq!(replaced["events_delivered"].as_array().unwrap().len(), 4, "nothing requested: everything");

    let deleted = app.ssf(Method::DELETE, &format!("/ssf/streams?stream_id={id}"), Some(&receiver.token), None).await;
    assert_eq!(deleted.status(), 204);
    let gone = app.ssf(Method::GET, &format!("/ssf/streams?stream_id={id}"), Some(&receiver.token), None).await;
    assert_eq!(gone.status(), 404);
}

async fn a_receiver_never_sees_or_touches_another_receivers_stream(app: &TestApp) {
    let owner = app.receiver().await;
    let stranger = app.receiver().await;
    let id = app.poll_stream(&owner).await;
    let calls: [(Method, String, Option<Value>); 7] = [
        (Method::GET, format!("/ssf/streams?stream_id={id}"), None),
        (Method::PATCH, "/ssf/streams".into(), Some(json!({ "stream_id": id, "description": "mine now" }))),
        (Method::DELETE, format!("/ssf/streams?stream_id={id}"), None),
        (Method::GET, format!("/ssf/status?stream_id={id}"), None),
        (Method::POST, "/ssf/status".into(), Some(json!({ "stream_id": id, "status": "disabled" }))),
        (Method::POST, "/ssf/verify".into(), Some(json!({ "stream_id": id }))),
        (Method::POST, format!("/ssf/poll/{id}"), Some(json!({ "returnImmediately": true }))),
    ];
    for (method, path, body) in calls {
        let response = app.ssf(method.clone(), &path, Some(&stranger.token), body).await;
        assert_eq!(response.status(), 404, "{method} {path}: another's stream is as unknown as a missing one");
    }
    let list: Value = app.ssf(Method::GET, "/ssf/streams", Some(&stranger.token), None).await.json().await.unwrap();
    assert_eq!(list, json!([]));
    let status: Value = app
        .ssf(Method::GET, &format!("/ssf/status?stream_id={id}"), Some(&owner.token), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status, json!({ "stream_id": id, "status": "enabled" }), "untouched");
}

async fn only_receivers_with_the_ssf_scopes_get_in(app: &TestApp) {
    let missing = app.ssf(Method::GET, "/ssf/streams", None, None).await;
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], r#"Bearer realm="tessera""#);
    let garbage = app.ssf(Method::GET, "/ssf/streams", Some("not-a-token"), None).await;
    assert_eq!(garbage.status(), 401);
    assert!(garbage.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    // A client without the SSF scopes.
    let service = app.register_client(ClientSpec { audiences: vec![], ..ClientSpec::service() }).await;
    let token = app.token_of(&service).await;
    let unscoped = app.ssf(Method::POST, "/ssf/streams", Some(&token), Some(json!({}))).await;
    assert_eq!(unscoped.status(), 403);
    assert!(unscoped.headers()["www-authenticate"].to_str().unwrap().contains(r#"scope="ssf.manage""#));
    // Read-only: may read and poll, not create.
    let reader = app.receiver_with(ClientSpec { scope: "ssf.read", ..ClientSpec::receiver() }).await;
    assert_eq!(app.ssf(Method::GET, "/ssf/streams", Some(&reader.token), None).await.status(), 200);
    let create = app.ssf(Method::POST, "/ssf/streams", Some(&reader.token), Some(json!({}))).await;
    assert_eq!(create.status(), 403);
    // A token meant for another audience is not a token for Tessera.
    let elsewhere =
        app.receiver_with(ClientSpec { audiences: vec!["https://api.example.com"], ..ClientSpec::receiver() }).await;
    assert_eq!(app.ssf(Method::GET, "/ssf/streams", Some(&elsewhere.token), None).await.status(), 401);
    // A revoked token is refused at once.
    let receiver = app.receiver().await;
    let revoke = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(&receiver.client.id, receiver.client.secret.as_ref())
        .form(&[("token", receiver.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    assert_eq!(app.ssf(Method::GET, "/ssf/streams", Some(&receiver.token), None).await.status(), 401);
}

async fn malformed_requests_get_400_and_nothing_changes(app: &TestApp) {
    let receiver = app.receiver().await;
    let token = Some(receiver.token.as_str());
    for body in [
        json!({ "delivery": { "method": "urn:example:carrier-pigeon" } }),
        json!({ "delivery": { "method": PUSH } }),
        json!({ "delivery": { "method": PUSH, "endpoint_url": "not a url" } }),
        json!({ "events_requested": "not-an-array" }),
        json!({ "events_requested": vec!["x"; 33] }),
        json!({ "delivery": { "method": PUSH, "endpoint_url": "https://r.example/e", "authorization_header": "a\nb" } }),
    ] {
        let response = app.ssf(Method::POST, "/ssf/streams", token, Some(body.clone())).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_request");
    }
    let not_json = app.http.post(app.url("/ssf/streams")).bearer_auth(&receiver.token).body("{").send().await.unwrap();
    assert_eq!(not_json.status(), 400);
    let huge = app
        .http
        .post(app.url("/ssf/streams"))
        .bearer_auth(&receiver.token)
        .header("content-type", "application/json")
        .body(format!("{{\"description\": \"{}\"}}", "x".repeat(100 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413, "bodies are bounded");
    let list: Value = app.ssf(Method::GET, "/ssf/streams", token, None).await.json().await.unwrap();
    assert_eq!(list, json!([]), "nothing was created");
    let id = app.poll_stream(&receiver).await;
    let status = json!({ "stream_id": id, "status": "sleeping" });
    assert_eq!(app.ssf(Method::POST, "/ssf/status", token, Some(status)).await.status(), 400);
    let negative = json!({ "maxEvents": -1 });
    assert_eq!(app.ssf(Method::POST, &format!("/ssf/poll/{id}"), token, Some(negative)).await.status(), 400);
    let too_many = json!({ "ack": vec!["x"; 1001], "returnImmediately": true });
    assert_eq!(app.ssf(Method::POST, &format!("/ssf/poll/{id}"), token, Some(too_many)).await.status(), 400);
    let subject = json!({ "stream_id": id, "subject": { "id": "no format" } });
    assert_eq!(app.ssf(Method::POST, "/ssf/subjects/add", token, Some(subject)).await.status(), 400);
}

async fn a_receiver_has_at_most_its_bound_of_streams(database: &TestDatabase) {
    let app = TestApp::spawn(database, |settings| settings.ssf.max_streams_per_receiver = 2).await.unwrap();
    let receiver = app.receiver().await;
    let creates = crate::attacks::in_parallel(12, |_| {
        app.ssf(Method::POST, "/ssf/streams", Some(&receiver.token), Some(json!({})))
    })
    .await;
    let statuses: Vec<u16> = creates.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 2, "{statuses:?}");
    assert!(statuses.iter().all(|s| [201, 409].contains(s)), "SSF §8.1.1.1: 409 past the bound: {statuses:?}");
    app.stop().await;
}

async fn verification_echoes_the_state_and_is_rate_limited(app: &TestApp) {
    let receiver = app.receiver().await;
    let id = app.poll_stream(&receiver).await;
    let verify = json!({ "stream_id": id, "state": "VGhpcyBpcyBh" });
    let first = app.ssf(Method::POST, "/ssf/verify", Some(&receiver.token), Some(verify.clone())).await;
    assert_eq!(first.status(), 204, "SSF §8.1.4.2");
    let again = app.ssf(Method::POST, "/ssf/verify", Some(&receiver.token), Some(verify)).await;
    assert_eq!(again.status(), 429, "sooner than min_verification_interval");
    assert!(again.headers().contains_key("retry-after"));
    let sets = app.drain(&receiver, &id).await;
    assert_eq!(sets.len(), 1);
    let set = &sets[0];
    assert_eq!(set.event_type, VERIFICATION);
    assert_eq!(set.event, json!({ "state": "VGhpcyBpcyBh" }));
    assert_eq!(set.subject(), &json!({ "format": "opaque", "id": id }), "SSF §8.1.4.1: the stream itself");
    assert!(app.drain(&receiver, &id).await.is_empty(), "acknowledged");
}

async fn a_long_poll_waits_and_wakes_the_moment_something_is_owed(app: &TestApp) {
    let receiver = app.receiver().await;
    let id = app.poll_stream(&receiver).await;
    let started = Instant::now();
    let waiting = app.poll(&receiver, &id, json!({ "returnImmediately": false }));
    let trigger = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let verify = json!({ "stream_id": id, "state": "wake" });
        app.ssf(Method::POST, "/ssf/verify", Some(&receiver.token), Some(verify)).await
    };
    let ((sets, _), triggered) = tokio::join!(waiting, trigger);
    assert_eq!(triggered.status(), 204);
    assert_eq!(sets.len(), 1, "the long poll got the SET");
    assert!(started.elapsed() >= Duration::from_millis(300), "it waited");
    assert!(started.elapsed() < Duration::from_secs(5), "and answered at once: {:?}", started.elapsed());
}

async fn a_long_poll_ends_empty_at_its_time_out(database: &TestDatabase) {
    let app = TestApp::spawn(database, |s| s.ssf.long_poll_timeout = tessera::config::Lifetime::parse("1s").unwrap())
        .await
        .unwrap();
    let receiver = app.receiver().await;
    let id = app.poll_stream(&receiver).await;
    let started = Instant::now();
    let (sets, more) = app.poll(&receiver, &id, json!({})).await;
    assert!(sets.is_empty() && !more);
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());
    app.stop().await;
}

async fn max_events_bounds_a_poll_and_more_available_says_so(app: &TestApp) {
    let receiver = app.receiver().await;
    let id = app.poll_stream(&receiver).await;
    // Three verification events, a second apart (min_verification_interval is 1s in tests).
    for state in ["a", "b", "c"] {
        let verify = json!({ "stream_id": id, "state": state });
        assert_eq!(app.ssf(Method::POST, "/ssf/verify", Some(&receiver.token), Some(verify)).await.status(), 204);
        app.clock.advance(chrono::Duration::seconds(2));
    }
    let (first, more) = app.poll(&receiver, &id, json!({ "maxEvents": 2, "returnImmediately": true })).await;
    assert_eq!((first.len(), more), (2, true));
    // The oldest two (`sets` is a JSON object: its members have no order).
    let mut states: Vec<Value> = first.iter().map(|s| s.event["state"].clone()).collect();
    states.sort_by_key(|state| state.to_string());
    assert_eq!(states, [json!("a"), json!("b")]);
    let ack: Vec<&str> = first.iter().map(|s| s.jti.as_str()).collect();
    let (rest, more) = app.poll(&receiver, &id, json!({ "ack": ack, "returnImmediately": true })).await;
    assert_eq!((rest.len(), more), (1, false));
    assert_eq!(rest[0].event["state"], "c");
    // A SET reported as unusable is not sent again either.
    let errs = json!({ "setErrs": { rest[0].jti.clone(): { "err": "invalid_key", "description": "?" } }, "returnImmediately": true });
    let (after, _) = app.poll(&receiver, &id, errs).await;
    assert!(after.is_empty());
}

async fn a_paused_stream_holds_its_sets_until_enabled(app: &TestApp) {
    let receiver = app.receiver().await;
    let id = app.poll_stream(&receiver).await;
    let pause = json!({ "stream_id": id, "status": "paused", "reason": "maintenance" });
    let paused: Value =
        app.ssf(Method::POST, "/ssf/status", Some(&receiver.token), Some(pause)).await.json().await.unwrap();
    assert_eq!(paused, json!({ "stream_id": id, "status": "paused", "reason": "maintenance" }));
    // The receiver paused it itself: no stream-updated event (it knows).
    let verify = json!({ "stream_id": id, "state": "held" });
    assert_eq!(app.ssf(Method::POST, "/ssf/verify", Some(&receiver.token), Some(verify)).await.status(), 204);
    let enable = json!({ "stream_id": id, "status": "enabled" });
    assert_eq!(app.ssf(Method::POST, "/ssf/status", Some(&receiver.token), Some(enable)).await.status(), 200);
    let sets = app.drain(&receiver, &id).await;
    assert!(sets.iter().all(|s| s.event_type != STREAM_UPDATED));
    assert_eq!(sets.iter().filter(|s| s.event_type == VERIFICATION).count(), 1);
}

async fn push_delivers_with_the_receivers_header_and_retries_after_failures(app: &TestApp) {
    let receiver = app.receiver().await;
    let endpoint = PushReceiver::start(vec![Answer::Fail(503), Answer::Fail(500)]);
    let config = app
        .create_stream(
            &receiver,
            json!({ "delivery": { "method": PUSH, "endpoint_url": endpoint.url, "authorization_header": "Bearer push-secret" } }),
        )
        .await;
    assert_eq!(
        config["delivery"],
        json!({ "method": PUSH, "endpoint_url": endpoint.url }),
        "the header is never shown"
    );
    let id = config["stream_id"].as_str().unwrap();
    let verify = json!({ "stream_id": id, "state": "pushed" });
    assert_eq!(app.ssf(Method::POST, "/ssf/verify", Some(&receiver.token), Some(verify)).await.status(), 204);
    // Two failures, then accepted: the retries wait 1 s and 2 s.
    let received = endpoint.wait_for(3, Duration::from_secs(15)).await;
    assert_eq!(received.len(), 3, "delivered after two failures");
    for (set, authorization) in &received {
        assert_eq!(authorization.as_deref(), Some("Bearer push-secret"), "SSF §6.1.1: the receiver's header");
        let set = app.verify_set(set, &receiver.client.id).await;
        assert_eq!(set.event, json!({ "state": "pushed" }));
    }
    assert_eq!(received[0].0, received[2].0, "the same SET each time");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(endpoint.wait_for(4, Duration::ZERO).await.len(), 3, "not sent again once accepted");
    endpoint.stop().await;
}

async fn a_set_the_receiver_refuses_for_good_is_not_sent_again(app: &TestApp) {
    let receiver = app.receiver().await;
    let endpoint = PushReceiver::start(vec![Answer::Refuse("invalid_audience")]);
    let config =
        app.create_stream(&receiver, json!({ "delivery": { "method": PUSH, "endpoint_url": endpoint.url } })).await;
    let id = config["stream_id"].as_str().unwrap();
    let verify = json!({ "stream_id": id });
    assert_eq!(app.ssf(Method::POST, "/ssf/verify", Some(&receiver.token), Some(verify)).await.status(), 204);
    assert_eq!(endpoint.wait_for(1, Duration::from_secs(5)).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(endpoint.wait_for(2, Duration::ZERO).await.len(), 1, "RFC 8935 §2.4: invalid_audience will not change");
    endpoint.stop().await;
}

async fn push_endpoints_must_be_public_https(database: &TestDatabase) {
    // Production settings: no loopback, no private ranges.
    let app = TestApp::spawn(database, |settings| settings.ssf.allow_loopback_push = false).await.unwrap();
    let receiver = app.receiver().await;
    for endpoint in [
        "http://receiver.example.com/events",
        "http://127.0.0.1:9000/events",
        "https://127.0.0.1/events",
        "https://localhost/events",
        "https://10.0.0.5/events",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/events",
        "https://[fd00::1]/events",
        "https://user:pw@receiver.example.com/events",
    ] {
        let body = json!({ "delivery": { "method": PUSH, "endpoint_url": endpoint } });
        let response = app.ssf(Method::POST, "/ssf/streams", Some(&receiver.token), Some(body)).await;
        assert_eq!(response.status(), 400, "{endpoint}");
    }
    // A public https endpoint is accepted (nothing is sent until an event).
    let body = json!({ "delivery": { "method": PUSH, "endpoint_url": "https://receiver.example.com/events" } });
    assert_eq!(app.ssf(Method::POST, "/ssf/streams", Some(&receiver.token), Some(body)).await.status(), 201);
    app.stop().await;
}

async fn subjects_can_be_added_and_removed_and_every_subject_stays_in(app: &TestApp) {
    let receiver = app.receiver().await;
    let id = app.poll_stream(&receiver).await;
    let subject = json!({ "format": "email", "email": "user@example.com" });
    let add = json!({ "stream_id": id, "subject": subject, "verified": true });
    assert_eq!(app.ssf(Method::POST, "/ssf/subjects/add", Some(&receiver.token), Some(add)).await.status(), 200);
    let remove = json!({ "stream_id": id, "subject": subject });
    assert_eq!(app.ssf(Method::POST, "/ssf/subjects/remove", Some(&receiver.token), Some(remove)).await.status(), 204);
    let unknown = json!({ "stream_id": "no-such-stream", "subject": subject });
    assert_eq!(app.ssf(Method::POST, "/ssf/subjects/add", Some(&receiver.token), Some(unknown)).await.status(), 404);
}

async fn an_operator_lists_shows_and_disables_streams_and_the_receiver_is_told(app: &TestApp) {
    use crate::helpers::cli::tessera;
    let receiver = app.receiver().await;
    let id = app.poll_stream(&receiver).await;
    let listed = tessera(app, &["stream", "list", "--json"], None);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["stream_id"], id.as_str());
    assert_eq!(listed[0]["receiver"], receiver.client.id.as_str());
    let shown = tessera(app, &["stream", "show", &id, "--json"], None);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!((&shown["status"], &shown["delivery"]), (&json!("enabled"), &json!("poll")));
    let missing = tessera(app, &["stream", "show", "no-such-stream"], None);
    assert!(!missing.status.success());

    let disabled = tessera(app, &["stream", "disable", &id, "--reason", "retired service"], None);
    assert!(disabled.status.success(), "{}", String::from_utf8_lossy(&disabled.stderr));
    // SSF §8.1.5: told before the stream stops, and nothing else comes.
    let sets = app.drain(&receiver, &id).await;
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].event_type, STREAM_UPDATED);
    assert_eq!(sets[0].event, json!({ "status": "disabled", "reason": "retired service" }));
    let status: Value = app
        .ssf(Method::GET, &format!("/ssf/status?stream_id={id}"), Some(&receiver.token), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status, json!({ "stream_id": id, "status": "disabled", "reason": "retired service" }));
}

crate::backend_tests!(
    an_operator_lists_shows_and_disables_streams_and_the_receiver_is_told,
    the_metadata_names_every_endpoint_and_discovery_names_the_metadata,
    a_stream_is_created_read_changed_and_deleted,
    a_receiver_never_sees_or_touches_another_receivers_stream,
    only_receivers_with_the_ssf_scopes_get_in,
    malformed_requests_get_400_and_nothing_changes,
    verification_echoes_the_state_and_is_rate_limited,
    a_long_poll_waits_and_wakes_the_moment_something_is_owed,
    max_events_bounds_a_poll_and_more_available_says_so,
    a_paused_stream_holds_its_sets_until_enabled,
    push_delivers_with_the_receivers_header_and_retries_after_failures,
    a_set_the_receiver_refuses_for_good_is_not_sent_again,
    subjects_can_be_added_and_removed_and_every_subject_stays_in,
);

/// Two replicas on one database: a revocation on A reaches a receiver long-polling B, and
/// on PostgreSQL it does so through `NOTIFY` (a third storage, sharing nothing in memory
/// with A, hears of it).
async fn a_revocation_on_one_replica_reaches_a_long_poll_on_another(database: &TestDatabase) {
    let a = TestApp::spawn(database, |_| {}).await.unwrap();
    let b = TestApp::spawn(database, |s| s.ssf.long_poll_timeout = tessera::config::Lifetime::parse("20s").unwrap())
        .await
        .unwrap();
    let receiver = b.receiver().await;
    let stream = b.poll_stream(&receiver).await;
    let client = a.register_client(ClientSpec::offline_app()).await;
    let user = a.create_user("alice").await;
    let tokens = a.offline_login(&client, &user).await;
    let mut elsewhere = b.storage.events_signal();
    elsewhere.borrow_and_update();

    let started = Instant::now();
    let waiting = b.poll(&receiver, &stream, json!({}));
    let revoke = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        a.revoke(&client, tokens["refresh_token"].as_str().unwrap()).await
    };
    let ((sets, _), revoked) = tokio::join!(waiting, revoke);
    assert_eq!(revoked.status(), 200);
    assert_eq!(sets.len(), 1, "the long poll on B got A's revocation");
    assert_eq!(sets[0].event_type, crate::helpers::signals::SESSION_REVOKED);
    eprintln!("revocation on A reached a long poll on B after {:?}", started.elapsed());
    if matches!(database, TestDatabase::Postgres { .. }) {
        let notified = tokio::time::timeout(Duration::from_secs(10), elsewhere.changed()).await;
        assert!(notified.is_ok_and(|changed| changed.is_ok()), "NOTIFY reached another replica's storage");
    }
    a.stop().await;
    b.stop().await;
}

mod on_their_own_servers {
    use super::*;
    crate::database_tests!(
        a_revocation_on_one_replica_reaches_a_long_poll_on_another,
        turned_off_there_is_no_transmitter,
        a_receiver_has_at_most_its_bound_of_streams,
        a_long_poll_ends_empty_at_its_time_out,
        push_endpoints_must_be_public_https,
    );
}
