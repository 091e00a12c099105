// A real OpenID provider (oidc-provider) on a loopback port, issuing JWT access tokens through the
// client credentials grant. Runs as a child of the Jest test (oidc-provider is ESM-only, which
// Jest's module loader cannot load); tests/helpers/oidc-provider.ts starts and stops it.
//
// Configuration: OIDC_TEST_CONFIG, JSON { port, issuerPath?, keys, clients, audiences,
// accessTokenTtlSeconds? }. Stdout carries exactly one line, {"listening":...,"issuer":...}.
import http from 'node:http';

// oidc-provider prints its notices with console.info (stdout); the parent reads stdout as the
// one "listening" line, so everything the library says goes to stderr.
console.log = console.info = console.debug = (...args) => console.error(...args);

// Imported dynamically so the redirect is in place first (a static import would run before it).
const { default: Provider, errors } = await import('oidc-provider');

const config = JSON.parse(process.env.OIDC_TEST_CONFIG ?? '');
const { keys, clients, audiences } = config;
const ttl = config.accessTokenTtlSeconds ?? 600;
const signingAlg = keys[0].alg;

const server = http.createServer();
// Pooled keep-alive sockets to a provider that is about to be restarted (rotation) would make the
// parent's next request fail, and would keep a Jest process alive; one request per connection.
let handle = (_req, res) => res.writeHead(503).end();
server.on('request', (req, res) => {
  res.setHeader('Connection', 'close');
  handle(req, res);
});

// Port 0 means "any": the issuer names the port, so listen first and build the issuer after.
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port, '127.0.0.1', resolve);
});
const origin = `http://127.0.0.1:${server.address().port}`;
const issuer = `${origin}${config.issuerPath ?? ''}`;

const provider = new Provider(issuer, {
  clients: clients.map(({ client_id, client_secret }) => ({
    client_id,
    client_secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  jwks: { keys },
  features: {
    // No browser in these tests: nothing that renders an interaction.
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // A request without `resource` gets the first audience, so it still yields a JWT (an
      // access token without an audience can only be opaque).
      defaultResource: () => audiences[0],
      getResourceServerInfo: (_ctx, resource) => {
        if (!audiences.includes(resource)) throw new errors.InvalidTarget();
        return {
          scope: 'api',
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: ttl,
          // No kid: the provider takes the first key of the alg, the parent's current signing key.
          jwt: { sign: { alg: signingAlg } },
        };
      },
    },
  },
  ttl: { ClientCredentials: ttl },
  clientBasedCORS: () => false,
});
provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error', err));

// Mounted the way Express's app.use(issuerPath, ...) mounts it: the provider wants the path below
// the mount in req.url and reads the mount point back from req.originalUrl.
const callback = provider.callback();
const mount = config.issuerPath ?? '';
handle = (req, res) => {
  const rest = req.url.slice(mount.length);
  if (!req.url.startsWith(mount) || !/^([/?]|$)/.test(rest)) return res.writeHead(404).end();
  req.originalUrl = req.url;
  req.url = rest.startsWith('/') ? rest : `/${rest}`;
  callback(req, res);
};

process.stdout.write(`${JSON.stringify({ listening: origin, issuer })}\n`);

process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
