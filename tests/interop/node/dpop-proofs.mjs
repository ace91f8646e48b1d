// Makes DPoP proofs (RFC 9449) and client assertions (RFC 7523) with `jose`, an
// independent JOSE library, for tessera-verify's interop test
// (verify/tests/verifier/interop.rs): one ES256, one EdDSA and one RS256 key, each with
// its public JWK and jose's RFC 7638 thumbprint of it.
// Usage: node dpop-proofs.mjs <htu> <access token>
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from "jose";
import { createHash, randomUUID } from "node:crypto";

const [htu, accessToken] = process.argv.slice(2);
const ath = createHash("sha256").update(accessToken).digest("base64url");
const now = Math.floor(Date.now() / 1000);
const results = [];
for (const [alg, options] of [["ES256", {}], ["EdDSA", { crv: "Ed25519" }], ["RS256", {}]]) {
  const { publicKey, privateKey } = await generateKeyPair(alg, options);
  const jwk = await exportJWK(publicKey);
  const proof = await new SignJWT({ jti: randomUUID(), htm: "GET", htu, iat: now, ath })
    .setProtectedHeader({ typ: "dpop+jwt", alg, jwk })
    .sign(privateKey);
  const assertion = await new SignJWT({ iss: "client", sub: "client", aud: "https://id.example.com", jti: randomUUID() })
    .setProtectedHeader({ alg })
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .sign(privateKey);
  results.push({ alg, jwk, thumbprint: await calculateJwkThumbprint(jwk, "sha256"), proof, assertion });
}
process.stdout.write(JSON.stringify(results));
