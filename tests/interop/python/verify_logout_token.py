"""Validates a Back-Channel Logout Token the way an independent RP would, from the
specification only (OpenID Connect Back-Channel Logout 1.0 §2.6) with PyJWT:

1. the signature, with the key of the JWKS named by the discovery document (RS256);
2. `iss`, `aud` (the RP's client id) and `iat` (present, with `exp` checked when present);
3. `typ` is `logout+jwt` (§2.4 recommends explicit typing; Tessera sets it);
4. `events` holds the back-channel-logout member, an object;
5. `sub` or `sid` is present; 6. there is no `nonce`.

usage: verify_logout_token.py ISSUER CLIENT_ID TOKEN  -> prints the claims as JSON
"""
import json
import sys
import urllib.request

import jwt

EVENT = "http://schemas.openid.net/event/backchannel-logout"

issuer, client_id, token = sys.argv[1:4]
with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration") as response:
    metadata = json.load(response)
assert metadata["issuer"] == issuer, metadata["issuer"]
assert metadata.get("backchannel_logout_supported") is True, metadata
header = jwt.get_unverified_header(token)
assert header.get("typ") == "logout+jwt", header
signing_key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(token)
claims = jwt.decode(
    token,
    signing_key.key,
    algorithms=["RS256"],
    audience=client_id,
    issuer=issuer,
    options={"require": ["iss", "aud", "iat", "jti", "events"]},
)
assert isinstance(claims["events"].get(EVENT), dict), claims
assert "sub" in claims or "sid" in claims, claims
assert "nonce" not in claims, claims
print(json.dumps(claims))
