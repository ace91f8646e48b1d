"""Verifies a Tessera access token the way a Python resource server would: PyJWT with
PyJWKClient fetching the JWKS from the discovery document (RFC 9068 §4).

usage: verify_token.py ISSUER AUDIENCE TOKEN  -> prints the claims as JSON
"""
import json
import sys
import urllib.request

import jwt

issuer, audience, token = sys.argv[1:4]
with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration") as response:
    metadata = json.load(response)
assert metadata["issuer"] == issuer, metadata["issuer"]
header = jwt.get_unverified_header(token)
assert header.get("typ") == "at+jwt", header
signing_key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(token)
claims = jwt.decode(
    token,
    signing_key.key,
    algorithms=["RS256"],
    audience=audience,
    issuer=issuer,
    options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]},
)
print(json.dumps(claims))
