// openid-client 6 with opaque access tokens: a service gets one with client credentials
// (RFC 6749 §4.4), a resource server introspects it (RFC 7662, tokenIntrospection), the
// service revokes it (RFC 7009, tokenRevocation), and the resource server introspects it
// again. openid-client checks each response (an introspection response must be a JSON
// object with a boolean `active`, a revocation must answer 200); a refusal fails the script.
//
// usage:
//   node opaque-client.mjs ISSUER SERVICE_ID SERVICE_SECRET RS_ID RS_SECRET
// prints {"access_token", "token_type", "before": <introspection>, "after": <introspection>}
import * as client from 'openid-client';

const [issuer, serviceId, serviceSecret, rsId, rsSecret] = process.argv.slice(2);
const insecure = { execute: [client.allowInsecureRequests] }; // the tests' issuer is http://127.0.0.1

const service = await client.discovery(new URL(issuer), serviceId, undefined, client.ClientSecretBasic(serviceSecret), insecure);
const resourceServer = await client.discovery(new URL(issuer), rsId, undefined, client.ClientSecretBasic(rsSecret), insecure);

const tokens = await client.clientCredentialsGrant(service, { scope: 'invoices:read' });
const before = await client.tokenIntrospection(resourceServer, tokens.access_token, { token_type_hint: 'access_token' });
await client.tokenRevocation(service, tokens.access_token, { token_type_hint: 'access_token' });
const after = await client.tokenIntrospection(resourceServer, tokens.access_token);
console.log(JSON.stringify({ access_token: tokens.access_token, token_type: tokens.token_type, before, after }));
