//! Tessera's Shared Signals transmitter against an independent receiver written from the
//! specifications in Python (`tests/interop/python/ssf_receiver.py`: PyJWT, no Tessera
//! code): it reads the metadata, creates its stream, receives by long polling or by push,
//! validates every SET (signature with the JWKS, `typ`, `iss`, `aud`, one event, subject
//! formats, no `sub`/`exp`), checks a verification event's `state`, and acknowledges.

use crate::helpers::clients::ClientSpec;
use crate::helpers::TestApp;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const ACCOUNT_DISABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";

fn receiver_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/python/ssf_receiver.py")
}

/// Whether Python and PyJWT are here; outside CI a missing one skips the test.
fn is_python_ready() -> bool {
    let ready = std::process::Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        assert!(std::env::var_os("CI").is_none(), "PyJWT is missing in CI (.ci/run installs it)");
        eprintln!("skipping the Python SSF receiver: run .ci/run once to install its dependencies");
    }
    ready
}

/// The receiver process and its output lines.
struct PythonReceiver {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl PythonReceiver {
    /// Starts `ssf_receiver.py MODE` for a new receiver client of `app`, and waits until
    /// its stream exists.
    async fn start(app: &TestApp, mode: &str, extra: &[&str]) -> Self {
        let client = app
            .register_client(ClientSpec { scope: "ssf.manage ssf.read", audiences: vec![], ..ClientSpec::service() })
            .await;
        let mut child = Command::new("python3")
            .arg(receiver_script())
            .args([mode, app.address.as_str(), client.id.as_str(), client.secret()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut receiver = Self { child, lines };
        let ready = receiver.next().await;
        assert!(ready.get("ready").is_some(), "the receiver's stream: {ready}");
        receiver
    }

    /// Its next output line.
    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(40), self.lines.next_line())
            .await
            .expect("the receiver answers in time")
            .unwrap()
            .expect("the receiver wrote a line");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("a JSON line: {line}"))
    }

    /// Reads until the receiver is done; returns the SETs it validated. Panics on any
    /// validation or protocol error it reports.
    async fn finish(mut self) -> Vec<Value> {
        let mut sets = Vec::new();
        loop {
            let line = self.next().await;
            if let Some(error) = line.get("error") {
                panic!("the independent receiver refused Tessera: {error} ({line})");
            }
            if let Some(set) = line.get("set") {
                sets.push(set.clone());
            }
            if line.get("done").is_some() {
                break;
            }
        }
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.unwrap().unwrap();
        assert!(status.success(), "the receiver exits 0");
        sets
    }
}

/// Ends access three ways: a refresh-token family (RFC 7009), a user's everything
/// (disable: two events), each with its own SET.
async fn revoke_things(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("alice").await;
    let tokens = app.offline_login(&client, &user).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(app.revoke(&client, refresh).await.status(), 200);
    let disabled = crate::helpers::cli::tessera(app, &["user", "disable", "alice"], None);
    assert!(disabled.status.success());
}

fn event_types(sets: &[Value]) -> Vec<&str> {
    let mut types: Vec<&str> = sets.iter().filter_map(|s| s["event_type"].as_str()).collect();
    types.sort_unstable();
    types
}

async fn an_independent_receiver_long_polls_validates_and_acknowledges(app: &TestApp) {
    if !is_python_ready() {
        return;
    }
    let receiver = PythonReceiver::start(app, "poll", &["--expect", "3", "--timeout", "60", "--verify"]).await;
    revoke_things(app).await;
    let sets = receiver.finish().await;
    assert_eq!(event_types(&sets), [SESSION_REVOKED, SESSION_REVOKED, ACCOUNT_DISABLED]);
    let family = sets.iter().find(|s| s["subject"]["token_family"].is_object()).expect("the family's SET");
    assert_eq!(family["subject"]["format"], "complex");
}

async fn an_independent_receiver_gets_pushed_sets_after_failing_twice(app: &TestApp) {
    if !is_python_ready() {
        return;
    }
    let receiver =
        PythonReceiver::start(app, "push", &["--expect", "3", "--timeout", "60", "--verify", "--fail-first", "2"])
            .await;
    revoke_things(app).await;
    let sets = receiver.finish().await;
    assert_eq!(event_types(&sets), [SESSION_REVOKED, SESSION_REVOKED, ACCOUNT_DISABLED]);
}

crate::backend_tests!(
    an_independent_receiver_long_polls_validates_and_acknowledges,
    an_independent_receiver_gets_pushed_sets_after_failing_twice,
);
