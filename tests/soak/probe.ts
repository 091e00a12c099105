/**
 * What the soak watches in the server process from outside, without changing it: resident
 * memory and open fds from /proc, the JavaScript heap from a diagnostic report the process
 * writes on SIGUSR2 (it runs with `--report-on-signal`), and the data directory's size.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { memoryOf, openDescriptors, resetPeak } from '../helpers/process-memory';

export const REPORT_SIGNAL = 'SIGUSR2';

/** Node flags for the server: a report on SIGUSR2, and one on a fatal error or uncaught exception. */
export function reportFlags(reportDir: string): string[] {
  return [
    '--report-on-signal',
    `--report-signal=${REPORT_SIGNAL}`,
    '--report-on-fatalerror',
    '--report-uncaught-exception',
    '--report-compact',
    `--report-directory=${reportDir}`,
  ];
}

export class ServerGone extends Error {}

export interface Sample {
  rss: number;
  fds: number;
}

export interface Heap {
  usedBytes: number;
  totalBytes: number;
  /** libuv handles (sockets, timers, fs watchers...): a leak of handles shows here first. */
  handles: number;
}

interface NodeReport {
  header?: { event?: string; trigger?: string };
  javascriptHeap?: { usedMemory?: number; totalMemory?: number };
  javascriptStack?: { message?: string };
  libuv?: unknown[];
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class Probe {
  constructor(
    private readonly pid: number,
    private readonly reportDir: string,
  ) {}

  async sample(): Promise<Sample> {
    try {
      const [{ rss }, fds] = await Promise.all([memoryOf(this.pid), openDescriptors(this.pid)]);
      return { rss, fds };
    } catch (error) {
      if (!alive(this.pid)) throw new ServerGone(`server process ${this.pid} is gone`);
      throw error;
    }
  }

  /** Starts a new peak (VmHWM) window; false when the kernel does not let us. */
  async resetPeak(): Promise<boolean> {
    try {
      await resetPeak(this.pid);
      return true;
    } catch {
      return false;
    }
  }

  async peakRss(): Promise<number> {
    return (await memoryOf(this.pid)).peak;
  }

  /** Asks for a report and reads its heap figures; undefined if none arrives within `timeoutMs`. */
  async heap(timeoutMs = 10_000): Promise<Heap | undefined> {
    const before = new Set(await fs.readdir(this.reportDir));
    process.kill(this.pid, REPORT_SIGNAL);
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      await sleep(50);
      const fresh = (await fs.readdir(this.reportDir)).filter((name) => !before.has(name));
      for (const name of fresh) {
        const report = await this.read(name);
        if (!report) continue; // still being written
        await fs.rm(path.join(this.reportDir, name), { force: true });
        if (report.header?.event !== REPORT_SIGNAL) continue;
        return {
          usedBytes: report.javascriptHeap?.usedMemory ?? 0,
          totalBytes: report.javascriptHeap?.totalMemory ?? 0,
          handles: report.libuv?.length ?? 0,
        };
      }
    }
    return undefined;
  }

  /** What a report written on a fatal error or an uncaught exception says, if there is one. */
  async deathNote(): Promise<string | undefined> {
    for (const name of await fs.readdir(this.reportDir).catch(() => [])) {
      const report = await this.read(name);
      if (report && report.header?.event !== REPORT_SIGNAL) {
        return `${report.header?.trigger ?? 'report'}: ${report.header?.event ?? ''} ${report.javascriptStack?.message ?? ''}`.trim();
      }
    }
    return undefined;
  }

  private async read(name: string): Promise<NodeReport | undefined> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.reportDir, name), 'utf8')) as NodeReport;
    } catch {
      return undefined;
    }
  }
}

/** Bytes on disk (as `du` counts them) and entries under `dir`, not following links. */
export async function directorySize(dir: string): Promise<{ bytes: number; entries: number }> {
  let bytes = 0;
  let entries = 0;
  const walk = async (at: string): Promise<void> => {
    let names: string[];
    try {
      names = await fs.readdir(at);
    } catch {
      return; // removed while we walked
    }
    await Promise.all(
      names.map(async (name) => {
        const full = path.join(at, name);
        const stat = await fs.lstat(full).catch(() => undefined);
        if (!stat) return;
        entries++;
        bytes += stat.blocks * 512;
        if (stat.isDirectory()) await walk(full);
      }),
    );
  };
  await walk(dir);
  return { bytes, entries };
}
