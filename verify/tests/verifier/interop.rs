//! An independent JOSE library, Node's `jose`, makes DPoP proofs and client assertions
//! with ES256, EdDSA and RS256 keys; tessera-verify must accept them and compute the same
//! RFC 7638 thumbprints.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::SystemTime;
use tessera_verify::dpop::{ProofPolicy, ProofRequest};
use tessera_verify::{Algorithm, Jwk, KeySet};
use url::Url;

const HTU: &str = "https://api.example.com/invoices";
const ACCESS_TOKEN: &str = "an-access-token";

/// `jose`'s proofs, or `None` when Node or `jose` is missing outside CI (as in
/// `tests/api/interop.rs`).
fn jose_output() -> Option<Vec<Value>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/node");
    let is_ready = dir.join("node_modules/jose").is_dir() && Command::new("node").arg("--version").output().is_ok();
    if !is_ready {
        assert!(std::env::var_os("CI").is_none(), "node and jose are missing in CI (.ci/run installs them)");
        eprintln!("skipping the jose interop check: run .ci/run once to install its dependencies");
        return None;
    }
    let output = Command::new("node").arg(dir.join("dpop-proofs.mjs")).args([HTU, ACCESS_TOKEN]).output().unwrap();
    assert!(output.status.success(), "node failed: {}", String::from_utf8_lossy(&output.stderr));
    Some(serde_json::from_slice(&output.stdout).expect("JSON"))
}

#[test]
fn proofs_assertions_and_thumbprints_of_node_jose_are_accepted() {
    let Some(keys) = jose_output() else { return };
    assert_eq!(keys.len(), 3);
    let url = Url::parse(HTU).unwrap();
    let algorithms = [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256];
    for key in &keys {
        let alg = key["alg"].as_str().unwrap();
        let jwk = Jwk::from_value(&key["jwk"]).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(jwk.thumbprint(), key["thumbprint"].as_str().unwrap(), "{alg}: RFC 7638 thumbprints differ");

        let request = ProofRequest::new("GET", &url, SystemTime::now()).access_token(ACCESS_TOKEN);
        let proof = ProofPolicy::new().verify(key["proof"].as_str().unwrap(), &request);
        let proof = proof.unwrap_or_else(|e| panic!("{alg}: the proof is refused: {e}"));
        assert_eq!(proof.jkt, jwk.thumbprint());

        // A client JWK Set without `kid`s, as clients often register.
        let jwks = json!({ "keys": keys.iter().map(|k| k["jwk"].clone()).collect::<Vec<_>>() });
        let client_keys = KeySet::from_client_jwks(jwks.to_string().as_bytes(), &algorithms).unwrap();
        let verified = client_keys.verify_jws(key["assertion"].as_str().unwrap(), &algorithms);
        let verified = verified.unwrap_or_else(|e| panic!("{alg}: the assertion is refused: {e}"));
        assert_eq!(verified.header.alg.name(), alg);
        assert_eq!(verified.claims::<Value>().unwrap()["iss"], "client");
    }
}
