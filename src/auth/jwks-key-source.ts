/**
 * Verification keys from the identity provider's JWKS (JWT_JWKS_URL, or the `jwks_uri` of
 * JWT_OIDC_ISSUER's discovery document), fetched and turned into keys by jwks-rsa; what this
 * class adds is when to fetch and what to do while the provider is away:
 *
 * - keys held answer at once, with no fetch; the set is fetched again every
 *   JWT_JWKS_CACHE_S (a key the provider dropped stops being accepted then, and tokens
 *   remembered under it are verified again);
 * - a token naming a kid not held triggers a fetch, at most one per JWT_JWKS_REFETCH_MIN_S
 *   across all requests (requests arriving while one runs wait for that one), so a flood of
 *   invented kids costs the provider one request per interval;
 * - every fetch ends within JWT_JWKS_TIMEOUT_MS; a failed fetch keeps the keys held (they go
 *   on working through an outage) and is retried every JWT_JWKS_REFETCH_MIN_S; a token whose
 *   key cannot be had then gets 401, or 503 with Retry-After if the operator chose it;
 * - an outage is logged once when it starts and once when it ends.
 *
 * A key's algorithms are JWT_ALGORITHMS narrowed to what its type can sign with and to its
 * JWK `alg`, so an RSA key never verifies an HS256 token and no token picks its algorithm.
 */
import { createPublicKey } from 'node:crypto';
import { JwksClient } from 'jwks-rsa';
import { z } from 'zod';
import { keyUrlProblem, type JwksConfig, type JwtAlgorithm } from '../config';
import { ServiceUnavailable, Unauthorized } from '../errors';
import type { Logger } from '../logger';
import { fetchKeyDocument, KeyDocumentError } from './key-document';
import type { KeyResolver, VerificationKey } from './key-resolver';
import { algorithmsFor } from './keys';

/** What a JWKS is trusted to sign with when JWT_ALGORITHMS is unset: what the common providers use. */
export const DEFAULT_JWKS_ALGORITHMS: JwtAlgorithm[] = ['RS256', 'ES256'];

interface HeldKey extends VerificationKey {
  kid: string | undefined;
  /** The key as SPKI PEM: an unchanged key keeps its entry (and the tokens remembered under it) across fetches. */
  pem: string;
}

const discoverySchema = z.object({ issuer: z.string(), jwks_uri: z.string() });
const jwksSchema = z.object({ keys: z.array(z.unknown()) });
const headerSchema = z.object({ kid: z.string().optional() });

/** Why a fetch of the keys failed, for the log and a 401's reason. */
class FetchFailed extends Error {}

export class JwksKeySource implements KeyResolver {
  private held: HeldKey[] = [];
  private byKid = new Map<string, HeldKey>();
  private jwksUri: string | undefined;
  private inFlight: Promise<void> | undefined;
  private lastAttemptMs = -Infinity;
  /** The reason of the outage under way; undefined while the last fetch succeeded. */
  private failure: string | undefined;
  private outageSinceMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly config: JwksConfig,
    private readonly allowlist: JwtAlgorithm[],
    private readonly logger: Logger,
  ) {
    this.jwksUri = config.url;
  }

  /** The first fetch, awaited before the server listens; true if it got keys. Either way, fetches go on. */
  async start(): Promise<{ ok: true } | { ok: false; reason: string }> {
    await this.refresh();
    return this.failure === undefined ? { ok: true } : { ok: false, reason: this.failure };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  resolve(token: string): VerificationKey | Promise<VerificationKey> {
    const kid = kidOf(token);
    const found = this.find(kid);
    if (found) return found;
    if (kid === undefined && this.held.length > 1) throw new Unauthorized('token has no kid and the JWKS holds several keys');
    return this.afterRefetch(kid);
  }

  holds(key: VerificationKey): boolean {
    return this.held.includes(key as HeldKey);
  }

  private find(kid: string | undefined): HeldKey | undefined {
    if (kid !== undefined) return this.byKid.get(kid);
    return this.held.length === 1 ? this.held[0] : undefined;
  }

  private async afterRefetch(kid: string | undefined): Promise<VerificationKey> {
    if (this.inFlight) await this.inFlight;
    else if (performance.now() - this.lastAttemptMs >= this.config.refetchMinSeconds * 1000) await this.refresh();
    const found = this.find(kid);
    if (found) return found;
    if (this.failure !== undefined) {
      if (this.config.unavailableStatus === 503) {
        const wait = Math.ceil((this.lastAttemptMs + this.config.refetchMinSeconds * 1000 - performance.now()) / 1000);
        throw new ServiceUnavailable('The keys that sign tokens cannot be fetched from the identity provider right now.', Math.max(1, wait));
      }
      throw new Unauthorized(`signing keys unavailable (${this.failure})`);
    }
    throw new Unauthorized(kid === undefined ? 'no signing key for a token without kid' : 'unknown kid');
  }

  /** One fetch at a time; whoever asks while one runs shares it. */
  private refresh(): Promise<void> {
    this.inFlight ??= (async () => {
      this.lastAttemptMs = performance.now();
      try {
        this.replaceKeys(await this.fetchKeys(AbortSignal.timeout(this.config.timeoutMs)));
        if (this.failure !== undefined) {
          this.logger.info('identity provider keys available again', { downMs: Math.round(performance.now() - this.outageSinceMs) });
        }
        this.failure = undefined;
      } catch (error) {
        const reason = error instanceof FetchFailed || error instanceof KeyDocumentError ? error.message : 'the keys could not be read';
        if (this.failure === undefined) {
          this.outageSinceMs = performance.now();
          this.logger.warn('identity provider keys unavailable', { reason, keysHeld: this.held.length });
        }
        this.failure = reason;
      } finally {
        this.inFlight = undefined;
        this.schedule();
      }
    })();
    return this.inFlight;
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    const seconds = this.failure === undefined ? this.config.cacheSeconds : this.config.refetchMinSeconds;
    this.timer = setTimeout(() => void this.refresh(), seconds * 1000).unref();
  }

  private async fetchKeys(signal: AbortSignal): Promise<HeldKey[]> {
    const jwksUri = this.jwksUri ?? (await this.discover(signal));
    const client = new JwksClient({
      jwksUri,
      cache: false,
      rateLimit: false,
      fetcher: async (uri: string) => {
        const document = jwksSchema.safeParse(await fetchKeyDocument(uri, signal).catch(failedAt('JWKS')));
        if (!document.success) throw new FetchFailed('JWKS is not a JWKS (no "keys" array)');
        return document.data as { keys: [] };
      },
    });
    const signing = await client.getSigningKeys().catch((error: unknown) => {
      throw error instanceof FetchFailed ? error : new FetchFailed('JWKS holds no signing key');
    });
    const keys: HeldKey[] = [];
    for (const jwk of signing) {
      const pem = jwk.getPublicKey();
      const kid = jwk.kid || undefined;
      const previous = kid === undefined ? undefined : this.byKid.get(kid);
      if (previous?.pem === pem) {
        keys.push(previous);
        continue;
      }
      const key = createPublicKey(pem);
      const named = (jwk as { alg?: string }).alg;
      const algorithms = algorithmsFor(key).filter((a) => this.allowlist.includes(a) && (named === undefined || named === a));
      if (algorithms.length > 0) keys.push({ kid, pem, key, algorithms });
    }
    if (keys.length === 0) throw new FetchFailed(`JWKS holds no key usable with ${this.allowlist.join(', ')}`);
    return keys;
  }

  /** OpenID Connect discovery: the issuer must name itself exactly, and its jwks_uri must be fit to fetch keys from. */
  private async discover(signal: AbortSignal): Promise<string> {
    const issuer = this.config.oidcIssuer!;
    const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const document = discoverySchema.safeParse(await fetchKeyDocument(url, signal).catch(failedAt('discovery document')));
    if (!document.success) throw new FetchFailed('discovery document has no issuer or jwks_uri');
    if (document.data.issuer !== issuer) throw new FetchFailed('discovery document names another issuer');
    const problem = keyUrlProblem(document.data.jwks_uri, this.config.production);
    if (problem) throw new FetchFailed(`discovery document's jwks_uri ${problem}`);
    this.jwksUri = document.data.jwks_uri;
    return this.jwksUri;
  }

  private replaceKeys(keys: HeldKey[]): void {
    const before = this.held.map((k) => k.kid ?? '').join(',');
    this.held = keys;
    this.byKid = new Map(keys.flatMap((k) => (k.kid === undefined ? [] : [[k.kid, k] as const])));
    const after = keys.map((k) => k.kid ?? '').join(',');
    if (after !== before) this.logger.info('identity provider keys loaded', { kids: keys.map((k) => k.kid ?? null) });
  }
}

function failedAt(what: string): (error: unknown) => never {
  return (error) => {
    throw new FetchFailed(`${what} ${error instanceof KeyDocumentError ? error.message : 'could not be fetched'}`);
  };
}

/** The token's kid, read from its header without trusting anything else in it. */
function kidOf(token: string): string | undefined {
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8'));
  } catch {
    throw new Unauthorized('token rejected: invalid token');
  }
  const parsed = headerSchema.safeParse(header);
  if (!parsed.success) throw new Unauthorized('token header kid is not a string');
  return parsed.data.kid;
}
