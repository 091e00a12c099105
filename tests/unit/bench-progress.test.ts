/** The bench's progress lines: what a person watching a terminal reads, and silence otherwise. */
import { clock, describeRequest, formatProgress, scenarioProgress, startGroup } from '../bench/progress';

it('names the group, the scenario, the run and the time taken', () => {
  expect(formatProgress({ group: 'http', ordinal: 3, scenario: 'GET /api/v1/sessions/:id against GET /', run: 2, runs: 5, scenarioMs: 41_900, totalMs: 75_300 })).toBe(
    'bench [1:15] http #3: GET /api/v1/sessions/:id against GET /: run 2 of 5 (0:41 into this scenario)',
  );
  expect(formatProgress({ group: 'postgres', ordinal: 1, scenario: 'PATCH /x', run: 0, runs: 1, scenarioMs: 0, totalMs: 3_600_000 })).toBe(
    'bench [60:00] postgres #1: PATCH /x: warm-up (0:00 into this scenario)',
  );
  expect(clock(59_999)).toBe('0:59');
});

it('names a request by method and path, with ids as :id, numbers as :n and no query', () => {
  expect(describeRequest({ method: 'GET', path: '/api/v1/sessions/3f2a9c1e-0b4d-4e8f-9a7b-1c2d3e4f5a6b/files?limit=100' })).toBe('GET /api/v1/sessions/:id/files');
  expect(describeRequest({ method: 'PUT', path: '/17' })).toBe('PUT /:n');
});

it('writes one line per run to a terminal, and nothing when stderr is a pipe or a file', () => {
  startGroup('files');
  const tty: string[] = [];
  const onTerminal = scenarioProgress('GET /', 3, { isTTY: true, write: (line: string) => tty.push(line) });
  onTerminal(0);
  onTerminal(1);
  expect(tty).toEqual([
    expect.stringMatching(/^bench \[\d+:\d\d\] files #1: GET \/: warm-up \(0:00 into this scenario\)\n$/),
    expect.stringMatching(/ files #1: GET \/: run 1 of 3 /),
  ]);
  const piped: string[] = [];
  const onPipe = scenarioProgress('GET /', 3, { isTTY: false, write: (line: string) => piped.push(line) });
  onPipe(1);
  expect(piped).toEqual([]);
});
