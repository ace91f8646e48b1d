#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into fuzz/corpus/<target>/ (see README.md).

The tokens and JWK Sets use the repository's test key (keys/test-signing-key.pem), with the
`kid`s and issuer the verify_jws target's mock issuer serves. Needs `cryptography` (PyPI).
Run from anywhere: `python3 fuzz/seeds/make_seeds.py`.
"""
import base64
import hashlib
import json
import os
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
ISSUER = "http://issuer.fuzz"
AUDIENCE = "https://api.example.com"

with open(os.path.join(ROOT, "keys", "test-signing-key.pem"), "rb") as f:
    KEY = serialization.load_pem_private_key(f.read(), password=None)
NUMBERS = KEY.public_key().public_numbers()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(value: int) -> str:
    return b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


N, E = uint(NUMBERS.n), uint(NUMBERS.e)


def write(target: str, name: str, data: bytes) -> None:
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    # Named by content, like libFuzzer's own corpus files, with a readable prefix.
    path = os.path.join(directory, f"seed-{name}-{hashlib.sha1(data).hexdigest()[:12]}")
    with open(path, "wb") as f:
        f.write(data)


def jws(header: dict, claims: dict, pss: bool = False) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32) if pss else padding.PKCS1v15()
    return f"{signing_input}.{b64(KEY.sign(signing_input.encode(), pad, hashes.SHA256()))}"


def claims(**overrides) -> dict:
    value = {
        "iss": ISSUER,
        "sub": "3f2c9a4e-7b1d-4c8e-9a65-0d2f1e8b7c43",
        "aud": AUDIENCE,
        "client_id": "web-app",
        "scope": "openid invoices:read",
        "iat": 1764000000,
        # 2100-01-01: the seed tokens stay valid, so the replay reaches the accepting path.
        "exp": 4102444800,
        "jti": "9b8f5d2c41e04a7f8c3e6b1a2d5f7e90",
        "sid": "s-1",
        "auth_time": 1764000000,
    }
    value.update(overrides)
    return {k: v for k, v in value.items() if v is not None}


RS256 = {"typ": "at+jwt", "alg": "RS256", "kid": "fuzz-rs256"}
PS256 = {"typ": "at+jwt", "alg": "PS256", "kid": "fuzz-ps256"}

# verify_jws: mode 0 (a token as sent).
for name, token in {
    "valid-rs256": jws(RS256, claims()),
    "valid-ps256": jws(PS256, claims(aud=[AUDIENCE, "https://other.example.com"]), pss=True),
    "expired": jws(RS256, claims(exp=1764000300)),
    "wrong-issuer": jws(RS256, claims(iss="https://evil.example.com")),
    "wrong-audience": jws(RS256, claims(aud="https://other.example.com")),
    "not-yet-valid": jws(RS256, claims(nbf=4000000000)),
    "missing-jti": jws(RS256, claims(jti=None)),
    "id-token-typ": jws({"typ": "JWT", "alg": "RS256", "kid": "fuzz-rs256"}, claims()),
    "alg-none": b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode()) + "." + b64(json.dumps(claims()).encode()) + ".AA",
    "hs256": b64(json.dumps(dict(RS256, alg="HS256")).encode()) + ".e30.c2ln",
}.items():
    write("verify_jws", f"m0-{name}", b"\x00" + token.encode())
# Mode 1 (the claims parser), mode 2 (header \0 payload \0 signature), mode 3 (signed here).
write("verify_jws", "m1-claims", b"\x01" + json.dumps(claims(aud=["a", "b"], nbf=1764000000.5)).encode())
write("verify_jws", "m2-parts", b"\x02" + json.dumps(RS256).encode() + b"\x00" + json.dumps(claims()).encode() + b"\x00" + bytes(256))
# The header as an array of its members in order: once read as a header (fixed in 062b90d).
write("verify_jws", "m2-array-header", b"\x02" + json.dumps(["RS256", "at+jwt", "fuzz-rs256"]).encode() + b"\x00" + json.dumps(claims()).encode() + b"\x00" + bytes(256))
for choice in range(5):
    write("verify_jws", f"m3-header{choice}", b"\x03" + bytes([choice]) + json.dumps(claims()).encode())

# jwks: Tessera's own shape, the RFC 7517 A.1 example, and unusable keys beside usable ones.
TESSERA_JWK = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "fuzz-rs256", "n": N, "e": E}
RFC7517_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknj"
    "hMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQ"
    "vRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
for name, document in {
    "tessera": {"keys": [TESSERA_JWK]},
    "two-algs": {"keys": [TESSERA_JWK, dict(TESSERA_JWK, alg="PS256", kid="fuzz-ps256")]},
    "rfc7517": {"keys": [{"kty": "RSA", "n": RFC7517_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}]},
    "mixed": {"keys": [
        {"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "kid": "ec"},
        dict(TESSERA_JWK, use="enc", kid="enc"),
        dict(TESSERA_JWK, key_ops=["verify"], kid="ops"),
        dict(TESSERA_JWK, n="AAAA" + N, kid="leading-zeros"),
        {"kty": "oct", "k": "c2VjcmV0", "kid": "oct"},
        dict(TESSERA_JWK, kid="twice"),
        dict(TESSERA_JWK, kid="twice"),
        {k: v for k, v in TESSERA_JWK.items() if k != "alg"},
    ]},
    "empty": {"keys": []},
}.items():
    write("jwks", name, json.dumps(document).encode())

# form_params: token, revocation and introspection bodies, and authorization queries.
CHALLENGE = b64(hashlib.sha256(b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").digest())
AUTHORIZE = (
    "response_type=code&client_id=web-app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback"
    f"&scope=openid+profile+invoices%3Aread&state=af0ifjsldkj&nonce=n-0S6_WzA2Mj&code_challenge={CHALLENGE}"
    "&code_challenge_method=S256"
)
for name, body in {
    "code": "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    "refresh": "grant_type=refresh_token&refresh_token=tGzv3JOkF0XG5Qx2TlKWIA&scope=openid",
    "client-credentials": "grant_type=client_credentials&client_id=web-app&client_secret=s3cr%C3%A9t&scope=a+b",
    "resources": "grant_type=client_credentials&resource=https%3A%2F%2Fa.example&resource=https%3A%2F%2Fb.example",
    "revoke": "token=45ghiukldjahdnhzdauz&token_type_hint=refresh_token",
    "empty-values": "scope=&scope=openid&state=&&=x",
    "authorize": AUTHORIZE,
}.items():
    write("form_params", name, body.encode())

# authorize_request: the query, valid and with each parameter the parser checks varied.
for name, query in {
    "valid": AUTHORIZE,
    "all-parameters": AUTHORIZE + "&prompt=login+consent&max_age=300&login_hint=alice%40example.com&response_mode=query",
    "prompt-none": AUTHORIZE + "&prompt=none",
    "no-scope": AUTHORIZE.replace("&scope=openid+profile+invoices%3Aread", ""),
    "plain-pkce": AUTHORIZE.replace("S256", "plain"),
    "request-object": AUTHORIZE + "&request=eyJhbGciOiJub25lIn0.e30.",
    "token-response": AUTHORIZE.replace("response_type=code", "response_type=token"),
}.items():
    write("authorize_request", name, query.encode())

# basic_auth: mode 0 (the header as sent), mode 1 (credentials base64-encoded by the target).
for name, data in {
    "header": b"\x00Basic " + base64.b64encode(b"web-app:s3cr3t"),
    "header-unpadded": b"\x00basic  " + base64.b64encode(b"web-app:s3cr3t!").rstrip(b"="),
    "header-encoded": b"\x00Basic " + base64.b64encode(b"a%3Ab:c%25d+e"),
    "credentials": b"\x01web-app:s3cr3t",
    "credentials-encoded": b"\x013f2c9a4e-7b1d%3A:p%C3%A4ss+word",
    "bearer": b"\x00Bearer abc",
}.items():
    write("basic_auth", name, data)

# dpop_proof: mode 1 (header and claims, signed by the target with its fixed Ed25519 key,
# whose public key is below), mode 0 (a proof as sent), mode 2 (one JWK).
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DPOP_KEY = Ed25519PrivateKey.from_private_bytes(bytes([0x42]) * 32)
DPOP_JWK = {
    "kty": "OKP",
    "crv": "Ed25519",
    "x": b64(DPOP_KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)),
}
DPOP_HEADER = {"typ": "dpop+jwt", "alg": "EdDSA", "jwk": DPOP_JWK}
DPOP_CLAIMS = {
    "jti": "e1j3V_bKic8-LAEB",
    "htm": "GET",
    "htu": "https://api.example.com/invoices",
    "iat": 1800000000,
    "ath": b64(hashlib.sha256(b"access-token").digest()),
}
for name, (header, proof_claims) in {
    "valid": (DPOP_HEADER, DPOP_CLAIMS),
    "nonce-query": (DPOP_HEADER, {**DPOP_CLAIMS, "nonce": "n", "htu": "HTTPS://API.example.com:443/invoices?x#y"}),
    "private-jwk": ({**DPOP_HEADER, "jwk": {**DPOP_JWK, "d": DPOP_JWK["x"]}}, DPOP_CLAIMS),
    "hs256": ({**DPOP_HEADER, "alg": "HS256"}, DPOP_CLAIMS),
    "stale": (DPOP_HEADER, {**DPOP_CLAIMS, "iat": 1799999000}),
}.items():
    write("dpop_proof", name, b"\x01" + json.dumps(header).encode() + b"\x00" + json.dumps(proof_claims).encode())
signed_input = f"{b64(json.dumps(DPOP_HEADER).encode())}.{b64(json.dumps(DPOP_CLAIMS).encode())}"
write("dpop_proof", "as-sent", b"\x00" + f"{signed_input}.{b64(DPOP_KEY.sign(signed_input.encode()))}".encode())
for name, jwk in {
    "jwk-okp": DPOP_JWK,
    "jwk-ec": {"kty": "EC", "crv": "P-256", "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4", "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"},
    "jwk-rsa": {"kty": "RSA", "n": N, "e": E, "alg": "RS256", "kid": "k"},
}.items():
    write("dpop_proof", name, b"\x02" + json.dumps(jwk).encode())
