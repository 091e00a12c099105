/**
 * Groups of tests that need something a machine may lack (nginx, Chromium, root). Without it
 * the group is registered with `describe.skip`/`it.skip`, so Jest counts its tests as skipped,
 * never as passed, and one line saying what is missing goes to stderr. Straight to stderr,
 * not console.log: Jest's default reporter prints nothing of a file whose tests are all
 * skipped, its console output included, and a hook inside a skipped group never runs.
 */

/** What is missing (a sentence fragment), or undefined when the prerequisite is there. */
export type Missing = string | undefined;

function notice(name: string, missing: string): void {
  process.stderr.write(`SKIPPED "${name}": ${missing}\n`);
}

export function describeIf(missing: Missing, name: string, suite: () => void): void {
  if (missing === undefined) {
    describe(name, suite);
    return;
  }
  notice(name, missing);
  describe.skip(name, suite);
}

export function itIf(missing: Missing, name: string, test: () => Promise<unknown>, timeout?: number): void {
  if (missing === undefined) {
    it(name, test, timeout);
    return;
  }
  notice(name, missing);
  it.skip(name, test, timeout);
}

/** Root is needed to mount a tmpfs or hand a directory to another user (CI runs as root). */
export const missingRoot: Missing = process.getuid?.() === 0 && process.env.TEST_AS_NON_ROOT === undefined ? undefined : 'needs root (CI runs as root)';
