import { closeSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { CorralError } from '../sys/errors.ts';
import { CLONE } from '../sys/constants.ts';
import { close, pipe } from '../sys/libc.ts';
import type { IdMap } from '../sys/id-map.ts';
import type { ExitStatus } from '../sys/libc.ts';
import { exitWatcher } from './exit-watcher.ts';
import { launchNow } from './launch.ts';
import type { PlanOp } from './ops.ts';

/** What a host-side job in a user namespace does: setup ops, then a host command (searched in
 * /usr/bin:/bin). */
export interface UserNamespaceJob {
  /** Said in the error when the command exits non-zero. */
  what: string;
  setup: PlanOp[];
  command: string[];
  env?: string[];
  /** fds the command writes to (default /dev/null); the caller closes its ends after the launch. */
  stdout?: number;
  stderr?: number;
  /** Called once the command runs (exec'd), before it exits: the caller closes its ends there. */
  onStarted?: () => void;
}

/** Runs a job as root of a fresh user namespace with the given map (newuidmap handshake) and no
 * other namespace: what the caller cannot do to files owned by its subordinate ids (chown them,
 * remove them) is done there. Resolves once the command exited 0. */
export async function runInUserNamespace(map: IdMap, job: UserNamespaceJob): Promise<void> {
  const devNull = openSync('/dev/null', 'r+');
  let status: ExitStatus;
  try {
    const child = await launchNow({
      cloneFlags: CLONE.NEWUSER, setup: job.setup, command: job.command, env: job.env ?? [], searchPath: '/usr/bin:/bin',
      stdio: [devNull, job.stdout ?? devNull, job.stderr ?? devNull], idMap: map,
    });
    job.onStarted?.();
    status = await new Promise<ExitStatus>((resolve) => exitWatcher.watch(child.pidfd, (s) => { close(child.pidfd); resolve(s); }));
  } finally {
    closeSync(devNull);
  }
  if (status.exitCode !== 0) {
    throw new CorralError(`${job.what}: ${job.command.join(' ')} in the user namespace exited with ${status.exitCode ?? status.signal}`, {
      code: 'ERR_SETUP_FAILED', step: job.what,
    });
  }
}

/** runInUserNamespace for a command whose output is small (du, say): resolves with its stdout. */
export async function outputInUserNamespace(map: IdMap, job: Omit<UserNamespaceJob, 'stdout' | 'onStarted'>): Promise<Buffer> {
  const [read, write] = pipe();
  const stdout = new Socket({ fd: read, readable: true, writable: false });
  const chunks: Buffer[] = [];
  stdout.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve) => stdout.on('close', () => resolve()));
  let open = true;
  const closeWrite = (): void => {
    if (open) close(write);
    open = false;
  };
  try {
    await runInUserNamespace(map, { ...job, stdout: write, onStarted: closeWrite });
  } catch (e) {
    stdout.destroy();
    throw e;
  } finally {
    closeWrite();
  }
  await ended;
  return Buffer.concat(chunks);
}
