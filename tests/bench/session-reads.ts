/**
 * The read most rows measure: GET of one session whose state is 1 KB, by a user of its own.
 * And a pair of services started alike but for one setting, each with such a session, for the
 * rows that compare the service with itself, measured on fresh pairs (measureFreshPairs).
 */
import { json, measureFreshPairs, type RequestSpec, type StartedPair } from './load';
import type { BenchOptions } from './options';
import { bearer, startService, type scenarioScope, type Service } from './service';

export const STATE_1KB = { notes: 'x'.repeat(1000) };

/** Creates the reader's session on `target`; the request reading it. */
export async function readOneSession(target: Service): Promise<(connection: number) => RequestSpec> {
  const { id } = await target.call<{ id: string }>('reader', 'POST', '/api/v1/sessions', { title: 'read me', state: STATE_1KB });
  const spec = json('GET', `/api/v1/sessions/${id}`, bearer('reader'));
  return () => spec;
}

/** Starts the subject (with `subjectEnv`) and then the baseline (with `baselineEnv`), each on a data directory of its own. */
function readPairStarter(
  scope: ReturnType<typeof scenarioScope>,
  label: string,
  subjectEnv: Record<string, string>,
  baselineEnv: Record<string, string>,
): () => Promise<StartedPair> {
  return async () => {
    const subject = await scope.track(startService(await scope.dir(`${label}-subject`), subjectEnv));
    const baseline = await scope.track(startService(await scope.dir(`${label}-baseline`), baselineEnv));
    return {
      subject: { target: subject, request: await readOneSession(subject) },
      baseline: { target: baseline, request: await readOneSession(baseline) },
      stop: async () => {
        await Promise.all([subject.stop(), baseline.stop()]);
      },
    };
  };
}

/**
 * The read on services with `subjectEnv` against the same with `baselineEnv`. Such a row has a
 * 5% target, within one pair's noise on a shared machine: in a full run, three pairs of fresh
 * processes, four turns each, and the median of their twelve ratios; one pair in `--quick`.
 */
export function measureReadPairs(
  options: BenchOptions,
  scope: ReturnType<typeof scenarioScope>,
  label: string,
  subjectEnv: Record<string, string>,
  baselineEnv: Record<string, string>,
): ReturnType<typeof measureFreshPairs> {
  const starter = readPairStarter(scope, label, subjectEnv, baselineEnv);
  return options.quick ? measureFreshPairs(options, 1, starter) : measureFreshPairs({ ...options, runs: 4 }, 3, starter);
}
