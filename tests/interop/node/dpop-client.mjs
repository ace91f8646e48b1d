// openid-client 6 as a DPoP client of Tessera (RFC 9449): discovery, a fresh ES256 key,
// getDPoPHandle (which answers use_dpop_nonce itself), then the grants. openid-client
// validates every response strictly; any rejection makes this script fail.
//
// usage:
//   node dpop-client.mjs client_credentials ISSUER CLIENT_ID CLIENT_SECRET
//   node dpop-client.mjs code ISSUER CLIENT_ID CALLBACK_URL CODE_VERIFIER STATE NONCE
//     (a public client: the code exchange, userinfo, a refresh, userinfo again)
// prints a JSON summary, including the key's RFC 7638 thumbprint (`jkt`).
import * as client from 'openid-client';
import { calculateJwkThumbprint } from 'jose';

const [mode, issuer, clientId, ...rest] = process.argv.slice(2);
const insecure = { execute: [client.allowInsecureRequests] }; // the tests' issuer is http://127.0.0.1

async function dpopKey(config) {
  const keyPair = await client.randomDPoPKeyPair('ES256');
  const jwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey);
  return { handle: client.getDPoPHandle(config, keyPair), jkt: await calculateJwkThumbprint(jwk, 'sha256') };
}

if (mode === 'client_credentials') {
  const [secret] = rest;
  const config = await client.discovery(new URL(issuer), clientId, undefined, client.ClientSecretBasic(secret), insecure);
  const { handle, jkt } = await dpopKey(config);
  const first = await client.clientCredentialsGrant(config, {}, { DPoP: handle });
  // A second grant with the same handle reuses the nonce it learnt.
  const second = await client.clientCredentialsGrant(config, {}, { DPoP: handle });
  console.log(JSON.stringify({ jkt, token_type: first.token_type, access_token: first.access_token, second_token_type: second.token_type }));
} else if (mode === 'code') {
  const [callback, pkceCodeVerifier, expectedState, expectedNonce] = rest;
  const config = await client.discovery(new URL(issuer), clientId, undefined, client.None(), insecure);
  const { handle, jkt } = await dpopKey(config);
  const tokens = await client.authorizationCodeGrant(
    config,
    new URL(callback),
    { pkceCodeVerifier, expectedState, expectedNonce, idTokenExpected: true },
    undefined,
    { DPoP: handle },
  );
  const sub = tokens.claims().sub;
  const info = await client.fetchUserInfo(config, tokens.access_token, sub, { DPoP: handle });
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: handle });
  const again = await client.fetchUserInfo(config, refreshed.access_token, sub, { DPoP: handle });
  console.log(JSON.stringify({
    jkt,
    token_type: tokens.token_type,
    access_token: tokens.access_token,
    userinfo_sub: info.sub,
    refreshed_token_type: refreshed.token_type,
    refreshed_access_token: refreshed.access_token,
    refreshed_userinfo_sub: again.sub,
  }));
} else {
  throw new Error(`unknown mode ${mode}`);
}
