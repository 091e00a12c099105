/**
 * Reads a V8 CPU profile (`node --cpu-prof`) and sums self time by where the code lives: a
 * package under node_modules, a file of the service's own (dist/...), Node's own modules, and
 * V8's buckets (garbage collector, program, idle). Idle time is left out of the shares, so the
 * shares say where the busy time went.
 */
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ModuleShare {
  module: string;
  selfMs: number;
  /** Of the busy (non-idle) time. */
  share: number;
}

/** Where a frame's code lives, as a reader would name it. */
export function moduleOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return '(garbage collector)';
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(program)') return '(program)';
    return '(native)';
  }
  const inPackages = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (inPackages) return inPackages[1]!;
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0]!;
  const own = /\/(dist|src)\/(.+)$/.exec(url);
  if (own) return own[2]!.replace(/\.(js|ts)$/, '');
  return url;
}

export function summarize(profile: CpuProfile): { busyMs: number; modules: ModuleShare[] } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMicros = new Map<string, number>();
  // timeDeltas[i] is the time before sample i; sample i's own time is the gap to the next one.
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    const micros = profile.timeDeltas[i + 1] ?? 0;
    const module = moduleOf(node.callFrame.url, node.callFrame.functionName);
    selfMicros.set(module, (selfMicros.get(module) ?? 0) + micros);
  }
  selfMicros.delete('(idle)');
  const busy = [...selfMicros.values()].reduce((sum, micros) => sum + micros, 0);
  const modules = [...selfMicros.entries()]
    .map(([module, micros]) => ({ module, selfMs: micros / 1000, share: busy === 0 ? 0 : micros / busy }))
    .sort((a, b) => b.selfMs - a.selfMs);
  return { busyMs: busy / 1000, modules };
}

export async function summarizeFile(file: string): Promise<{ busyMs: number; modules: ModuleShare[] }> {
  return summarize(JSON.parse(await readFile(file, 'utf8')) as CpuProfile);
}

export function profileTable(summary: { busyMs: number; modules: ModuleShare[] }, top = 10): string {
  const lines = ['| module | self time | share of busy time |', '|---|---|---|'];
  for (const entry of summary.modules.slice(0, top)) {
    lines.push(`| ${entry.module} | ${entry.selfMs.toFixed(0)} ms | ${(entry.share * 100).toFixed(1)}% |`);
  }
  return lines.join('\n');
}

if (require.main === module) {
  const [file, top] = process.argv.slice(2);
  if (!file) throw new Error('usage: tsx tests/bench/profile-summary.ts <file.cpuprofile> [top]');
  void summarizeFile(file).then((summary) => process.stdout.write(`${profileTable(summary, Number(top ?? 20))}\n`));
}
