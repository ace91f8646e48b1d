//! `parse_basic`: the `Authorization: Basic` header of the token, revocation and
//! introspection endpoints (RFC 6749 §2.3.1, RFC 7617).
//!
//! The first byte picks how the rest is used: as the whole header, or as the credentials
//! that get base64-encoded behind `Basic ` (so the fuzzer reaches the decoding of the id
//! and secret without having to discover base64). An accepted header must yield a valid
//! client id, and re-encoding what it yielded must parse back to the same pair.
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use tessera::oauth::client_auth::parse_basic;

fn form_encode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let header = match mode % 2 {
        0 => match std::str::from_utf8(rest) {
            Ok(header) => header.to_owned(),
            Err(_) => return,
        },
        _ => format!("Basic {}", STANDARD.encode(rest)),
    };
    let Ok((id, secret)) = parse_basic(&header) else { return };
    let id = id.as_str();
    assert!(!id.is_empty() && id.len() <= 255, "client id of {} bytes", id.len());
    assert!(id.bytes().all(|b| (0x20..=0x7E).contains(&b)), "non-printable client id {id:?}");
    let again = format!("Basic {}", STANDARD.encode(format!("{}:{}", form_encode(id), form_encode(&secret))));
    let (id2, secret2) = parse_basic(&again).expect("re-encoded credentials parse");
    assert_eq!((id2.as_str(), secret2.as_str()), (id, secret.as_str()));
});
