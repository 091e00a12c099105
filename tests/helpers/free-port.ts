import net from 'node:net';

/**
 * Ports are drawn below Linux's ephemeral range (32768-60999), from which the kernel hands out
 * `listen(0)` ports and the local ports of outgoing connections: a port found free here and
 * listened on a moment later cannot meanwhile have gone to a server another test file started
 * on port 0, or to a client socket. (A port the kernel assigned, once released, could.)
 */
const LOWEST = 20_000;
const SPAN = 12_000;

function listensOn(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer().once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** A port nothing listens on now, for a process a test is about to start. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * SPAN);
    if (await listensOn(port)) return port;
  }
  throw new Error('no free port found below the ephemeral range');
}
