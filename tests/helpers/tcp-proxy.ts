/**
 * A TCP proxy between the service and something it depends on (PostgreSQL, the S3 endpoint),
 * for tests that take the dependency away and give it back while the service runs:
 *
 * - `cut('refuse')`: every connection through the proxy is destroyed and the listener
 *   closes, so a new connection is refused (ECONNREFUSED), as when the server is down;
 * - `cut('blackhole')`: connections stay open but nothing passes any more in either
 *   direction, and new connections are accepted and never answered, as when the network
 *   drops packets or the server hangs;
 * - `restore()`: the proxy forwards again on the same port (connections held by a
 *   blackhole are reset first, as a peer that gave up on them would);
 * - `throttle(bytesPerSecond)`: while open, every connection carries at most that many bytes
 *   a second each way, as a slow link does; 0 passes nothing (the peer stops reading, and the
 *   sender's writes back up), `null` lifts the limit. Backpressure goes through to the sender.
 * - `latencyMs` (at start): every chunk and every close takes that long to get across, each
 *   way, as between two hosts: a peer learns the other end closed only that much later.
 *
 * In process, on 127.0.0.1, never part of the service.
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';

export type CutMode = 'refuse' | 'blackhole';

export interface TcpProxy {
  readonly host: string;
  readonly port: number;
  /** Connections being forwarded right now. */
  readonly liveConnections: number;
  /** Connections accepted since the start (forwarded or swallowed). */
  readonly accepted: number;
  cut(mode?: CutMode): Promise<void>;
  restore(): Promise<void>;
  throttle(bytesPerSecond: number | null): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  /** What carries each way: client to upstream, upstream to client. */
  links: [Transform, Transform];
  /** Taken over by a blackhole: its ends no longer close each other. */
  held: boolean;
}

const HOST = '127.0.0.1';

export async function startTcpProxy(target: { host: string; port: number }, options: { latencyMs?: number } = {}): Promise<TcpProxy> {
  const latencyMs = options.latencyMs ?? 0;
  let state: 'open' | CutMode = 'open';
  const pairs = new Set<Pair>();
  /** Sockets a blackhole holds: open, read and dropped, never answered. */
  const held = new Set<Socket>();
  let accepted = 0;
  let rate: number | null = null;
  /** Chunks a throttle of 0 holds back, let go when the limit changes. */
  const stalled = new Set<() => void>();

  /** One direction of a connection: each chunk after `latencyMs`, then at `rate`. */
  const link = () =>
    new Transform({
      transform(chunk: Buffer, _encoding, callback: TransformCallback) {
        if (latencyMs > 0) {
          setTimeout(() => pass(chunk, callback), latencyMs);
          return;
        }
        pass(chunk, callback);
      },
      // The end (FIN) travels as late as the bytes do.
      flush(callback: TransformCallback) {
        if (latencyMs > 0) setTimeout(callback, latencyMs);
        else callback();
      },
    });
  /** Passes a chunk on at `rate` bytes a second. */
  const pass = (chunk: Buffer, callback: TransformCallback) => {
    if (rate === null) {
      callback(null, chunk);
      return;
    }
    if (rate === 0) {
      const release = () => {
        stalled.delete(release);
        callback(null, chunk);
      };
      stalled.add(release);
      return;
    }
    setTimeout(() => callback(null, chunk), (chunk.length / rate) * 1000);
  };

  const swallow = (socket: Socket) => {
    held.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => held.delete(socket));
    // Read and drop whatever arrives, so the peer's writes never block (as lost packets would not).
    socket.on('data', () => undefined);
    socket.resume();
  };

  const forward = (client: Socket) => {
    const upstream = net.connect(target.port, target.host);
    const links: [Transform, Transform] = [link(), link()];
    const pair: Pair = { client, upstream, links, held: false };
    pairs.add(pair);
    // A side that fails takes the other down at once, as a reset would.
    const fail = () => {
      if (pair.held) return;
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
      for (const l of links) l.destroy();
    };
    // A side that closes cleanly ends the other (through the pipes) only once what it sent has
    // gone through its link: an answer sent just before the server closed still arrives.
    const closed = () => {
      if (!pair.held && client.destroyed && upstream.destroyed) pairs.delete(pair);
    };
    client.on('error', fail).once('close', closed);
    upstream.on('error', fail).once('close', closed);
    client.pipe(links[0]).pipe(upstream);
    upstream.pipe(links[1]).pipe(client);
  };

  const server = net.createServer((client) => {
    accepted += 1;
    if (state === 'open') forward(client);
    else if (state === 'blackhole') swallow(client);
    else client.destroy();
  });

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, HOST, () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stopListening = () => new Promise<void>((resolve) => server.close(() => resolve()));

  await listen(0);
  const { port } = server.address() as AddressInfo;

  return {
    host: HOST,
    port,
    get liveConnections() {
      return pairs.size;
    },
    get accepted() {
      return accepted;
    },
    async cut(mode = 'refuse') {
      if (state !== 'open') throw new Error(`the proxy is already cut (${state})`);
      state = mode;
      if (mode === 'refuse') {
        const closed = stopListening();
        for (const pair of [...pairs]) {
          pair.client.destroy();
          pair.upstream.destroy();
        }
        pairs.clear();
        await closed;
        return;
      }
      // Blackhole: the connections stay up, but nothing gets through any more.
      for (const pair of [...pairs]) {
        pairs.delete(pair);
        pair.held = true;
        pair.client.unpipe();
        pair.upstream.unpipe();
        for (const l of pair.links) {
          l.unpipe();
          l.destroy();
        }
        swallow(pair.client);
        swallow(pair.upstream);
      }
    },
    throttle(bytesPerSecond) {
      if (bytesPerSecond !== null && !(bytesPerSecond >= 0)) throw new Error('a rate is a number of bytes a second, or null');
      rate = bytesPerSecond;
      for (const release of [...stalled]) release();
    },
    async restore() {
      if (state === 'open') return;
      const was = state;
      state = 'open';
      for (const socket of [...held]) socket.destroy();
      held.clear();
      if (was === 'refuse') await listen(port);
    },
    async close() {
      state = 'refuse';
      rate = null;
      for (const release of [...stalled]) release();
      for (const pair of [...pairs]) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      pairs.clear();
      for (const socket of [...held]) socket.destroy();
      held.clear();
      if (server.listening) await stopListening();
    },
  };
}
