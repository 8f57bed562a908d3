import { CorralError } from '../sys/errors.ts';
import { close, pidfdOpen } from '../sys/libc.ts';
import { connectUnix } from '../sys/sockets.ts';
import { launchJoined, type LaunchedProcess } from '../spawn/launch.ts';
import { liftedDefences } from '../spawn/lifted-defences.ts';
import type { Cgroup } from '../cgroup/cgroup.ts';
import { joinSpec } from './exec.ts';
import { ociToSpec, umaskOps, type JoinableNamespace } from './oci-config.ts';
import type { OciCreateOptions, OciStore } from './oci-container.ts';
import { resolveSpec } from './spec.ts';
import { withoutParentDeath } from './setup.ts';

const JOINED_TOGGLE: Record<JoinableNamespace, 'net' | 'ipc' | 'uts' | 'pid' | 'cgroup'> = { network: 'net', ipc: 'ipc', uts: 'uts', pid: 'pid', cgroup: 'cgroup' };

/** A container's init to start a process beside, whatever its state: a pidfd of it, the config it
 * was created from (with its bundle) and its cgroup. */
export interface OciJoinTarget {
  pidfd: number;
  config: Record<string, any>;
  bundle: string;
  cgroup: Cgroup | null;
}

/** How a process joining a container differs from an exec'd one: an OCI hook's program (argv[0]
 * is its own) and, for createContainer hooks, the runtime's capabilities. */
export interface JoinOverrides {
  file?: string;
  capabilities?: bigint;
  /** Its fds 0-2 (ours by default). */
  stdio?: [number, number, number];
}

/** Starts an OCI process in the namespaces and cgroup of target's init, mapped as the container's
 * first process is (args, env, cwd, user, terminal, capabilities, rlimits, noNewPrivileges). */
export async function joinOciProcess(id: string, target: OciJoinTarget, process: Record<string, any>, options: OciCreateOptions = {}, overrides: JoinOverrides = {}): Promise<LaunchedProcess> {
  const consoleSocket = options.consoleSocket;
  let consoleFd = -1;
  try {
    const oci = ociToSpec(id, target.config, target.bundle);
    const made = resolveSpec(oci.spec, false);
    // The namespaces the init joined by path are its own as much as the ones it made: the process
    // joins them too, else it would stay in the runtime's network namespace
    // (test/security/oci-exec-joined-netns.test.ts, test/netns/oci-exec-joined-netns.spec.ts).
    const joined = liftedDefences.execMadeNamespacesOnly ? [] : oci.joinNamespaces;
    const container = { ...made, namespaces: { ...made.namespaces, ...Object.fromEntries(joined.map((ns) => [JOINED_TOGGLE[ns.type], true])) } };
    // The process's own fields go through the same mapping as the container's first process.
    const ownOci = ociToSpec(id, { ...target.config, process }, target.bundle);
    const mapped = resolveSpec(ownOci.spec, false);
    const own = overrides.capabilities === undefined ? mapped : { ...mapped, capabilities: overrides.capabilities };
    if (own.tty && consoleSocket === undefined) throw new CorralError('process.terminal needs --console-socket (where the pty master is sent)', { code: 'ERR_INVALID_ARG_VALUE', step: 'process.terminal' });
    if (!own.tty && consoleSocket !== undefined) throw new CorralError('--console-socket needs a process with terminal: true', { code: 'ERR_INVALID_ARG_VALUE', step: '--console-socket' });
    if (consoleSocket !== undefined) consoleFd = connectUnix(consoleSocket);
    const launch = joinSpec({ spec: container, initPidfd: target.pidfd, cgroup: target.cgroup }, own, {
      command: own.command, env: own.env, stdio: overrides.stdio ?? [0, 1, 2], console: consoleFd >= 0 ? { fd: consoleFd, size: own.tty?.size ?? null } : null,
    });
    return await launchJoined({
      ...launch, setup: withoutParentDeath(launch.setup), afterResolve: [...(launch.afterResolve ?? []), ...umaskOps(ownOci.umask)],
      ...(options.passFds ? { passFds: options.passFds } : {}), ...(overrides.file ? { file: overrides.file } : {}),
    });
  } finally {
    if (consoleFd >= 0) close(consoleFd);
  }
}

/** Starts an OCI process (runc's `exec --process`) inside a running container of the store; the
 * process is our child (the caller waits for it, or leaves it to its subreaper) with our fds 0-2,
 * or, with a terminal, the pty whose master goes to options.consoleSocket, and options.passFds of
 * our fds from 3 on. Returns its pid and a pidfd (the caller's to close). */
export async function ociExec(store: OciStore, id: string, process: Record<string, any>, options: OciCreateOptions = {}): Promise<LaunchedProcess> {
  if (typeof process !== 'object' || process === null || !Array.isArray(process.args) || process.args.length === 0) {
    throw new CorralError('the exec process needs args: a non-empty array of strings', { code: 'ERR_INVALID_SPEC', step: 'process.args' });
  }
  const target = store.execTarget(id);
  const pidfd = pidfdOpen(target.pid);
  try {
    // Checked again once open: had the pid been reused meanwhile, the pidfd would name another process.
    if (!target.stillOurs()) throw new CorralError(`cannot exec in container "${id}": container not running`, { code: 'ERR_CONTAINER_STATE' });
    return await joinOciProcess(id, { pidfd, config: target.config, bundle: target.bundle, cgroup: target.cgroup }, process, options);
  } finally {
    close(pidfd);
  }
}
