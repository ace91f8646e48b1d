//! Each check of RFC 9068 §4, one token at a time, against a mock issuer.

use crate::support::{access_token_header, claims, now, tessera_key, MockIssuer, MockIssuerExt, TestKey, AUDIENCE};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm as JwtAlgorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::time::Duration;
use tessera_verify::{Algorithm, Verifier, VerifyError};

async fn setup() -> (MockIssuer, TestKey, Verifier) {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let verifier = issuer.verifier().build().await.expect("the verifier builds");
    (issuer, key, verifier)
}

fn b64(json: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
}

#[tokio::test]
async fn a_valid_token_verifies_and_its_claims_are_typed() {
    let (issuer, key, verifier) = setup().await;
    let mut claims = claims(issuer.issuer());
    claims["sid"] = json!("session-1");
    claims["acr"] = json!("urn:example:mfa");
    let verified = verifier.verify(&key.sign(&claims)).await.expect("verifies");
    assert_eq!(verified.iss, issuer.issuer());
    assert_eq!(verified.sub, "3f2c9a4e-7b1d-4c8e-9a65-0d2f1e8b7c43");
    assert_eq!(verified.client_id, "3f2c9a4e-7b1d-4c8e-9a65-0d2f1e8b7c43");
    assert_eq!(verified.aud, [AUDIENCE]);
    assert!(verified.scope.contains("invoices:read") && verified.scope.contains("invoices:write"));
    assert!(!verified.scope.contains("invoices"));
    assert_eq!(verified.sid.as_deref(), Some("session-1"));
    assert_eq!(verified.jti, "9b8f5d2c41e04a7f8c3e6b1a2d5f7e90");
    assert_eq!(verified.exp - verified.iat, 300);
    assert_eq!(verified.extra.get("acr"), Some(&json!("urn:example:mfa")));
    assert_eq!(verifier.key_ids(), vec![key.kid()]);
}

#[tokio::test]
async fn any_configured_audience_in_an_audience_array_is_enough() {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let verifier = Verifier::builder(issuer.issuer()).audiences(["https://a.example", AUDIENCE]).build().await.unwrap();
    let mut claims = claims(issuer.issuer());
    claims["aud"] = json!(["https://other.example", AUDIENCE]);
    assert!(verifier.verify(&key.sign(&claims)).await.is_ok());
}

#[tokio::test]
async fn the_full_media_type_is_accepted_as_typ() {
    let (issuer, key, verifier) = setup().await;
    let mut header = access_token_header(key.kid());
    header["typ"] = json!("application/at+jwt");
    assert!(verifier.verify(&key.sign_with_header(&header, &claims(issuer.issuer()))).await.is_ok());
}

#[tokio::test]
async fn an_expired_token_is_refused_beyond_the_leeway() {
    let (issuer, key, verifier) = setup().await;
    let mut expired = claims(issuer.issuer());
    expired["iat"] = json!(now() - 400);
    expired["exp"] = json!(now() - 60);
    assert!(matches!(verifier.verify(&key.sign(&expired)).await, Err(VerifyError::Expired)));
    // Expired ten seconds ago: within the default 30 s of clock skew.
    expired["exp"] = json!(now() - 10);
    assert!(verifier.verify(&key.sign(&expired)).await.is_ok());
}

#[tokio::test]
async fn the_leeway_is_configurable() {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let strict = issuer.verifier().leeway(Duration::ZERO).build().await.unwrap();
    let mut claims = claims(issuer.issuer());
    claims["exp"] = json!(now() - 1);
    assert!(matches!(strict.verify(&key.sign(&claims)).await, Err(VerifyError::Expired)));
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused() {
    let (issuer, key, verifier) = setup().await;
    let mut early = claims(issuer.issuer());
    early["nbf"] = json!(now() + 120);
    assert!(matches!(verifier.verify(&key.sign(&early)).await, Err(VerifyError::NotYetValid)));
    early["nbf"] = json!(now() + 10);
    assert!(verifier.verify(&key.sign(&early)).await.is_ok(), "within the leeway");

    let mut issued_in_the_future = claims(issuer.issuer());
    issued_in_the_future["iat"] = json!(now() + 120);
    let result = verifier.verify(&key.sign(&issued_in_the_future)).await;
    assert!(matches!(result, Err(VerifyError::NotYetValid)));
}

#[tokio::test]
async fn another_issuer_is_refused_even_when_it_differs_only_by_a_slash() {
    let (issuer, key, verifier) = setup().await;
    for other in [format!("{}/", issuer.issuer()), "https://evil.example".into(), issuer.issuer().to_uppercase()] {
        let mut claims = claims(issuer.issuer());
        claims["iss"] = json!(other);
        assert!(matches!(verifier.verify(&key.sign(&claims)).await, Err(VerifyError::WrongIssuer)), "{other}");
    }
}

#[tokio::test]
async fn another_audience_is_refused() {
    let (issuer, key, verifier) = setup().await;
    for other in [json!("https://billing.example.com"), json!(["a", "b"]), json!(format!("{AUDIENCE}/"))] {
        let mut claims = claims(issuer.issuer());
        claims["aud"] = other.clone();
        assert!(matches!(verifier.verify(&key.sign(&claims)).await, Err(VerifyError::WrongAudience)), "{other}");
    }
}

#[tokio::test]
async fn each_required_claim_must_be_present() {
    let (issuer, key, verifier) = setup().await;
    for name in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
        let mut claims = claims(issuer.issuer());
        claims.as_object_mut().unwrap().remove(name);
        let result = verifier.verify(&key.sign(&claims)).await;
        assert!(matches!(result, Err(VerifyError::MissingClaim(n)) if n == name), "{name}: {result:?}");
    }
    // `scope` is optional (RFC 9068 §2.2.3): no claim, no scopes.
    let mut claims = claims(issuer.issuer());
    claims.as_object_mut().unwrap().remove("scope");
    assert!(verifier.verify(&key.sign(&claims)).await.unwrap().scope.is_empty());
}

#[tokio::test]
async fn a_token_of_another_type_is_refused() {
    let (issuer, key, verifier) = setup().await;
    for typ in [Some("JWT"), Some("id_token+jwt"), Some("at+jwt2"), None] {
        let mut header = access_token_header(key.kid());
        match typ {
            Some(typ) => header["typ"] = json!(typ),
            None => drop(header.as_object_mut().unwrap().remove("typ")),
        }
        let result = verifier.verify(&key.sign_with_header(&header, &claims(issuer.issuer()))).await;
        assert!(matches!(result, Err(VerifyError::WrongType)), "{typ:?}: {result:?}");
    }
}

#[tokio::test]
async fn alg_none_is_refused() {
    let (issuer, key, verifier) = setup().await;
    let payload = b64(&claims(issuer.issuer()));
    for alg in ["none", "None", "NONE"] {
        let header = b64(&json!({ "alg": alg, "typ": "at+jwt", "kid": key.kid() }));
        // The unsecured JWS of RFC 7519 §6.1 has an empty signature …
        let result = verifier.verify(&format!("{header}.{payload}.")).await;
        assert!(matches!(result, Err(VerifyError::Malformed(_))), "{alg}: {result:?}");
        // … and one with a signature still names an algorithm that is never accepted.
        let result = verifier.verify(&format!("{header}.{payload}.c2lnbmF0dXJl")).await;
        assert!(matches!(result, Err(VerifyError::UnsupportedAlgorithm)), "{alg}: {result:?}");
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    // Even a verifier that allows every algorithm it can express.
    let all =
        [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS384, Algorithm::PS512];
    let verifier = issuer.verifier().algorithms(all).build().await.unwrap();
    let jwk = key.public_jwk();
    let n = jwk["n"].as_str().unwrap();
    let secrets: [Vec<u8>; 4] = [
        key.public_key_pem().into_bytes(),
        URL_SAFE_NO_PAD.decode(n).unwrap(),
        n.as_bytes().to_vec(),
        serde_json::to_vec(&jwk).unwrap(),
    ];
    for secret in secrets {
        for alg in [JwtAlgorithm::HS256, JwtAlgorithm::HS384, JwtAlgorithm::HS512] {
            let mut header = Header::new(alg);
            header.typ = Some("at+jwt".into());
            header.kid = Some(key.kid().to_owned());
            let forged =
                jsonwebtoken::encode(&header, &claims(issuer.issuer()), &EncodingKey::from_secret(&secret)).unwrap();
            let result = verifier.verify(&forged).await;
            assert!(matches!(result, Err(VerifyError::UnsupportedAlgorithm)), "{alg:?}: {result:?}");
        }
    }
}

#[tokio::test]
async fn an_algorithm_outside_the_allow_list_is_refused() {
    let (issuer, key, verifier) = setup().await;
    let mut header = access_token_header(key.kid());
    header["alg"] = json!("RS384");
    let result = verifier.verify(&key.sign_with_header(&header, &claims(issuer.issuer()))).await;
    assert!(matches!(result, Err(VerifyError::UnsupportedAlgorithm)));
}

#[tokio::test]
async fn a_key_published_for_rs256_does_not_verify_ps256() {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let verifier = issuer.verifier().algorithms([Algorithm::RS256, Algorithm::PS256]).build().await.unwrap();
    let mut header = access_token_header(key.kid());
    header["alg"] = json!("PS256");
    let result = verifier.verify(&key.sign_with_header(&header, &claims(issuer.issuer()))).await;
    assert!(matches!(result, Err(VerifyError::UnsupportedAlgorithm)), "{result:?}");
}

#[tokio::test]
async fn a_key_published_without_alg_verifies_every_allowed_algorithm() {
    let key = tessera_key();
    let mut jwk = key.public_jwk();
    jwk.as_object_mut().unwrap().remove("alg");
    let issuer = MockIssuer::start(&[]);
    issuer.publish_json(vec![jwk]);
    let verifier = issuer.verifier().algorithms([Algorithm::RS256, Algorithm::PS256]).build().await.unwrap();
    for alg in ["RS256", "PS256"] {
        let mut header = access_token_header(key.kid());
        header["alg"] = json!(alg);
        assert!(verifier.verify(&key.sign_with_header(&header, &claims(issuer.issuer()))).await.is_ok(), "{alg}");
    }
}

#[tokio::test]
async fn a_tampered_payload_fails_the_signature_check() {
    let (issuer, key, verifier) = setup().await;
    let token = key.sign(&claims(issuer.issuer()));
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut elevated = claims(issuer.issuer());
    elevated["scope"] = json!("invoices:read invoices:write admin");
    let forged_payload = b64(&elevated);
    parts[1] = &forged_payload;
    assert!(matches!(verifier.verify(&parts.join(".")).await, Err(VerifyError::BadSignature)));

    // One flipped bit in the signature.
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[17] ^= 0x01;
    let flipped = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(bytes));
    assert!(matches!(verifier.verify(&flipped).await, Err(VerifyError::BadSignature)));
}

#[tokio::test]
async fn a_token_signed_by_another_key_under_a_known_kid_is_refused() {
    let (issuer, key, verifier) = setup().await;
    let impostor = TestKey::generate();
    let forged = impostor.sign_with_header(&access_token_header(key.kid()), &claims(issuer.issuer()));
    assert!(matches!(verifier.verify(&forged).await, Err(VerifyError::BadSignature)));
}

#[tokio::test]
async fn truncated_tokens_are_refused() {
    let (issuer, key, verifier) = setup().await;
    let token = key.sign(&claims(issuer.issuer()));
    for len in [0, 1, 10, token.find('.').unwrap(), token.find('.').unwrap() + 1, token.rfind('.').unwrap()] {
        let result = verifier.verify(&token[..len]).await;
        assert!(matches!(result, Err(VerifyError::Malformed(_))), "cut at {len}: {result:?}");
    }
    for cut in [1, 2, 3, 4, 100] {
        let result = verifier.verify(&token[..token.len() - cut]).await;
        assert!(
            matches!(result, Err(VerifyError::Malformed(_) | VerifyError::BadSignature)),
            "{cut} characters cut: {result:?}"
        );
    }
}

#[tokio::test]
async fn garbage_is_refused_as_malformed_without_a_fetch() {
    let (issuer, key, verifier) = setup().await;
    let token = key.sign(&claims(issuer.issuer()));
    let header = token.split('.').next().unwrap();
    let garbage = [
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        "...".to_owned(),
        "a.b.c.d.e".to_owned(),
        format!("Bearer {token}"),
        format!("{token} "),
        format!(" {token}"),
        format!("{token}.{header}"),
        token.replace('-', "+"),
        format!("{header}=.e30.c2ln"),
        "eyJhbGciOiJSUzI1NiJ9.e30.AAAA".to_owned(), // a header that is JSON but lacks typ
        "ey😀.e30.c2ln".to_owned(),
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode("not json")),
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode("[\"RS256\"]")),
        "\0\0\0.\0.\0".to_owned(),
    ];
    for bad in &garbage {
        let result = verifier.verify(bad).await;
        assert!(result.is_err(), "{bad:?} verified");
        assert!(!matches!(result, Err(VerifyError::UnknownKey)), "{bad:?} reached the key lookup");
    }
    assert_eq!(issuer.jwks_requests(), 1, "garbage must never cause a JWKS fetch");
}

#[tokio::test]
async fn a_huge_header_or_token_is_refused_before_parsing() {
    let (issuer, key, verifier) = setup().await;
    let payload = b64(&claims(issuer.issuer()));
    let huge_header = b64(&json!({ "alg": "RS256", "typ": "at+jwt", "kid": key.kid(), "x": "a".repeat(10_000) }));
    let result = verifier.verify(&format!("{huge_header}.{payload}.c2ln")).await;
    assert!(matches!(result, Err(VerifyError::Malformed("the JOSE header is too large"))), "{result:?}");

    // Deeply nested JSON within the size limit must not blow the stack either.
    let nested = format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"k","x":{}{}}}"#, "[".repeat(500), "]".repeat(500));
    let result = verifier.verify(&format!("{}.{payload}.c2ln", URL_SAFE_NO_PAD.encode(nested))).await;
    assert!(matches!(result, Err(VerifyError::Malformed(_))), "{result:?}");

    let mut claims = claims(issuer.issuer());
    claims["padding"] = json!("a".repeat(20_000));
    let result = verifier.verify(&key.sign(&claims)).await;
    assert!(matches!(result, Err(VerifyError::Malformed("the token is too large"))), "{result:?}");
}

#[tokio::test]
async fn a_token_without_kid_is_refused() {
    let (issuer, key, verifier) = setup().await;
    let mut header = access_token_header(key.kid());
    header.as_object_mut().unwrap().remove("kid");
    let result = verifier.verify(&key.sign_with_header(&header, &claims(issuer.issuer()))).await;
    assert!(matches!(result, Err(VerifyError::Malformed(_))), "{result:?}");
}

#[tokio::test]
async fn keys_embedded_in_the_header_are_ignored() {
    let (issuer, key, verifier) = setup().await;
    let attacker = TestKey::generate();
    // The attacker's own key, offered through `jku` and `jwk`, under the attacker's kid.
    let mut header = access_token_header(attacker.kid());
    header["jku"] = json!(format!("{}/jwks.json", issuer.issuer()));
    header["jwk"] = attacker.public_jwk();
    let result = verifier.verify(&attacker.sign_with_header(&header, &claims(issuer.issuer()))).await;
    assert!(matches!(result, Err(VerifyError::UnknownKey)), "{result:?}");
    drop(key);
}
