/**
 * Every page of messages is exactly the messages after `after`, however the backend finds
 * them: across the fs backend's log checkpoints (it reads from the nearest one rather than
 * from the start; for other backends these are just pages), after concurrent (group-committed)
 * appends, and after a restart rebuilds what the backend keeps in memory. After a torn tail
 * was cut: tests/storage/fs/message-log.test.ts.
 */
import request from 'supertest';
import { CHECKPOINT_LINES } from '../../src/storage/fs/message-log';
import { contentOf, messagePages } from '../helpers/message-pages';
import { restartWithAlice, startWithSession } from '../helpers/one-session';
import { forEachBackend, type TestApp } from '../helpers/test-app';

let t: TestApp;
let alice: { Authorization: string };
let sessionId: string;

forEachBackend((backend) => {
  beforeEach(async () => {
    ({ t, alice, sessionId } = await startWithSession({}, { backend }));
  });
  afterEach(() => t.close());

  const messagesUrl = () => `/api/v1/sessions/${sessionId}/messages`;
  const { page, expectPagesCorrect } = messagePages(() => ({ t, alice, sessionId }));

  it('every page is exact across checkpoint boundaries, with appends made one by one', async () => {
    const total = 2 * CHECKPOINT_LINES + 10;
    for (let seq = 1; seq <= total; seq++) {
      await request(t.app).post(messagesUrl()).set(alice).send({ role: 'user', content: contentOf(seq) }).expect(201);
    }
    await expectPagesCorrect(total);
  });

  it('every page is exact after concurrent appends committed in groups, and again after a restart', async () => {
    const total = 2 * CHECKPOINT_LINES + 30;
    const results = await Promise.all(
      Array.from({ length: total }, () => request(t.app).post(messagesUrl()).set(alice).send({ role: 'user', content: 'placeholder' })),
    );
    expect(results.every((r) => r.status === 201)).toBe(true);
    // Content depends on the seq each got; re-check by seq against what the appends answered.
    const bySeq = new Map(results.map((r) => [r.body.seq as number, r.body.id as string]));
    let after = 0;
    const ids: string[] = [];
    for (;;) {
      const { items, nextCursor } = await page(after, 50);
      ids.push(...items.map((m) => (m as unknown as { id: string }).id));
      if (nextCursor === null) break;
      after = nextCursor;
    }
    expect(ids).toEqual(Array.from({ length: total }, (_, i) => bySeq.get(i + 1)));
    ({ t, alice } = await restartWithAlice(t));
    const middle = await page(CHECKPOINT_LINES + 3, 5);
    expect(middle.items.map((m) => (m as unknown as { id: string }).id)).toEqual(
      [4, 5, 6, 7, 8].map((k) => bySeq.get(CHECKPOINT_LINES + k)),
    );
  });
});
