import { writeSync } from 'node:fs';
import { cloneWithPlan, cloneWithPlanAsync, EBADMSG, type CloneResult } from '../sys/native.ts';
import { close, pidfdOpen, pipe, readNow } from '../sys/libc.ts';
import { CorralError, syscallError } from '../sys/errors.ts';
import { CLONE, PR } from '../sys/constants.ts';
import { encodePlan } from './plan.ts';
import { op, type PlanOp } from './ops.ts';
import { liftedDefences } from './lifted-defences.ts';
import { executorImageFd } from './executor-image.ts';
import { parseRecords, StatusChannel, type StatusRecord } from './status-channel.ts';
import { exitWatcher } from './exit-watcher.ts';
import { writeIdMaps } from './write-id-maps.ts';
import type { IdMap } from '../sys/id-map.ts';

/** What runs in the child: setup ops, then the command, with fds 0, 1, 2 taken from stdio. */
export interface LaunchSpec {
  cloneFlags: bigint;
  setup: PlanOp[];
  /** Ops right after the command is resolved, before the wait for start (the init's fork, the
   * terminal). */
  afterResolve?: PlanOp[];
  /** Ops after the command is resolved and before exec (the last hardening steps). */
  beforeExec?: PlanOp[];
  command: readonly string[];
  /** The program to run when it is not command[0] (an OCI hook's path, whose argv[0] is its own). */
  file?: string;
  env: readonly string[];
  /** PATH used to find command[0]. */
  searchPath: string;
  stdio: readonly [number, number, number];
  cgroupFd?: number;
  /** More fds the setup uses (a network namespace to join): kept open until exec. */
  keepFds?: readonly number[];
  /** How many fds from 3 on the command gets as they are (corral-oci's --preserve-fds N). */
  passFds?: number;
  /** A user namespace map with subordinate ranges, written by the parent through newuidmap and
   * newgidmap while the child waits (the setup then has no USERNS_MAPS op). */
  idMap?: IdMap;
  /** A long-lived user namespace (shared-user-namespace.ts) to make the container's namespaces in
   * instead of a new one: the child joins it, unshares the other namespaces of cloneFlags and
   * forks the container's first process into them (a new pid namespace takes a child), then
   * reports its pid; no newuidmap at the start. */
  userNamespaceFd?: number;
}

/** A child process started by a launch: pid and pidfd (ours to close). */
export interface LaunchedProcess {
  pid: number;
  pidfd: number;
}

function stdioOps(stdio: LaunchSpec['stdio']): PlanOp[] {
  return stdio.map((fd, target) => op.dup2({ step: `attach fd ${target}`, from: fd, to: target }));
}

/** The fds a plan goes on using after it closed the others (and the one a security test leaks on
 * purpose). */
function keptFds(keep: number[]): number[] {
  return liftedDefences.leakFd >= 0 ? [...keep, liftedDefences.leakFd] : keep;
}

/** Closes every inherited fd but those kept and the executor image (for OP_REEXEC; exe: its fd as
 * the cloning process holds it). */
function closeFdsOp(keep: number[], exe = executorImageFd()): PlanOp {
  return op.closeFds({ step: 'close inherited fds', keep: liftedDefences.hostExe ? keep : [...keep, exe] });
}

/** Puts the exec into the sealed executor image in a plan: right after the inherited fds are
 * closed, or after the user namespace's maps when there are some (the image's owner must be mapped
 * by then, else the exec would make the process non-dumpable and unable to write them).
 * Everything after it runs in the executor's own small image, so no container process is a copy
 * of node that /proc/self/exe hands out (CVE-2019-5736, test/security/cve-2019-5736-proc-self-exe.test.ts). */
function withReexec(ops: PlanOp[], keep: number[], exe = executorImageFd()): PlanOp[] {
  if (liftedDefences.hostExe) return ops;
  const maps = ops.findIndex((o) => o.name === 'USERNS_MAPS' || o.name === 'AWAIT_MAPS' || (o.name === 'FORK_INTO_PARENT' && o.fields.shareMemory));
  const at = (maps >= 0 ? maps : ops.findIndex((o) => o.name === 'CLOSE_FDS')) + 1;
  return [...ops.slice(0, at), op.reexec({ step: 'exec the executor image', exe, keep }), ...ops.slice(at)];
}

/** The fds a launch keeps open for its setup and its command (keepFds, then 3.. of passFds). */
function ownFds(spec: LaunchSpec): number[] {
  return [...(spec.keepFds ?? []), ...passedFds(spec)];
}

function passedFds(spec: LaunchSpec): number[] {
  return Array.from({ length: spec.passFds ?? 0 }, (_, i) => 3 + i);
}

function commandOps(spec: LaunchSpec): { resolve: PlanOp[]; exec: PlanOp[] } {
  const name = spec.file ?? spec.command[0]!;
  const passed = passedFds(spec);
  return {
    resolve: [op.resolveCommand({ step: `resolve command '${name}' in PATH`, path: name, name, searchPath: spec.searchPath }), ...(spec.afterResolve ?? [])],
    exec: [
      ...passed.map((fd) => op.dup2({ step: `pass fd ${fd} through`, from: fd, to: fd })),
      ...(spec.beforeExec ?? []),
      op.cloexecFrom({ step: 'mark inherited fds close-on-exec', fd: 3 + passed.length }),
      op.exec({ step: `execute '${name}'`, path: name, argv: spec.command, envp: spec.env }),
    ],
  };
}

/** The pipe the parent signals on once it wrote the child's id maps, when the launch has a map. */
interface MapsPipe {
  read: number;
  write: number;
}

function mapsPipe(spec: LaunchSpec): MapsPipe | null {
  if (!spec.idMap) return null;
  const [read, write] = pipe();
  return { read, write };
}

/** The wait for the id maps on mapsFd (its read end), first thing after the inherited fds are
 * closed. */
function awaitMapsOps(mapsFd: number | null): PlanOp[] {
  return mapsFd === null ? [] : [op.awaitMaps({ step: 'wait for the user namespace id maps (newuidmap, newgidmap)', fd: mapsFd })];
}

/** The parent's half of the handshake: newuidmap and newgidmap for the child, then a byte; on a
 * failure the pipe is closed unwritten, the child exits and is reaped. */
async function mapIds(child: LaunchedProcess, spec: LaunchSpec, maps: MapsPipe | null): Promise<void> {
  if (!maps) return;
  close(maps.read);
  try {
    await writeIdMaps(child.pid, spec.idMap!);
    writeSync(maps.write, Buffer.from([1]));
  } catch (e) {
    close(maps.write);
    await reapFailed(child.pidfd);
    throw e;
  }
  close(maps.write);
}

/** The start of a plan in a shared user namespace (spec.userNamespaceFd), right after the inherited
 * fds are closed: join it, make the other namespaces there, fork the container's first process
 * into them (sharing memory until it execs the executor image, next). Root of one container then has capabilities over
 * the others' namespaces; its own pid and mount namespaces keep their processes out of its reach
 * (test/security/shared-userns-isolation.test.ts). */
function sharedUserNamespaceOps(spec: LaunchSpec): PlanOp[] {
  if (spec.userNamespaceFd === undefined) return [];
  const flags = spec.cloneFlags & ~CLONE.NEWUSER;
  return [
    op.setns({ step: 'join the shared user namespace', fd: spec.userNamespaceFd, nstype: CLONE.NEWUSER }),
    ...(flags ? [op.unshare({ step: 'create the container namespaces in the shared user namespace', flags })] : []),
    // Sharing memory only until the exec of the executor image right after: without that exec (the
    // lifted twin of test/security/cve-2019-5736-proc-self-exe.test.ts) the helper would wait for
    // the command's exec, which a create() holds until start(), while we wait for the helper's pid record.
    op.forkIntoParent({ step: 'fork the container process into its namespaces', cgroupFd: -1, shareMemory: !liftedDefences.hostExe }),
  ];
}

/** The flags of the clone: in a shared user namespace none, its namespaces are made after the join. */
function launchCloneFlags(spec: LaunchSpec): bigint {
  return spec.userNamespaceFd === undefined ? spec.cloneFlags : 0n;
}

/** The fds the first close keeps: the shared user namespace's too (it is close-on-exec and not
 * kept across the executor image's exec). */
function firstKeep(spec: LaunchSpec, keep: number[]): number[] {
  return spec.userNamespaceFd === undefined ? keep : [...keep, spec.userNamespaceFd];
}

/** The container's first process of a plan in a shared user namespace: the forked one whose pid
 * the helper reported (our child through CLONE_PARENT), the helper reaped; else the child itself. */
function forkedProcess(spec: LaunchSpec, child: LaunchedProcess, records: readonly StatusRecord[]): LaunchedProcess | null {
  if (spec.userNamespaceFd === undefined) return child;
  const forked = records.find((r) => r.kind === 'pid');
  exitWatcher.watch(child.pidfd, () => close(child.pidfd));
  return forked ? { pid: forked.value, pidfd: pidfdOpen(forked.value) } : null;
}

/** Whether the records so far tell how the setup went: a ready or error record, and in a shared
 * user namespace the forked process's pid too (the helper's record and the forked process's may
 * come in either order), which must be reaped even when it failed. */
function setupSettled(spec: LaunchSpec, records: readonly StatusRecord[]): boolean {
  return records.some((r) => r.kind !== 'pid') && (spec.userNamespaceFd === undefined || records.some((r) => r.kind === 'pid'));
}

/** The error a failed step reports. */
export function stepError(ops: readonly PlanOp[], record: StatusRecord): CorralError {
  const failed = ops[record.step];
  if (!failed) return syscallError('setup', record.errno, { step: `setup step ${record.step}` });
  return syscallError(failed.syscall, record.errno, {
    step: failed.step,
    ...(failed.path === undefined ? {} : { path: failed.path }),
  });
}

/** Waits for a child that failed its setup: it exits right after reporting. */
function reapFailed(pidfd: number): Promise<void> {
  return new Promise((resolve) => exitWatcher.watch(pidfd, () => { close(pidfd); resolve(); }));
}

/** Clones a child that runs an encoded plan; a plan the executor refuses (bad magic, an op or a
 * slot or offset out of bounds) is an error before any child exists. */
export function clonePlan(plan: Buffer, flags: bigint, cgroupFd: number | undefined): LaunchedProcess {
  return cloned(cloneWithPlan(plan, flags, cgroupFd));
}

/** clonePlan on a libuv worker thread (lib/sys/native.ts cloneWithPlanAsync). */
export async function clonePlanAsync(plan: Buffer, flags: bigint): Promise<LaunchedProcess> {
  return cloned(await cloneWithPlanAsync(plan, flags));
}

function cloned(child: CloneResult): LaunchedProcess {
  if (child.pid === -EBADMSG) {
    const where = child.badOp < 0 ? 'in its header (magic, size or op count)' : `at op ${child.badOp}`;
    throw new CorralError(`the setup plan is malformed ${where}; the executor refused it and started nothing`, { code: 'ERR_INVALID_PLAN', step: 'check the setup plan' });
  }
  if (child.pid < 0) throw syscallError('clone3', -child.pid, { step: 'create the container process' });
  return child;
}

/** PR_SET_DUMPABLE acts on the memory map, which a CLONE_VM child shares with Node until it execs
 * the executor image: there it would change Node itself, so it is left out before that exec (the
 * child runs no code of the container meanwhile, and the parent is suspended until then). */
export function withoutDumpable(ops: PlanOp[]): PlanOp[] {
  const ownImage = ops.findIndex((o) => o.name === 'REEXEC');
  return ops.filter((o, i) => (ownImage >= 0 && i > ownImage) || !(o.name === 'PRCTL' && o.fields.option === PR.SET_DUMPABLE));
}

/** The plan of a container's first process started right away (launchNow). */
export function runPlan(spec: LaunchSpec, statusFd: number, mapsFd: number | null = null): PlanOp[] {
  const { resolve, exec } = commandOps(spec);
  const keep = keptFds([0, 1, 2, statusFd, ...ownFds(spec), ...(mapsFd === null ? [] : [mapsFd])]);
  return withoutDumpable(withReexec([...stdioOps(spec.stdio), closeFdsOp(firstKeep(spec, keep)), ...awaitMapsOps(mapsFd), ...sharedUserNamespaceOps(spec), ...spec.setup, ...resolve, ...exec], keep));
}

/** The plan of a container's first process that waits for start() before exec (launchPending,
 * and a detached container's supervisor, whose fds differ: stdio and exe as it holds them).
 * mapsFd: where the child waits for its id maps (spec.idMap), or null. */
export function pendingPlan(spec: LaunchSpec, statusFd: number, startFd: number, fds: { stdio: LaunchSpec['stdio']; exe: number } = { stdio: spec.stdio, exe: executorImageFd() }, mapsFd: number | null = null): PlanOp[] {
  const { resolve, exec } = commandOps(spec);
  const keep = keptFds([0, 1, 2, statusFd, startFd, ...ownFds(spec), ...(mapsFd === null ? [] : [mapsFd])]);
  return withReexec([
    ...stdioOps(fds.stdio),
    closeFdsOp(firstKeep(spec, keep), fds.exe),
    ...awaitMapsOps(mapsFd),
    ...sharedUserNamespaceOps(spec),
    ...spec.setup,
    ...resolve,
    op.waitStart({ step: 'wait for start', fd: startFd }),
    ...exec,
  ], keep, fds.exe);
}

/** What exec needs besides a launch: the running container's pidfd, namespaces and cgroup. */
export interface JoinSpec extends LaunchSpec {
  targetPidfd: number;
  nsFlags: bigint;
  /** Steps before the namespaces are joined. */
  joinSetup: PlanOp[];
  /** The container's cgroup directory fd, or -1. */
  joinCgroupFd: number;
}

/** The plan of a process exec'd into a running container (launchJoined). The fds that reach the
 * host (the container's pidfd, its cgroup directory) are closed as soon as the process is forked
 * inside, before it resolves any path of the container (CVE-2024-21626: a cwd linked to
 * /proc/self/fd/N reached the host's cgroupfs; test/security/cve-2024-21626-exec-cwd.test.ts). */
export function joinPlan(spec: JoinSpec, statusFd: number): PlanOp[] {
  const { resolve, exec } = commandOps(spec);
  const keep = keptFds([0, 1, 2, statusFd, spec.targetPidfd, ...(spec.joinCgroupFd >= 0 ? [spec.joinCgroupFd] : []), ...ownFds(spec)]);
  return withReexec([
    ...stdioOps(spec.stdio),
    closeFdsOp(keep),
    ...spec.joinSetup,
    op.setns({ step: 'join the container namespaces', fd: spec.targetPidfd, nstype: spec.nsFlags }),
    op.forkIntoParent({ step: 'fork inside the container', cgroupFd: spec.joinCgroupFd }),
    ...(liftedDefences.keepHostFds ? [] : [op.closeFds({ step: 'close the fds of the host', keep: keptFds([0, 1, 2, statusFd, ...ownFds(spec)]) })]),
    ...spec.setup,
    ...resolve,
    ...exec,
  ], keep);
}

/** Starts the command right away (CLONE_VM|CLONE_VFORK, then a blocking read of the status pipe:
 * this call returns once the child exec'd the command or failed, so the outcome is known
 * synchronously). With an id map for the parent to write the clone is fork-like: a vfork parent
 * could not run newuidmap while the child waits for it. */
export async function launchNow(spec: LaunchSpec): Promise<LaunchedProcess> {
  const [statusRead, statusWrite] = pipe();
  let maps: MapsPipe | null = null;
  let child: LaunchedProcess;
  let ops: PlanOp[];
  try {
    maps = mapsPipe(spec);
    ops = runPlan(spec, statusWrite, maps?.read ?? null);
    child = clonePlan(encodePlan(ops, statusWrite), launchCloneFlags(spec) | (maps ? 0n : CLONE.VM | CLONE.VFORK), spec.cgroupFd);
  } catch (e) {
    close(statusRead);
    if (maps) { close(maps.read); close(maps.write); }
    throw e;
  } finally {
    close(statusWrite);
  }
  try {
    await mapIds(child, spec, maps);
    // The child is past its first exec (the executor image, or the command itself): the rest of
    // its setup is read here synchronously, as vfork would have waited for it.
    let data = Buffer.alloc(0);
    for (let chunk = readNow(statusRead, 64); chunk?.length; chunk = readNow(statusRead, 64)) {
      data = Buffer.concat([data, chunk]);
      const records = parseRecords(data);
      if (records.some((r) => r.kind === 'error') && setupSettled(spec, records)) break;
    }
    const records = parseRecords(data);
    const failure = records.find((r) => r.kind === 'error');
    const container = forkedProcess(spec, child, records);
    if (failure || !container) {
      if (container) await reapFailed(container.pidfd);
      if (failure) throw stepError(ops, failure);
      throw new CorralError('the container process exited during setup', { code: 'ERR_SETUP_FAILED', step: 'setup' });
    }
    return container;
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
  let maps: MapsPipe | null = null;
  let child: LaunchedProcess;
  let ops: PlanOp[];
  try {
    maps = mapsPipe(spec);
    ops = pendingPlan(spec, statusWrite, startRead, undefined, maps?.read ?? null);
    child = clonePlan(encodePlan(ops, statusWrite), launchCloneFlags(spec), spec.cgroupFd);
  } catch (e) {
    close(statusRead);
    close(startWrite);
    if (maps) { close(maps.read); close(maps.write); }
    throw e;
  } finally {
    close(statusWrite);
    close(startRead);
  }
  try {
    await mapIds(child, spec, maps);
  } catch (e) {
    close(statusRead);
    close(startWrite);
    throw e;
  }
  const channel = new StatusChannel(statusRead);
  // In a shared user namespace the helper's pid record and the forked process's first record may
  // come in either order.
  const records: StatusRecord[] = [];
  while (!setupSettled(spec, records)) {
    const r = await channel.next();
    if (!r) break;
    records.push(r);
  }
  const first = records.find((r) => r.kind !== 'pid');
  const container = forkedProcess(spec, child, records);
  if (first?.kind !== 'ready' || !container) {
    channel.close();
    close(startWrite);
    if (container) await reapFailed(container.pidfd);
    if (first?.kind === 'error') throw stepError(ops, first);
    throw new CorralError('the container process exited during setup', { code: 'ERR_SETUP_FAILED', step: 'setup' });
  }
  let settled = false;
  return {
    ...container,
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
export async function launchJoined(spec: JoinSpec): Promise<LaunchedProcess> {
  const [statusRead, statusWrite] = pipe();
  let helper: LaunchedProcess;
  let ops: PlanOp[];
  try {
    ops = joinPlan(spec, statusWrite);
    helper = clonePlan(encodePlan(ops, statusWrite), spec.cloneFlags, spec.cgroupFd);
  } catch (e) {
    close(statusRead);
    throw e;
  } finally {
    close(statusWrite);
  }
  const helperDone = reapFailed(helper.pidfd);
  const channel = new StatusChannel(statusRead);
  try {
    // Read to EOF: the forked process can report its failure before the helper reports its pid,
    // and a failed process must still be reaped (else the container's init never exits).
    let pid = -1;
    let pidfd = -1;
    let failure: StatusRecord | null = null;
    for (let record = await channel.next(); record; record = await channel.next()) {
      if (record.kind === 'pid') {
        pid = record.value;
        pidfd = pidfdOpen(pid);
      } else if (record.kind === 'error') {
        failure ??= record;
      }
    }
    if (failure) {
      if (pidfd >= 0) await reapFailed(pidfd);
      throw stepError(ops, failure);
    }
    if (pidfd < 0) throw new CorralError('the exec helper exited before forking', { code: 'ERR_SETUP_FAILED', step: 'exec' });
    return { pid, pidfd };
  } finally {
    channel.close();
    await helperDone;
  }
}
