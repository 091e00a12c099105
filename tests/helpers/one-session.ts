/** An app with alice signed in and one session of hers, for tests that make many requests inside a single session. */
import request from 'supertest';
import { bearer, restartTestApp, startTestApp, type StartOptions, type TestApp } from './test-app';

/** Lifts the per-user rate limit: these tests send hundreds of requests. */
const ENV = { RATE_LIMIT_MAX: '100000' };

export interface OneSession {
  t: TestApp;
  alice: { Authorization: string };
  sessionId: string;
}

/** Starts the app (on `options.backend`, fs by default) and creates alice's session from `body`. */
export async function startWithSession(body: object = {}, options: StartOptions = {}): Promise<OneSession> {
  const t = await startTestApp(ENV, options);
  const alice = bearer(t.token('alice'));
  try {
    const sessionId = (await request(t.app).post('/api/v1/sessions').set(alice).send(body).expect(201)).body.id as string;
    return { t, alice, sessionId };
  } catch (error) {
    await t.close();
    throw error;
  }
}

/** The same storage in a new app, as after a process restart, with alice signed in again. */
export async function restartWithAlice(previous: TestApp): Promise<Pick<OneSession, 't' | 'alice'>> {
  const t = await restartTestApp(previous, ENV);
  return { t, alice: bearer(t.token('alice')) };
}
