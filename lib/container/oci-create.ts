import { closeSync, constants, mkdirSync, openSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CorralError } from '../sys/errors.ts';
import { close, mkfifo, openRaw, pidfdOpen, pidfdSendSignal, pipe } from '../sys/libc.ts';
import { CLONE } from '../sys/constants.ts';
import { op } from '../spawn/ops.ts';
import { connectUnix } from '../sys/sockets.ts';
import { clonePlan, pendingPlan, stepError, type LaunchedProcess } from '../spawn/launch.ts';
import { exitWatcher } from '../spawn/exit-watcher.ts';
import { encodePlan } from '../spawn/plan.ts';
import { StatusChannel, type StatusRecord } from '../spawn/status-channel.ts';
import { Cgroup, enableControllers } from '../cgroup/cgroup.ts';
import { attachDeviceFilter, deviceFiltersSupported } from '../cgroup/device-program.ts';
import { findV2Mount } from '../cgroup/hierarchy.ts';
import type { PlannedMount } from '../fs/rootfs.ts';
import { cloneFlags, commandStartOps, containerSetupOps, envList, searchPath, withoutParentDeath } from './setup.ts';
import { lastStepOps } from './hardening.ts';
import { resolveSpec } from './spec.ts';
import { ociToSpec, umaskOps, type JoinableNamespace } from './oci-config.ts';
import { OCI_VERSION, type OciCreateOptions } from './oci-container.ts';
import { runRuntimeHooks, type HookKind, type HookState, type OciHooks } from './oci-hooks.ts';
import { runContainerHooks } from './oci-container-hooks.ts';
import type { OciJoinTarget } from './oci-exec.ts';

const O_RDONLY = 0;
const JOIN_FLAGS: Record<JoinableNamespace, bigint> = { network: CLONE.NEWNET, ipc: CLONE.NEWIPC, uts: CLONE.NEWUTS, pid: CLONE.NEWPID, cgroup: CLONE.NEWCGROUP };

/** A created container's init, blocked on its exec fifo until start. */
export interface OciInit {
  pid: number;
  rootfs: string;
  annotations: Record<string, string>;
  /** Its cgroup's directory, or null without a v2 hierarchy. */
  cgroup: string | null;
}

/** `create`'s long part: the config compiled, the cgroup made (linux.cgroupsPath, default
 * /corral-oci/ID), the namespaces named by path joined first thing, the init cloned with its setup done and blocked on a fifo at fifoPath until
 * start writes to it; with a terminal its pty master is sent to consoleSocket first. Its parent is
 * whoever ran the command (a shim), so it is not killed when we exit. On failure nothing of it is
 * left but the fifo (in the caller's state directory). */
export async function launchOciInit(id: string, config: Record<string, any>, bundle: string, fifoPath: string, options: OciCreateOptions): Promise<OciInit> {
  const consoleSocket = options.consoleSocket;
  const oci = ociToSpec(id, config, bundle);
  const resolved = resolveSpec(oci.spec, false);
  if (resolved.tty && consoleSocket === undefined) throw new CorralError('process.terminal needs --console-socket (where the pty master is sent)', { code: 'ERR_INVALID_ARG_VALUE', step: 'process.terminal' });
  if (!resolved.tty && consoleSocket !== undefined) throw new CorralError('--console-socket needs process.terminal: true in config.json', { code: 'ERR_INVALID_ARG_VALUE', step: '--console-socket' });
  let cgroup: Cgroup | null = null;
  let consoleFd = -1;
  let child: LaunchedProcess | undefined;
  // The container's init: the clone, or its fork into a joined pid namespace (helperGone: the
  // clone's exit then).
  let init: LaunchedProcess | undefined;
  let helperGone: Promise<void> | undefined;
  let hooksPipe: [number, number] | null = null;
  const joined: { type: JoinableNamespace; path: string; fd: number }[] = [];
  try {
    for (const ns of oci.joinNamespaces) joined.push({ ...ns, fd: openRaw(ns.path, O_RDONLY) });
    if (consoleSocket !== undefined) consoleFd = connectUnix(consoleSocket);
    const mount = findV2Mount();
    if (mount) {
      const path = oci.cgroupsPath ?? `/corral-oci/${id}`;
      if (path.includes(':')) throw new CorralError(`linux.cgroupsPath "${path}" is a systemd slice: only cgroupfs paths are supported`, { code: 'ERR_INVALID_SPEC', step: 'linux.cgroupsPath' });
      const parent = join(mount, dirname(path));
      mkdirSync(parent, { recursive: true });
      enableControllers(mount, parent, resolved.limits.controllers);
      // test/security/device-*.test.ts: only allowed devices can be opened in the group.
      const filter = deviceFiltersSupported() ? (fd: number, at: string) => attachDeviceFilter(fd, at, resolved.devices) : null;
      // memory true: whether the parent enables it is not known here, so oomKills() reads memory.events.
      cgroup = Cgroup.create(parent, basename(path), resolved.limits, filter, true);
    } else if (resolved.limits.files.length > 0) {
      throw new CorralError('linux.resources need a cgroup v2 hierarchy, none is mounted', { code: 'ERR_CGROUP_UNAVAILABLE' });
    }
    mkfifo(fifoPath, 0o600);
    const startFd = openSync(fifoPath, constants.O_RDWR);
    const [statusRead, statusWrite] = pipe();
    // The init waits on this pipe once its mounts are made, before pivot_root, while the hooks of
    // that point run (runc's procHooks pause); null when the config has none.
    const paused = ['prestart', 'createRuntime', 'createContainer'].some((k) => oci.hooks[k as HookKind].length > 0) ? pipe() : null;
    hooksPipe = paused;
    const pause = paused ? [op.waitStart({ step: 'wait for the createRuntime and createContainer hooks', fd: paused[0] })] : [];
    const joinsPid = joined.some((ns) => ns.type === 'pid');
    const flags = cloneFlags(resolved, cgroup !== null) & ~(joinsPid ? CLONE.NEWPID : 0n);
    const setup = [
      ...joined.map((ns) => op.setns({ step: `join the ${ns.type} namespace ${ns.path}`, fd: ns.fd, nstype: JOIN_FLAGS[ns.type] })),
      // runc sets the config's hostname in a joined UTS namespace too.
      ...(joined.some((ns) => ns.type === 'uts') && typeof config.hostname === 'string' ? [op.sethostname({ step: `set hostname ${config.hostname}`, name: config.hostname })] : []),
      // setns puts only children in a pid namespace: the init is a fork, reported by its pid.
      ...(joinsPid ? [op.forkIntoParent({ step: 'fork into the joined pid namespace', cgroupFd: -1 })] : []),
      ...withoutParentDeath(containerSetupOps(resolved, { ownCgroup: cgroup !== null, layer: null, image: null, mounts: resolved.mounts as PlannedMount[], hostEntries: null, ownFiles: [], writes: oci.sysctl, beforeMasks: pause })),
    ];
    const ops = pendingPlan({
      cloneFlags: flags, setup, beforeExec: lastStepOps(resolved.hardening),
      afterResolve: [...commandStartOps(resolved, consoleFd >= 0 ? consoleFd : null), ...umaskOps(oci.umask)], keepFds: [...(consoleFd >= 0 ? [consoleFd] : []), ...joined.map((ns) => ns.fd), ...(paused ? [paused[0]] : [])],
      command: resolved.command, env: envList(resolved.env), searchPath: searchPath(resolved.env), stdio: [0, 1, 2],
      ...(options.passFds ? { passFds: options.passFds } : {}),
    }, statusWrite, startFd);
    try {
      child = clonePlan(encodePlan(ops, statusWrite), flags, cgroup?.fd);
    } finally {
      close(statusWrite);
      closeSync(startFd);
      if (consoleFd >= 0) close(consoleFd);
      consoleFd = -1;
      if (paused) close(paused[0]);
    }
    const channel = new StatusChannel(statusRead);
    try {
      const helper = child;
      // The clone forks the init into a joined pid namespace (a child of ours) and exits; the fork
      // may reach its first wait before the clone reported it, so a ready waits for that pid.
      const adopt = (pid: number): void => {
        init = { pid, pidfd: pidfdOpen(pid) };
        helperGone = new Promise((done) => exitWatcher.watch(helper.pidfd, () => { close(helper.pidfd); done(); }));
      };
      const next = async (): Promise<StatusRecord | null> => {
        let held: StatusRecord | null = null;
        for (;;) {
          const r = await channel.next();
          if (r?.kind === 'pid') {
            adopt(r.value);
            if (held) return held;
          } else if (r?.kind === 'ready' && joinsPid && !init) {
            held = r;
          } else {
            return r;
          }
        }
      };
      let record = await next();
      init ??= child;
      if (paused && record?.kind === 'ready') {
        await runCreateHooks(oci.hooks, { ociVersion: String(config.ociVersion ?? OCI_VERSION), id, pid: init.pid, status: 'creating', bundle, ...(Object.keys(oci.annotations).length > 0 ? { annotations: oci.annotations } : {}) }, { pidfd: init.pidfd, config, bundle, cgroup });
        writeSync(paused[1], Buffer.from([1]));
        record = await next();
      }
      if (record?.kind === 'error') throw stepError(ops, record);
      if (record?.kind !== 'ready') throw new CorralError('the container init exited during setup', { code: 'ERR_SETUP_FAILED', step: 'setup' });
    } finally {
      channel.close();
    }
    await helperGone;
    close(init.pidfd);
    return { pid: init.pid, rootfs: oci.rootfs, annotations: oci.annotations, cgroup: cgroup?.path ?? null };
  } catch (e) {
    if (consoleFd >= 0) close(consoleFd);
    if (init && init !== child) await killInit(init.pidfd);
    if (helperGone) await helperGone;
    else if (child) await killInit(child.pidfd);
    if (cgroup) await cgroup.remove().catch(() => {});
    throw e;
  } finally {
    for (const ns of joined) close(ns.fd);
    if (hooksPipe) close(hooksPipe[1]);
  }
}

/** The hooks of the pause before pivot_root: prestart and createRuntime in our namespaces, then
 * createContainer in the container's. */
async function runCreateHooks(hooks: OciHooks, state: HookState, target: OciJoinTarget): Promise<void> {
  runRuntimeHooks('prestart', hooks.prestart, state);
  runRuntimeHooks('createRuntime', hooks.createRuntime, state);
  await runContainerHooks('createContainer', hooks.createContainer, state, target);
}

/** Ends an init whose create failed after the clone, and reaps it (it is our child). */
async function killInit(pidfd: number): Promise<void> {
  pidfdSendSignal(pidfd, 9);
  await new Promise<void>((done) => exitWatcher.watch(pidfd, () => done()));
  close(pidfd);
}
