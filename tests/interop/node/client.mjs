// openid-client 6 as a confidential client of Tessera that authenticates with
// private_key_jwt (RFC 7523 §2.2) and pushes its authorization requests (RFC 9126).
// Every response must be accepted by openid-client as it is; the script fails otherwise.
//
// usage:
//   node client.mjs credentials ISSUER CLIENT_ID PKCS8_B64 KID
//       -> {"access_token", "token_type", "expires_in", ...}
//   node client.mjs par ISSUER CLIENT_ID PKCS8_B64 KID REDIRECT_URI
//       -> {"url", "code_verifier", "state", "nonce"}  (the URL to send the browser to)
//   node client.mjs code ISSUER CLIENT_ID PKCS8_B64 KID CALLBACK_URL CODE_VERIFIER STATE NONCE
//       -> the token response and the ID token's claims
// PKCS8_B64: the client's P-256 private key, PKCS#8 DER in base64.
import * as client from 'openid-client';

const [mode, issuer, clientId, pkcs8, kid, ...rest] = process.argv.slice(2);

const key = await crypto.subtle.importKey(
  'pkcs8',
  Buffer.from(pkcs8, 'base64'),
  { name: 'ECDSA', namedCurve: 'P-256' },
  false,
  ['sign'],
);
// Discovery over plain http: the test server listens on 127.0.0.1.
const config = await client.discovery(
  new URL(issuer),
  clientId,
  { token_endpoint_auth_method: 'private_key_jwt' },
  client.PrivateKeyJwt({ key, kid }),
  { execute: [client.allowInsecureRequests] },
);

const print = (value) => console.log(JSON.stringify(value));

switch (mode) {
  case 'credentials': {
    const tokens = await client.clientCredentialsGrant(config, { scope: 'invoices:read' });
    print(tokens);
    break;
  }
  case 'par': {
    const [redirectUri] = rest;
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = await client.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: redirectUri,
      scope: 'openid email',
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    print({ url: url.href, code_verifier: codeVerifier, state, nonce });
    break;
  }
  case 'code': {
    const [callback, pkceCodeVerifier, expectedState, expectedNonce] = rest;
    const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
      pkceCodeVerifier,
      expectedState,
      expectedNonce,
      idTokenExpected: true,
    });
    print({ ...tokens, claims: tokens.claims() });
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}
