//! Running the Node interop scripts of `tests/interop/node` (openid-client 6, jose,
//! oauth4webapi), which `.ci/run` installs with `npm ci`.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

pub fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/node")
}

/// Whether Node and the scripts' packages are installed. Outside CI a missing install
/// skips the check (with a note naming `what`); in CI it fails the test: an interop check
/// never skips silently where it is meant to run.
pub fn node_ready(what: &str) -> bool {
    let ready = node_dir().join("node_modules/openid-client").is_dir()
        && Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ready {
        assert!(std::env::var_os("CI").is_none(), "node and tests/interop/node/node_modules must be installed in CI");
        eprintln!("skipping {what}: Node or tests/interop/node/node_modules is missing (npm ci there)");
    }
    ready
}

/// Runs `script` with `args` and parses its standard output as one JSON value; `None` when
/// Node is not installed (see [`node_ready`]). A non-zero exit, which is how the scripts
/// report a response their library refused, fails the test with the script's stderr.
///
/// The script runs off the test's runtime: the server's database pool lives on that
/// runtime (PostgreSQL), and a blocked runtime would leave every request hanging.
pub async fn run_script(script: &str, args: &[&str]) -> Option<Value> {
    if !node_ready(script) {
        return None;
    }
    let path = node_dir().join(script);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || Command::new("node").arg(path).args(args).output())
        .await
        .unwrap()
        .expect("node runs");
    assert!(output.status.success(), "{script} failed: {}", String::from_utf8_lossy(&output.stderr));
    Some(serde_json::from_slice(&output.stdout).expect("a JSON value on stdout"))
}
