// Verifies a Tessera access token with `jose`, strict about RFC 9068: typ at+jwt, issuer,
// audience, RS256 only, keys from the discovery document's jwks_uri.
// usage: node verify-token.mjs ISSUER AUDIENCE TOKEN  -> prints the claims as JSON
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [issuer, audience, token] = process.argv.slice(2);
const metadata = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
if (metadata.issuer !== issuer) throw new Error(`issuer mismatch: ${metadata.issuer}`);
const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri));
const { payload } = await jwtVerify(token, jwks, {
  issuer,
  audience,
  algorithms: ['RS256'],
  typ: 'at+jwt',
  requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'],
});
console.log(JSON.stringify(payload));
