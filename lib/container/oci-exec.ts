import { CorralError } from '../sys/errors.ts';
import { close, pidfdOpen } from '../sys/libc.ts';
import { connectUnix } from '../sys/sockets.ts';
import { launchJoined, type LaunchedProcess } from '../spawn/launch.ts';
import { joinSpec } from './exec.ts';
import { ociToSpec } from './oci-config.ts';
import type { OciCreateOptions, OciStore } from './oci-container.ts';
import { resolveSpec } from './spec.ts';
import { withoutParentDeath } from './setup.ts';

/** Starts an OCI process (runc's `exec --process`: args, env, cwd, user, terminal, capabilities,
 * rlimits, noNewPrivileges) inside a running container of the store; the process is our child
 * (the caller waits for it, or leaves it to its subreaper) with our fds 0-2, or, with a terminal,
 * the pty whose master goes to options.consoleSocket, and options.passFds of our fds from 3 on.
 * Returns its pid and a pidfd (the caller's to close). */
export async function ociExec(store: OciStore, id: string, process: Record<string, any>, options: OciCreateOptions = {}): Promise<LaunchedProcess> {
  const consoleSocket = options.consoleSocket;
  if (typeof process !== 'object' || process === null || !Array.isArray(process.args) || process.args.length === 0) {
    throw new CorralError('the exec process needs args: a non-empty array of strings', { code: 'ERR_INVALID_SPEC', step: 'process.args' });
  }
  const target = store.execTarget(id);
  const pidfd = pidfdOpen(target.pid);
  let consoleFd = -1;
  try {
    // Checked again once open: had the pid been reused meanwhile, the pidfd would name another process.
    if (!target.stillOurs()) throw new CorralError(`cannot exec in container "${id}": container not running`, { code: 'ERR_CONTAINER_STATE' });
    const container = resolveSpec(ociToSpec(id, target.config, target.bundle).spec, false);
    // The process's own fields go through the same mapping as the container's first process.
    const own = resolveSpec(ociToSpec(id, { ...target.config, process }, target.bundle).spec, false);
    if (own.tty && consoleSocket === undefined) throw new CorralError('process.terminal needs --console-socket (where the pty master is sent)', { code: 'ERR_INVALID_ARG_VALUE', step: 'process.terminal' });
    if (!own.tty && consoleSocket !== undefined) throw new CorralError('--console-socket needs a process with terminal: true', { code: 'ERR_INVALID_ARG_VALUE', step: '--console-socket' });
    if (consoleSocket !== undefined) consoleFd = connectUnix(consoleSocket);
    const launch = joinSpec({ spec: container, initPidfd: pidfd, cgroup: target.cgroup }, own, {
      command: own.command, env: own.env, stdio: [0, 1, 2], console: consoleFd >= 0 ? { fd: consoleFd, size: own.tty?.size ?? null } : null,
    });
    return await launchJoined({ ...launch, setup: withoutParentDeath(launch.setup), ...(options.passFds ? { passFds: options.passFds } : {}) });
  } finally {
    if (consoleFd >= 0) close(consoleFd);
    close(pidfd);
  }
}
