import { readFileSync } from 'node:fs';

/** The start time of a process (field 22 of /proc/PID/stat), or null when it is gone: with the pid
 * it names one process for good (a reused pid has another start time). */
export function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

const TAG = /^proc-(\d+)-(\d+)$/;
let tag: string | undefined;

/** 'proc-PID-STARTTIME': names what this process owns on disk or in cgroupfs, so what a dead
 * process left behind (a SIGKILL leaves no time to clean up) can be told from what a live one uses. */
export function processTag(): string {
  tag ??= `proc-${process.pid}-${startTime(process.pid)}`;
  return tag;
}

/** True for a name made by processTag whose process has died (a reused pid has another start time). */
export function isStaleTag(name: string): boolean {
  const m = TAG.exec(name);
  return m !== null && startTime(Number(m[1])) !== m[2];
}
