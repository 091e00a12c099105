/**
 * A readiness probe as load balancers call it: at most one real check per interval whatever
 * the request rate (unauthenticated callers must not be able to multiply the work of a
 * check), and callers arriving meanwhile share its answer.
 */
export function throttledProbe(check: () => Promise<boolean>, intervalMs = 1000): () => Promise<boolean> {
  let last: { at: number; answer: Promise<boolean> } | undefined;
  return () => {
    const now = performance.now();
    if (!last || now - last.at >= intervalMs) last = { at: now, answer: check() };
    return last.answer;
  };
}
