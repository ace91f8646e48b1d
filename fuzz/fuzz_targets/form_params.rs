//! `FormParams::parse`: every query string and form body of the OAuth endpoints.
//!
//! Besides "no panic", the result is compared with a small model of RFC 6749 §3.1/§3.2
//! and the parser's documented rules: `&`-separated pairs, `+` and `%XX` decoded, UTF-8
//! only, empty values count as omitted, only `resource` may repeat, at most `MAX_PARAMS`
//! pairs. The parser must accept exactly what the model accepts, and `get`/`get_all` must
//! return the model's values (never an empty one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::http::form::{decode_component, FormParams, MAX_PARAMS};
use tessera::oauth::error::OAuthError;

/// What the parser should return: `None` for an error, else the non-empty values by name.
fn model(body: &[u8]) -> Option<Vec<(String, String)>> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (index, pair) in body.split(|&b| b == b'&').enumerate() {
        if index >= MAX_PARAMS {
            return None;
        }
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let name = decode_component(name).ok()?;
        let value = decode_component(value).ok()?;
        if !names.contains(&name) {
            names.push(name.clone());
        }
        if value.is_empty() {
            continue;
        }
        if name != "resource" && pairs.iter().any(|(n, _)| *n == name) {
            return None;
        }
        pairs.push((name, value));
    }
    // Names that only had empty values are present with no value.
    for name in names {
        if !pairs.iter().any(|(n, _)| *n == name) {
            pairs.push((name, String::new()));
        }
    }
    Some(pairs)
}

fuzz_target!(|body: &[u8]| {
    let parsed = FormParams::parse(body);
    let expected = model(body);
    match (parsed, expected) {
        (Err(error), None) => {
            // At /token, /revoke and /introspect: `invalid_request` with a description.
            assert!(!error.to_string().is_empty());
            let answer = OAuthError::from(error);
            assert_eq!(answer.code(), "invalid_request");
        }
        (Ok(params), Some(expected)) => {
            for (name, value) in &expected {
                let all: Vec<&str> = params.get_all(name).collect();
                assert!(all.iter().all(|v| !v.is_empty()), "get_all({name:?}) returned an empty value");
                match params.get(name) {
                    Some(got) => {
                        assert!(!got.is_empty(), "get({name:?}) returned an empty value");
                        assert_eq!(Some(&got), all.first(), "get and get_all disagree on {name:?}");
                    }
                    None => assert!(all.is_empty(), "get({name:?}) is None but get_all is not"),
                }
                let want: Vec<&str> =
                    expected.iter().filter(|(n, v)| n == name && !v.is_empty()).map(|(_, v)| v.as_str()).collect();
                assert_eq!(all, want, "values of {name:?}");
                if value.is_empty() {
                    assert_eq!(params.get(name), None);
                }
                if name != "resource" {
                    assert!(all.len() <= 1, "{name:?} repeated");
                }
            }
        }
        (Ok(_), None) => panic!("accepted a body the model refuses: {:?}", String::from_utf8_lossy(body)),
        (Err(error), Some(_)) => {
            panic!("refused a body the model accepts ({}): {:?}", error, String::from_utf8_lossy(body))
        }
    }
});
