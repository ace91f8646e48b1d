// node-oidc-provider as the benchmark's peer: client_credentials only, RFC 9068 JWT access
// tokens (RS256) through resource indicators, one worker process per core (node:cluster).
//
// Environment (set by bench/run):
//   PORT       port on 127.0.0.1 (default 8091)
//   WORKERS    worker processes (default: one per core)
//   CLIENT_ID, CLIENT_SECRET   the one registered client
//   AUDIENCE   the resource server every token is for (default https://api.example.com)
//
// The primary process generates one RSA-2048 key and hands it to every worker, so all
// workers sign with the same key and serve the same JWKS, as Tessera's workers do.

import cluster from 'node:cluster';
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import { availableParallelism } from 'node:os';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 8091);
const issuer = `http://127.0.0.1:${port}`;
const audience = process.env.AUDIENCE || 'https://api.example.com';
const scope = 'api:read api:write';

if (cluster.isPrimary) {
  const workers = Number(process.env.WORKERS) || availableParallelism();
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'bench' };
  cluster.setupPrimary({ silent: false });
  for (let i = 0; i < workers; i += 1) {
    cluster.fork({ BENCH_SIGNING_JWK: JSON.stringify(jwk) });
  }
  let stopping = false;
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers)) worker.kill('SIGTERM');
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  cluster.on('exit', (worker, code) => {
    if (!stopping) {
      console.error(`worker ${worker.process.pid} exited with ${code}`);
      process.exitCode = 1;
      stop();
    }
  });
  console.log(`node-oidc-provider: ${workers} workers on ${issuer}`);
} else {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: process.env.CLIENT_ID || 'bench',
        client_secret: process.env.CLIENT_SECRET || 'bench-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope,
      },
    ],
    jwks: { keys: [JSON.parse(process.env.BENCH_SIGNING_JWK)] },
    scopes: scope.split(' '),
    ttl: { ClientCredentials: 300 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // A request without `resource` gets the one audience, as Tessera's clients do.
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resourceIndicator) => {
          if (resourceIndicator !== audience) throw new Provider.errors.InvalidTarget();
          return {
            scope,
            audience,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  });
  provider.on('server_error', (_ctx, error) => console.error('server_error', error));
  const server = createServer(provider.callback());
  server.keepAliveTimeout = 65_000;
  server.listen(port, '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
