/** A process's resident memory and open descriptors, from the kernel's own accounting in /proc. */
import { readFile, readdir, writeFile } from 'node:fs/promises';

/** Resident set now, and its peak since start (or since the last `resetPeak`). */
export async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const bytes = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]) * 1024;
  return { rss: bytes('VmRSS'), peak: bytes('VmHWM') };
}

/** Sets the peak back to the resident set of now (clear_refs 5). */
export async function resetPeak(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}

/** How many file descriptors the process holds open now. */
export async function openDescriptors(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}
