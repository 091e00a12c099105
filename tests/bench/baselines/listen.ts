/** How every baseline server starts: on PORT at 127.0.0.1, as the service does. */
import type { Express } from 'express';

export function listen(app: Express): void {
  const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

export function benchDirectory(): string {
  const dir = process.env.BENCH_DIR;
  if (!dir) throw new Error('BENCH_DIR is required');
  return dir;
}
