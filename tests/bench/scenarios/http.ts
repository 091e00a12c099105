/**
 * Request throughput of the JSON routes against bare Express baselines, each pair run
 * alternately in the same minute: reading a session (and the same with an RS256 token from a
 * JWKS against the HS256 read), listing a large account, a durable PATCH, a durable message
 * append, and the cost of the per-request log line.
 */
import { stat } from 'node:fs/promises';
import { DataPaths } from '../../../src/storage/fs/paths';
import { json, measurePair, type RequestSpec } from '../load';
import type { BenchOptions } from '../options';
import { baselineArgs, start, type Running } from '../processes';
import { ratioOfTurns, ratioRow, type Row } from '../report';
import { measureReadPairs, readOneSession, STATE_1KB } from '../session-reads';
import { bearer, restartService, scenarioScope, startService } from '../service';
import { writeCurrentSessions } from '../fixtures';
import { startJwksFixture } from '../jwks-fixture';

const MESSAGE = { role: 'user', content: 'y'.repeat(200) };

interface Created {
  id: string;
}

export async function httpScenarios(options: BenchOptions): Promise<Row[]> {
  const rows: Row[] = [];
  const scope = scenarioScope();
  const dir = (label: string) => scope.dir(label);
  const launch = <T extends Running>(started: Promise<T>) => scope.track(started);

  try {
    const bareJson = await launch(start({ args: baselineArgs('express-json'), env: {} }));
    const bareWrite = await launch(start({ args: baselineArgs('durable-write'), env: { BENCH_DIR: await dir('write') } }));
    const bareWriteDirSync = await launch(
      start({ args: baselineArgs('durable-write'), env: { BENCH_DIR: await dir('write-dirsync'), BENCH_FSYNC_DIR: '1' } }),
    );
    const bareAppend = await launch(start({ args: baselineArgs('durable-append'), env: { BENCH_DIR: await dir('append') } }));

    const dataDir = await dir('http');
    await writeCurrentSessions(dataDir, ['lister'], options.listedSessions);
    const service = await launch(startService(dataDir));

    const constant = (spec: RequestSpec) => () => spec;
    /** Subject and baseline, each warmed up, then measured in alternation. */
    const pair = (
      subject: Running,
      subjectRequest: (connection: number) => RequestSpec,
      baseline: Running,
      baselineRequest: (connection: number) => RequestSpec,
    ) => measurePair(options, { target: subject, request: subjectRequest }, { target: baseline, request: baselineRequest });

    // GET one session with a 1 KB state, against a constant JSON body of the same size.
    const bareGet = constant({ method: 'GET', path: '/' });
    // RS256 against HS256 has a narrow target (90%): seven turns in a full run, and the
    // median of their ratios.
    const turnsForNarrowTargets = { ...options, runs: options.quick ? options.runs : 7 };
    const getSession = await readOneSession(service);
    rows.push(
      ratioRow(
        'GET /api/v1/sessions/:id (1 KB state)',
        await pair(service, getSession, bareJson, bareGet),
        'bare Express',
        0.6,
        '>= 60% of bare Express',
      ),
    );

    // The same GET with an RS256 token whose key the service took from a JWKS (JWT_JWKS_URL),
    // against the same GET with an HS256 token: what an identity provider's tokens cost per
    // request. Both services are started for this row alike, each holding the one session
    // read (the service above has served other rows and holds a large account).
    const jwks = await startJwksFixture();
    scope.defer(() => jwks.close());
    const viaJwks = await launch(startService(await dir('jwks'), { JWT_SECRET: '', JWT_JWKS_URL: jwks.jwksUrl }));
    const viaSecret = await launch(startService(await dir('secret')));
    const hsGet = await readOneSession(viaSecret);
    const created = await fetch(`${viaJwks.url}/api/v1/sessions`, {
      method: 'POST',
      headers: { ...jwks.bearer('reader'), 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'read me', state: STATE_1KB }),
    });
    if (created.status !== 201) throw new Error(`creating a session with an RS256 token: ${created.status} ${await created.text()}`);
    const rsGet = constant(json('GET', `/api/v1/sessions/${((await created.json()) as Created).id}`, jwks.bearer('reader')));
    rows.push(
      ratioRow(
        'GET /api/v1/sessions/:id, RS256 token verified through a JWKS',
        await measurePair(turnsForNarrowTargets, { target: viaJwks, request: rsGet }, { target: viaSecret, request: hsGet }),
        'the same GET with an HS256 token (JWT_SECRET)',
        0.9,
        '>= 90% of the HS256 GET',
      ),
    );

    // The first page of a user with many sessions; the first request after start loads them.
    // Here with no listing summary (the fixtures were written straight to disk): what the
    // first start after a crash costs, reading every session.
    const coldStarted = performance.now();
    await service.call('lister', 'GET', '/api/v1/sessions?limit=50');
    const coldMs = performance.now() - coldStarted;
    // And after a graceful restart, which left the user's summary beside the sessions: a
    // service of its own lists once (loading the user), stops on SIGTERM, starts again.
    const restartDir = await dir('http-restart');
    await writeCurrentSessions(restartDir, ['lister'], options.listedSessions);
    const beforeRestart = await launch(startService(restartDir));
    await beforeRestart.call('lister', 'GET', '/api/v1/sessions?limit=50');
    const restarted = await launch(restartService(beforeRestart));
    if (!(await stat(new DataPaths(restartDir).summaryFile('lister')).catch(() => null))) throw new Error('the graceful stop left no listing summary');
    const restartStarted = performance.now();
    await restarted.call('lister', 'GET', '/api/v1/sessions?limit=50');
    const restartMs = performance.now() - restartStarted;
    await restarted.stop();
    const listPage = constant(json('GET', '/api/v1/sessions?limit=50', bearer('lister')));
    const listRow = ratioRow(
      `GET /api/v1/sessions?limit=50 (${options.listedSessions.toLocaleString('en')} sessions)`,
      await pair(service, listPage, bareJson, bareGet),
      'bare Express',
      0.3,
      '>= 30% of bare Express, p50 <= 20 ms, first page after a graceful restart <= 300 ms',
      { maxP50Ms: 20 },
    );
    rows.push({
      ...listRow,
      met: listRow.met && restartMs <= 300,
      extra: `first page after a graceful restart ${restartMs.toFixed(0)} ms (from the listing summary); with no summary (first start after a crash) ${coldMs.toFixed(0)} ms`,
    });

    // Durable PATCH: each connection is its own user writing its own session, against a
    // baseline where each connection replaces its own document.
    const writers = await Promise.all(
      Array.from({ length: options.writers }, async (_, i) => {
        const user = `writer-${i}`;
        const created = await service.call<Created>(user, 'POST', '/api/v1/sessions', { title: 'write me' });
        return json('PATCH', `/api/v1/sessions/${created.id}`, bearer(user), { state: STATE_1KB });
      }),
    );
    const patch = (connection: number) => writers[connection % writers.length]!;
    const bareReplace = (connection: number) => json('PUT', `/${connection}`, {}, { state: STATE_1KB });
    // Against a bare write that also fsyncs the directory after the rename, as the service
    // must for an acknowledged change to survive a crash; the bare write without it beside.
    const patchRow = ratioRow(
      `PATCH /api/v1/sessions/:id (durable, ${options.writers} users)`,
      await pair(service, patch, bareWriteDirSync, bareReplace),
      'bare durable write + directory fsync',
      0.9,
      '>= 90% of bare durable write + directory fsync',
    );
    const withoutDirSync = await pair(service, patch, bareWrite, bareReplace);
    const noDirSyncRatio = ratioOfTurns(withoutDirSync.turnRatios).ratio;
    rows.push({
      ...patchRow,
      extra: `${(noDirSyncRatio * 100).toFixed(0)}% of bare durable write without the directory fsync (${withoutDirSync.baseline.requestsPerSecond.toFixed(0)} req/s)`,
    });

    // Durable message append: every connection appends to the same session, against a
    // baseline appending to one file.
    const chat = await service.call<Created>('chatter', 'POST', '/api/v1/sessions', { title: 'chat' });
    const append = constant(json('POST', `/api/v1/sessions/${chat.id}/messages`, bearer('chatter'), MESSAGE));
    const bareAppendOne = constant(json('POST', '/', {}, MESSAGE));
    rows.push(
      ratioRow(
        'POST /api/v1/sessions/:id/messages (durable, one session)',
        await pair(service, append, bareAppend, bareAppendOne),
        'bare durable append',
        0.7,
        '>= 70% of bare durable append',
      ),
    );

    // What the per-request log line costs: the same read with request lines on and off, each
    // on a service started for this row alike (the one above holds a large account and every
    // row's data, whose heap alone would make its garbage collections dearer), on fresh pairs.
    rows.push(
      ratioRow(
        'request logging (GET session, LOG_LEVEL info vs warn)',
        await measureReadPairs(options, scope, 'logging', {}, { LOG_LEVEL: 'warn' }),
        'no request lines',
        0.95,
        '>= 95% of the same without request lines',
      ),
    );
  } finally {
    await scope.close();
  }
  return rows;
}
