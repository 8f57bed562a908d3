import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { close, pidfdOpen, type ExitStatus } from '../../sys/libc.ts';
import { exitWatcher } from '../../spawn/exit-watcher.ts';
import type { OciStore } from '../../container/oci-container.ts';
import { consoleSocket, preserveFds, createFlags, ociFlags } from './flags.ts';
import { logWarning, type OciLog } from './log.ts';

/** The exit code runc reports for a process: its own, or 128+N for signal N. */
export function exitCode(status: ExitStatus): number {
  return status.exitCode ?? 128 + (status.signal ?? 0);
}

/** `run --bundle B ID`: create, start, wait, delete; exits with the process's code (128+N for signal N). */
export async function runCommand(store: OciStore, args: string[], log: OciLog): Promise<number> {
  const { values, id } = ociFlags(args, createFlags);
  const pid = await store.create(id, resolve(String(values.bundle ?? '.')), { ...consoleSocket(values), ...preserveFds(values) });
  if (values['pid-file']) writeFileSync(String(values['pid-file']), String(pid));
  // Ours to reap: the init is our child until we exit.
  const pidfd = pidfdOpen(pid);
  const ended = new Promise<ExitStatus>((done) => exitWatcher.watch(pidfd, done));
  try {
    await store.start(id);
  } catch (e) {
    const warnings = await store.delete(id, true);
    await ended;
    close(pidfd);
    for (const warning of warnings) logWarning(log, warning);
    throw e;
  }
  if (values.detach) {
    close(pidfd);
    return 0;
  }
  const status = await ended;
  close(pidfd);
  for (const warning of await store.delete(id, true)) logWarning(log, warning);
  return exitCode(status);
}
