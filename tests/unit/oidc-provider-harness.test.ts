/**
 * The identity-provider harness is itself checked: tests of the JWKS/OIDC verifier trust it to
 * hand out real provider-signed JWTs, to publish the keys it says, and to rotate them in place.
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/oidc-provider';

const AUDIENCE = 'https://api.session-vault.test';

const started: TestIdentityProvider[] = [];
afterAll(() => Promise.all(started.map((p) => p.stop())));

async function start(options?: Parameters<typeof startIdentityProvider>[0]): Promise<TestIdentityProvider> {
  const idp = await startIdentityProvider(options);
  started.push(idp);
  return idp;
}

async function publishedKeys(idp: TestIdentityProvider): Promise<Array<JsonWebKey & { kid: string }>> {
  const res = await fetch(idp.jwksUrl);
  expect(res.status).toBe(200);
  return ((await res.json()) as { keys: Array<JsonWebKey & { kid: string }> }).keys;
}

/** Verifies with the published key the token's header names, as a JWKS verifier would. */
async function verifyAgainstJwks(idp: TestIdentityProvider, token: string): Promise<jwt.JwtPayload> {
  const { header } = jwt.decode(token, { complete: true })!;
  const jwk = (await publishedKeys(idp)).find((k) => k.kid === header.kid);
  if (!jwk) throw new Error(`kid ${header.kid} is not published`);
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  return jwt.verify(token, key, { algorithms: ['RS256'], issuer: idp.issuer, audience: AUDIENCE }) as jwt.JwtPayload;
}

it('publishes discovery and issues client-credentials JWTs that verify against its JWKS', async () => {
  const idp = await start({ clients: ['svc-client-a', 'svc-client-b'], issuerPath: '/oidc' });
  const discovery = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  expect(discovery).toMatchObject({ issuer: idp.issuer, jwks_uri: idp.jwksUrl });
  expect(idp.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/oidc$/);

  const token = await idp.token();
  const { header, payload } = jwt.decode(token, { complete: true })!;
  expect(header).toMatchObject({ alg: 'RS256', kid: idp.kids()[0] });
  expect(payload).toMatchObject({ iss: idp.issuer, aud: AUDIENCE, sub: 'svc-client-a' });
  expect((payload as jwt.JwtPayload).exp! * 1000).toBeGreaterThan(Date.now());
  expect(await verifyAgainstJwks(idp, token)).toMatchObject({ sub: 'svc-client-a' });

  expect(jwt.decode(await idp.token({ clientId: 'svc-client-b' }))).toMatchObject({ sub: 'svc-client-b' });
});

it('rotates: new tokens carry the new kid, both keys stay published until the old ones are dropped', async () => {
  const idp = await start();
  const [oldKid] = idp.kids();
  const oldToken = await idp.token();

  const newKid = await idp.rotate();
  expect(idp.kids()).toEqual([newKid, oldKid]);
  const newToken = await idp.token();
  expect(jwt.decode(newToken, { complete: true })!.header.kid).toBe(newKid);
  expect((await publishedKeys(idp)).map((k) => k.kid).sort()).toEqual([newKid, oldKid].sort());
  // The restart kept the issuer and URLs: a token from before the rotation still verifies.
  await verifyAgainstJwks(idp, oldToken);
  await verifyAgainstJwks(idp, newToken);

  await idp.dropOldKeys();
  expect(idp.kids()).toEqual([newKid]);
  expect((await publishedKeys(idp)).map((k) => k.kid)).toEqual([newKid]);
  await expect(verifyAgainstJwks(idp, oldToken)).rejects.toThrow('is not published');
  await verifyAgainstJwks(idp, await idp.token());
});

it('runs providers side by side on different ports, and names an unknown audience in the error', async () => {
  const [a, b] = await Promise.all([start(), start({ audiences: ['https://other.test'] })]);
  expect(a.issuer).not.toBe(b.issuer);
  expect(jwt.decode(await b.token())).toMatchObject({ iss: b.issuer, aud: 'https://other.test' });
  await expect(a.token({ audience: 'https://not-allowed.test' })).rejects.toThrow('invalid_target');
});
