//! The JWK Set at the `jwks_uri` (RFC 7517 §5): public RSA members only, the RFC 7638
//! thumbprint as `kid`, cacheable, and revalidated with its ETag.

use crate::helpers::TestApp;

const PRIVATE_RSA_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

async fn jwks_has_public_rsa_members_only(app: &TestApp) {
    let response = app.http.get(app.url("/jwks.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let cache_control = response.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cache_control.contains("public") && cache_control.contains("max-age=900"), "{cache_control}");
    let body: serde_json::Value = response.json().await.unwrap();
    let keys = body["keys"].as_array().expect("a keys array");
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().unwrap();
    let mut members: Vec<&str> = key.keys().map(String::as_str).collect();
    members.sort();
    assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
    for private in PRIVATE_RSA_MEMBERS {
        assert!(!key.contains_key(private), "private member {private} served");
    }
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], app.kid.as_str());
    // The kid is the RFC 7638 thumbprint of the served key.
    let n = key["n"].as_str().unwrap();
    let e = key["e"].as_str().unwrap();
    assert_eq!(tessera::keys::jwk::rsa_thumbprint(n, e), app.kid);
}

async fn jwks_answers_304_to_a_matching_etag(app: &TestApp) {
    let first = app.http.get(app.url("/jwks.json")).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = app.http.get(app.url("/jwks.json")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());
    let other = app.http.get(app.url("/jwks.json")).header("if-none-match", "\"other\"").send().await.unwrap();
    assert_eq!(other.status(), 200);
}

crate::backend_tests!(jwks_has_public_rsa_members_only, jwks_answers_304_to_a_matching_etag);
