import { writeSync } from 'node:fs';
import { cloneWithPlan } from '../sys/native.ts';
import { close, pidfdOpen, pipe, readNow } from '../sys/libc.ts';
import { CorralError, syscallError } from '../sys/errors.ts';
import { CLONE, PR } from '../sys/constants.ts';
import { encodePlan, OP, type PlanOp } from './plan.ts';
import { parseRecords, StatusChannel, type StatusRecord } from './status-channel.ts';
import { exitWatcher } from './exit-watcher.ts';

/** What runs in the child: setup ops, then the command, with fds 0, 1, 2 taken from stdio. */
export interface LaunchSpec {
  cloneFlags: bigint;
  setup: PlanOp[];
  /** Ops after the command is resolved and before exec (the last hardening steps). */
  beforeExec?: PlanOp[];
  command: readonly string[];
  env: readonly string[];
  /** PATH used to find command[0]. */
  searchPath: string;
  stdio: readonly [number, number, number];
  cgroupFd?: number;
}

/** A child process started by a launch: pid and pidfd (ours to close). */
export interface LaunchedProcess {
  pid: number;
  pidfd: number;
}

function stdioOps(stdio: LaunchSpec['stdio']): PlanOp[] {
  return stdio.map((fd, target) => ({ code: OP.DUP2, step: `attach fd ${target}`, syscall: 'dup3', n: [fd, target] }));
}

function closeFdsOp(keep: number[]): PlanOp {
  return { code: OP.CLOSE_FDS, step: 'close inherited fds', syscall: 'close_range', u32Lists: [[...new Set(keep)].sort((a, b) => a - b)] };
}

function commandOps(spec: LaunchSpec): { resolve: PlanOp[]; exec: PlanOp[] } {
  const name = spec.command[0]!;
  return {
    resolve: [{ code: OP.RESOLVE_COMMAND, step: `resolve command '${name}' in PATH`, syscall: 'execve', path: name, s: [name, spec.searchPath] }],
    exec: [
      ...(spec.beforeExec ?? []),
      { code: OP.CLOEXEC_FROM, step: 'mark inherited fds close-on-exec', syscall: 'close_range', n: [3] },
      { code: OP.EXEC, step: `execute '${name}'`, syscall: 'execve', path: name, lists: [spec.command, spec.env] },
    ],
  };
}

/** The error a failed step reports. */
export function stepError(ops: readonly PlanOp[], record: StatusRecord): CorralError {
  const op = ops[record.step];
  if (!op) return syscallError('setup', record.errno, { step: `setup step ${record.step}` });
  return syscallError(op.syscall, record.errno, {
    step: op.step,
    ...(op.path === undefined ? {} : { path: op.path }),
  });
}

/** Waits for a child that failed its setup: it exits right after reporting. */
function reapFailed(pidfd: number): Promise<void> {
  return new Promise((resolve) => exitWatcher.watch(pidfd, () => { close(pidfd); resolve(); }));
}

function cloneOrThrow(plan: Buffer, flags: bigint, cgroupFd: number | undefined): LaunchedProcess {
  const child = cloneWithPlan(plan, flags, cgroupFd);
  if (child.pid < 0) throw syscallError('clone3', -child.pid, { step: 'create the container process' });
  return child;
}

/** PR_SET_DUMPABLE acts on the memory map, which a CLONE_VM child shares with Node: there it would
 * change Node itself, so it is left out (the child runs no code of the container before its exec,
 * and the parent is suspended until then). */
function withoutDumpable(ops: PlanOp[]): PlanOp[] {
  return ops.filter((op) => !(op.code === OP.PRCTL && op.n?.[0] === PR.SET_DUMPABLE));
}

/** Starts the command right away (CLONE_VM|CLONE_VFORK: this call returns once the child exec'd or
 * failed, so the outcome is known synchronously). */
export async function launchNow(spec: LaunchSpec): Promise<LaunchedProcess> {
  const [statusRead, statusWrite] = pipe();
  const { resolve, exec } = commandOps(spec);
  const stdio = stdioOps(spec.stdio);
  const ops = withoutDumpable([...stdio, closeFdsOp([0, 1, 2, statusWrite]), ...spec.setup, ...resolve, ...exec]);
  let child: LaunchedProcess;
  try {
    child = cloneOrThrow(encodePlan(ops, statusWrite), spec.cloneFlags | CLONE.VM | CLONE.VFORK, spec.cgroupFd);
  } finally {
    close(statusWrite);
  }
  try {
    const data = readNow(statusRead, 64) ?? Buffer.alloc(0);
    const failure = parseRecords(data).find((r) => r.kind === 'error');
    if (failure) {
      await reapFailed(child.pidfd);
      throw stepError(ops, failure);
    }
    return child;
  } finally {
    close(statusRead);
  }
}

/** A child that finished its setup and waits before exec until start() is called. */
export interface PendingProcess extends LaunchedProcess {
  /** Lets the child exec; resolves once it has, rejects if exec failed. */
  start(): Promise<void>;
  /** Gives up on the child before it started: it is killed and reaped. */
  abandon(): Promise<void>;
}

/** The ops of a child that sets up, then waits on startFd before exec: its stdio taken from stdio,
 * its status written to statusFd (fd numbers as the cloning process holds them). */
export function pendingOps(spec: LaunchSpec, stdio: LaunchSpec['stdio'], statusFd: number, startFd: number): PlanOp[] {
  const { resolve, exec } = commandOps(spec);
  return [
    ...stdioOps(stdio),
    closeFdsOp([0, 1, 2, statusFd, startFd]),
    ...spec.setup,
    ...resolve,
    { code: OP.WAIT_START, step: 'wait for start', syscall: 'read', n: [startFd] },
    ...exec,
  ];
}

/** Starts a child that performs its whole setup, then blocks before exec (create, then start). */
export async function launchPending(spec: LaunchSpec): Promise<PendingProcess> {
  const [statusRead, statusWrite] = pipe();
  let startRead: number;
  let startWrite: number;
  try {
    [startRead, startWrite] = pipe();
  } catch (e) {
    close(statusRead);
    close(statusWrite);
    throw e;
  }
  const ops = pendingOps(spec, spec.stdio, statusWrite, startRead);
  let child: LaunchedProcess;
  try {
    child = cloneOrThrow(encodePlan(ops, statusWrite), spec.cloneFlags, spec.cgroupFd);
  } catch (e) {
    close(statusRead);
    close(startWrite);
    throw e;
  } finally {
    close(statusWrite);
    close(startRead);
  }
  const channel = new StatusChannel(statusRead);
  const first = await channel.next();
  if (first?.kind !== 'ready') {
    channel.close();
    close(startWrite);
    await reapFailed(child.pidfd);
    if (first?.kind === 'error') throw stepError(ops, first);
    throw new CorralError('the container process exited during setup', { code: 'ERR_SETUP_FAILED', step: 'setup' });
  }
  let settled = false;
  return {
    ...child,
    async start() {
      if (settled) throw new CorralError('the container was already started', { code: 'ERR_CONTAINER_STATE' });
      settled = true;
      try {
        writeSync(startWrite, Buffer.from([1]));
      } finally {
        close(startWrite);
      }
      const outcome = await channel.next();
      channel.close();
      if (outcome?.kind === 'error') throw stepError(ops, outcome);
    },
    async abandon() {
      if (settled) return;
      settled = true;
      close(startWrite);
      channel.close();
    },
  };
}

/** Starts a process inside the namespaces of a running one (exec): a short-lived helper joins them
 * with setns and forks the command as our own child (CLONE_PARENT), so we can wait for it. */
export async function launchJoined(spec: LaunchSpec & { targetPidfd: number; nsFlags: bigint; joinSetup: PlanOp[]; joinCgroupFd: number }): Promise<LaunchedProcess> {
  const [statusRead, statusWrite] = pipe();
  const { resolve, exec } = commandOps(spec);
  const ops: PlanOp[] = [
    ...stdioOps(spec.stdio),
    closeFdsOp([0, 1, 2, statusWrite, spec.targetPidfd, ...(spec.joinCgroupFd >= 0 ? [spec.joinCgroupFd] : [])]),
    ...spec.joinSetup,
    { code: OP.SETNS, step: 'join the container namespaces', syscall: 'setns', n: [spec.targetPidfd, spec.nsFlags] },
    { code: OP.FORK_INTO_PARENT, step: 'fork inside the container', syscall: 'clone3', n: [spec.joinCgroupFd] },
    ...spec.setup,
    ...resolve,
    ...exec,
  ];
  let helper: LaunchedProcess;
  try {
    helper = cloneOrThrow(encodePlan(ops, statusWrite), spec.cloneFlags, spec.cgroupFd);
  } catch (e) {
    close(statusRead);
    throw e;
  } finally {
    close(statusWrite);
  }
  const helperDone = reapFailed(helper.pidfd);
  const channel = new StatusChannel(statusRead);
  try {
    let pid = -1;
    let pidfd = -1;
    for (let record = await channel.next(); record; record = await channel.next()) {
      if (record.kind === 'pid') {
        pid = record.value;
        pidfd = pidfdOpen(pid);
      } else if (record.kind === 'error') {
        if (pidfd >= 0) await reapFailed(pidfd);
        throw stepError(ops, record);
      }
    }
    if (pidfd < 0) throw new CorralError('the exec helper exited before forking', { code: 'ERR_SETUP_FAILED', step: 'exec' });
    return { pid, pidfd };
  } finally {
    channel.close();
    await helperDone;
  }
}
