/** Polls a probe until its value is accepted, for outcomes a test can only observe after the fact. */

/** Resolves with the first accepted value; after 10 s, throws naming `what` and the last value seen. */
export async function waitFor<T>(probe: () => Promise<T>, accept: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
