/** How every baseline server starts: on PORT at 127.0.0.1, as the service does. */
import type { Server } from 'node:http';

/** An Express app or a plain node:http server. */
export function listen(app: { listen(port: number, host: string): Server }): void {
  const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

export function benchDirectory(): string {
  const dir = process.env.BENCH_DIR;
  if (!dir) throw new Error('BENCH_DIR is required');
  return dir;
}
