/**
 * Where the rate limits count: in this process's memory (the default: each replica counts
 * alone), or in Redis (RATE_LIMIT_STORE=redis: every replica counts together). With Redis
 * there is one client per process and one store per limiter, each with its own key prefix.
 *
 * Redis down or slow never holds a request: commands are refused at once while the client
 * is disconnected (no offline queue), every store call has COMMAND_TIMEOUT_MS to answer,
 * and while the store is failing only one call at a time tries it (the others fail at once).
 * A failed call throws a ServiceUnavailable; RATE_LIMIT_ON_STORE_ERROR decides in
 * rate-limit.ts whether the request passes (allow) or is answered 503 (deny). An outage is
 * logged once, as a security event, and its end once.
 */
import type { ClientRateLimitInfo, IncrementResponse, Options, Store } from 'express-rate-limit';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import type { RateLimitConfig } from '../config';
import { ServiceUnavailable } from '../errors';
import { securityEvent, type Logger } from '../logger';

/** The longest a request waits for the counter store. */
export const COMMAND_TIMEOUT_MS = 500;
/** What a client refused with 503 (deny) is asked to wait. */
const RETRY_AFTER_S = 5;
/** One prefix per limiter, so the per-IP and per-user counts never share a key. */
export const KEY_PREFIXES = { ip: 'sv:rl:ip:', user: 'sv:rl:user:' } as const;
/** The longest a connection attempt takes; startup waits at most this long to learn whether Redis answers, and starts either way. */
const CONNECT_TIMEOUT_MS = 2000;
/** Commands waiting for a reply from a Redis that stopped answering; beyond it, refused at once. */
const QUEUE_MAX = 10_000;

export interface RateLimitStores {
  /** The stores for createApp's limiters; undefined counts in memory. */
  stores: { ip: Store; user: Store } | undefined;
  /** Drops the connection; call it once no request can use the stores (after the drain). */
  close(): Promise<void>;
}

export async function openRateLimitStores(config: RateLimitConfig, logger: Logger): Promise<RateLimitStores> {
  if (config.store.type === 'memory') return { stores: undefined, close: async () => {} };

  const url = config.store.url;
  const redact = redactor(url);
  const health = new StoreHealth(logger, config.onStoreError, redact);
  // Loaded only with RATE_LIMIT_STORE=redis: the client is some 650 modules, a third of a
  // second of every start that counts in memory.
  const { createClient } = await import('redis');
  const client = createClient({
    url,
    disableOfflineQueue: true,
    commandsQueueMaxLength: QUEUE_MAX,
    // Covers commands not yet written; the deadline in StoreHealth covers those already sent.
    commandOptions: { timeout: COMMAND_TIMEOUT_MS },
    socket: {
      connectTimeout: CONNECT_TIMEOUT_MS,
      // Keep trying for ever, at most a second apart, so limits apply again soon after Redis is back.
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1000) + Math.floor(Math.random() * 100),
    },
  });
  const sendCommand = (...args: string[]) => client.sendCommand(args) as Promise<RedisReply>;
  const stores = {
    ip: new RedisCounterStore(sendCommand, KEY_PREFIXES.ip, health),
    user: new RedisCounterStore(sendCommand, KEY_PREFIXES.user, health),
  };
  // Every connection failure is reported here (without a listener it would crash the
  // process); each reconnection reloads the scripts, which also tells that counting works again.
  client.on('error', (error: unknown) => health.failed(error));
  client.on('ready', () => {
    void (async () => {
      for (const store of [stores.ip, stores.user]) await store.prepare().catch(() => {});
    })();
  });

  const firstAnswer = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, CONNECT_TIMEOUT_MS);
    const done = () => {
      clearTimeout(timer);
      client.off('ready', done).off('error', done);
      resolve();
    };
    client.on('ready', done).on('error', done);
  });
  // Resolves once connected; it retries until then, and rejects only when closed.
  client.connect().catch(() => {});
  await firstAnswer;
  logger.info('rate limit store', {
    store: 'redis',
    redis: safeLocation(url),
    keyPrefixes: Object.values(KEY_PREFIXES),
    onStoreError: config.onStoreError,
    connected: client.isReady,
  });

  return {
    stores,
    close: async () => {
      health.close();
      // Only rate-limit increments can be pending, and nobody waits for them any more.
      client.destroy();
      logger.info('rate limit store closed', { store: 'redis' });
    },
  };
}

/**
 * express-rate-limit's store for one limiter, on rate-limit-redis. rate-limit-redis loads its
 * Lua scripts once, in init(): if Redis was unreachable then, the failed load would be reused
 * by every later call and the limiter would never count again. Here the scripts are loaded
 * on first use and again after any failure, so counting resumes when Redis is back.
 */
class RedisCounterStore implements Store {
  readonly localKeys = false;
  readonly prefix: string;
  readonly #redis: RedisStore;
  #options: Options | undefined;
  #scripts: Promise<void> | undefined;

  constructor(
    sendCommand: (...args: string[]) => Promise<RedisReply>,
    prefix: string,
    private readonly health: StoreHealth,
  ) {
    this.prefix = prefix;
    this.#redis = new RedisStore({ sendCommand, prefix });
  }

  init(options: Options): void {
    this.#options = options;
  }

  /** Loads the scripts afresh (after a reconnection); nothing to do before init. */
  prepare(): Promise<void> {
    if (this.#options === undefined) return Promise.resolve();
    this.#scripts = undefined;
    return this.health.run(() => this.#loaded(), () => {}, false);
  }

  increment(key: string): Promise<IncrementResponse> {
    return this.#guarded(async () => {
      await this.#loaded();
      return this.#redis.increment(key);
    });
  }

  get(key: string): Promise<ClientRateLimitInfo | undefined> {
    return this.#guarded(async () => {
      await this.#loaded();
      return this.#redis.get(key);
    });
  }

  decrement(key: string): Promise<void> {
    return this.#guarded(() => this.#redis.decrement(key));
  }

  resetKey(key: string): Promise<void> {
    return this.#guarded(() => this.#redis.resetKey(key));
  }

  #loaded(): Promise<void> {
    const options = this.#options;
    if (options === undefined) return Promise.reject(new Error('rate-limit store used before init'));
    this.#scripts ??= this.#redis.init(options).catch((error: unknown) => {
      this.#scripts = undefined;
      throw error;
    });
    return this.#scripts;
  }

  #guarded<T>(call: () => Promise<T>): Promise<T> {
    return this.health.run(call, () => {
      this.#scripts = undefined;
    });
  }
}

/** A store call refused because the store cannot be reached (a 503 when RATE_LIMIT_ON_STORE_ERROR=deny). */
export class RateLimitStoreUnavailable extends ServiceUnavailable {
  constructor() {
    super('Rate limits cannot be checked right now; try again shortly.', RETRY_AFTER_S);
  }
}

/** The store's state for the log (once per outage) and the calls (deadline, one probe at a time). */
class StoreHealth {
  #down = false;
  #since = 0;
  #failedChecks = 0;
  #probing = false;
  #closed = false;

  constructor(
    private readonly logger: Logger,
    private readonly onStoreError: RateLimitConfig['onStoreError'],
    private readonly redact: (text: string) => string,
  ) {}

  /** `request`: a request's check, counted in the recovery line; false for the store's own calls. */
  async run<T>(call: () => Promise<T>, onFailure: () => void, request = true): Promise<T> {
    if (this.#down && this.#probing) {
      if (request) this.#failedChecks++;
      throw new RateLimitStoreUnavailable();
    }
    const probe = this.#down;
    if (probe) this.#probing = true;
    try {
      const value = await withDeadline(call(), COMMAND_TIMEOUT_MS);
      this.recovered();
      return value;
    } catch (error) {
      onFailure();
      this.failed(error);
      if (request) this.#failedChecks++;
      throw new RateLimitStoreUnavailable();
    } finally {
      if (probe) this.#probing = false;
    }
  }

  failed(error: unknown): void {
    if (this.#down || this.#closed) return;
    this.#down = true;
    this.#since = Date.now();
    this.#failedChecks = 0;
    securityEvent(this.logger, 'rate limit store unavailable', {
      store: 'redis',
      onStoreError: this.onStoreError,
      effect: this.onStoreError === 'allow' ? 'requests pass without rate limits' : 'requests are refused with 503',
      error: this.redact(error instanceof Error ? `${error.name}: ${error.message}` : String(error)),
    });
  }

  recovered(): void {
    if (!this.#down || this.#closed) return;
    this.#down = false;
    this.logger.info('rate limit store recovered', {
      category: 'recovery',
      store: 'redis',
      downMs: Date.now() - this.#since,
      failedChecks: this.#failedChecks,
    });
  }

  close(): void {
    this.#closed = true;
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Where Redis is, for the log: never the user name or the password. */
function safeLocation(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.hostname}:${parsed.port || '6379'}${parsed.pathname.length > 1 ? parsed.pathname : '/0'}`;
}

/** Removes the URL's password from a text (an error message) before it is logged. */
function redactor(url: string): (text: string) => string {
  const parsed = new URL(url);
  const secrets = [parsed.password, safeDecode(parsed.password)].filter((s) => s.length > 0);
  return (text) => secrets.reduce((out, secret) => out.split(secret).join('[redacted]'), text);
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
