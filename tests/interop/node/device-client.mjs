// openid-client 6 as a device of Tessera (RFC 8628): discovery, initiateDeviceAuthorization,
// then pollDeviceAuthorizationGrant while the test approves at the verification page over
// HTTP. openid-client validates every response strictly (the device authorization
// response, authorization_pending / slow_down handling, the token response and its ID
// token); any rejection makes this script fail.
//
// usage:
//   node device-client.mjs ISSUER CLIENT_ID CLIENT_SECRET SCOPE
// prints two JSON lines: the device authorization response as openid-client returned it
// (the test reads it to approve), then a summary of the tokens.
import * as client from 'openid-client';

const [issuer, clientId, secret, scope] = process.argv.slice(2);
const insecure = { execute: [client.allowInsecureRequests] }; // the tests' issuer is http://127.0.0.1

const config = await client.discovery(new URL(issuer), clientId, undefined, client.ClientSecretBasic(secret), insecure);
const response = await client.initiateDeviceAuthorization(config, { scope });
console.log(JSON.stringify(response));
const tokens = await client.pollDeviceAuthorizationGrant(config, response);
const claims = tokens.claims();
const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
console.log(JSON.stringify({
  token_type: tokens.token_type,
  access_token: tokens.access_token,
  refresh_token: tokens.refresh_token ?? null,
  scope: tokens.scope,
  id_token_sub: claims.sub,
  id_token_sid: claims.sid ?? null,
  userinfo_sub: info.sub,
}));
