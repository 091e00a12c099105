/**
 * The connection pool and the one way requests use it: `asUser` runs a unit of work as one
 * transaction that starts by setting app.user_id (transaction-local, so it can never leak
 * into the next user of the connection), which row-level security checks on every row.
 * Every statement is parameterised. Failures of the database itself (unreachable, timed out,
 * shutting down) leave here as ServiceUnavailable; nothing else about the engine does.
 */
import { Pool, types, type PoolClient, type PoolConfig } from 'pg';
import { ServiceUnavailable } from '../../errors';

/** Seconds a client is asked to wait before retrying while the database is unreachable. */
const RETRY_AFTER_SECONDS = 5;

/** int8 columns (sizes, counts, seq) as numbers: every value here stays far below 2^53. */
const typeParsers = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === types.builtins.INT8 ? (value: string) => Number(value) : types.getTypeParser(oid, format)) as typeof types.getTypeParser,
};

export type Sql = Pick<PoolClient, 'query'>;

export interface DatabaseSettings {
  url: string;
  poolMax: number;
  statementTimeoutMs: number;
}

/** SQLSTATE classes and codes that mean "the database cannot serve now", not "this request is wrong". */
const UNAVAILABLE_STATES = new Set(['57014', '57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006']);
const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

export function isUnavailable(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | undefined;
  if (typeof e?.code === 'string' && (UNAVAILABLE_STATES.has(e.code) || UNAVAILABLE_ERRNOS.has(e.code))) return true;
  // pg's own messages for a connection that ended or never came within connectionTimeoutMillis,
  // and for a reply that did not come within query_timeout (a server that stopped answering).
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended|Query read timeout/i.test(message);
}

function hasSqlState(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && UNAVAILABLE_STATES.has(code);
}

export function toDomainError(error: unknown): unknown {
  if (!isUnavailable(error)) return error;
  const unavailable = new ServiceUnavailable('The database cannot be reached; try again shortly.', RETRY_AFTER_SECONDS);
  // Kept for startup's error line (which names the errno); never shown to a client.
  unavailable.cause = error;
  return unavailable;
}

export class Database {
  readonly pool: Pool;

  constructor(settings: DatabaseSettings) {
    const config: PoolConfig = {
      connectionString: settings.url,
      max: settings.poolMax,
      // A request never waits longer than this for a connection, a statement, or a reply.
      connectionTimeoutMillis: settings.statementTimeoutMs,
      statement_timeout: settings.statementTimeoutMs,
      query_timeout: settings.statementTimeoutMs + 1000,
      idle_in_transaction_session_timeout: settings.statementTimeoutMs * 2,
      types: typeParsers,
      application_name: 'session-vault',
    };
    this.pool = new Pool(config);
    // An idle client whose server went away emits here; without a listener it would crash the process.
    this.pool.on('error', () => undefined);
  }

  /** One transaction as `userId`: every row it reads or writes is checked against that user. */
  asUser<T>(userId: string, work: (sql: Sql) => Promise<T>): Promise<T> {
    return this.transaction(async (client) => {
      await client.query("SELECT set_config('app.user_id', $1, true)", [userId]);
      return work(client);
    });
  }

  /** One transaction with no user: sees only what the policies show every user (the outbox, expired reservations). */
  asService<T>(work: (sql: Sql) => Promise<T>): Promise<T> {
    return this.transaction(work);
  }

  close(): Promise<void> {
    return this.pool.end();
  }

  private async transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw toDomainError(error);
    }
    let broken = false;
    // A socket error on a checked-out client is emitted here (the pool listens only while the
    // client is idle); unheard, it would crash the process. The query in flight rejects too.
    const onError = () => {
      broken = true;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      // A connection that failed or stopped answering (an unavailability with no SQLSTATE: the
      // server never said anything) is dropped, not asked to roll back: the server rolls back
      // what it loses, and waiting on the connection again would double the request's wait.
      if (isUnavailable(error) && !hasSqlState(error)) broken = true;
      else {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
      }
      throw toDomainError(error);
    } finally {
      // A connection that failed or could not even roll back is dropped, never handed to another request.
      client.off('error', onError);
      client.release(broken || undefined);
    }
  }
}
