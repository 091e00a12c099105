/**
 * Users who each PATCH a session of their own with If-Match under load: every request names
 * the version the last answer gave, so each is a real conditional write that succeeds.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestSpec } from './load';
import { bearer, type Service } from './service';

export interface Writer {
  user: string;
  id: string;
  etag: string;
}

/** A header from autocannon's answer, whose names keep the case they were sent in. */
function headerOf(headers: IncomingHttpHeaders, name: string): string | undefined {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : headers[key];
  return Array.isArray(value) ? value[0] : value;
}

/** `count` users named `<prefix>-<i>`, each with a new session created through `service`. */
export async function versionedWriters(service: Service, prefix: string, count: number) {
  const writers: Writer[] = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const user = `${prefix}-${i}`;
      const created = await service.call<{ id: string }>(user, 'POST', '/api/v1/sessions', { title: 'write me' });
      return { user, id: created.id, etag: '"v1"' };
    }),
  );
  const writer = (connection: number) => writers[connection % writers.length]!;
  return {
    writer,
    /** `spec` sent with the If-Match of connection's writer, which its 200 answers move on. */
    versioned(connection: number, spec: RequestSpec): RequestSpec {
      const w = writer(connection);
      return {
        ...spec,
        headersBeforeSend: () => ({ 'If-Match': w.etag }),
        onResponse: (status, headers) => {
          if (status === 200) w.etag = headerOf(headers, 'etag') ?? w.etag;
        },
      };
    },
    /**
     * A run ends with requests still in the server (waiting for a pooled connection, or
     * committing), which move versions on after it: reads every version until two reads 250 ms
     * apart agree, so the next run starts from the versions as they are.
     */
    async reread(): Promise<void> {
      let previous = '';
      for (let attempt = 0; attempt < 40; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        const etags = await Promise.all(
          writers.map(async (w) => {
            const res = await fetch(`${service.url}/api/v1/sessions/${w.id}`, { headers: bearer(w.user) });
            await res.arrayBuffer();
            if (res.status !== 200) throw new Error(`re-reading ${w.user}'s session: ${res.status}`);
            return (w.etag = res.headers.get('etag')!);
          }),
        );
        if (etags.join() === previous) return;
        previous = etags.join();
      }
      throw new Error('the sessions were still changing 10 s after a PATCH run ended');
    },
  };
}
