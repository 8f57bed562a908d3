import { writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import { CorralError } from '../sys/errors.ts';
import { close, pidfdOpen, pidfdSendSignal, pipe, type ExitStatus } from '../sys/libc.ts';
import { Cgroup } from '../cgroup/cgroup.ts';
import { exitWatcher } from '../spawn/exit-watcher.ts';
import { capabilityMask } from './capabilities.ts';
import { hookError, type HookOutcome, type HookState, type OciHook } from './oci-hooks.ts';
import { joinOciProcess, type OciJoinTarget } from './oci-exec.ts';

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n as number, name]));

/** Everything read from a pipe's read end until EOF (a hook's output). */
function drain(fd: number): Promise<string> {
  return new Promise((done) => {
    const socket = new Socket({ fd, readable: true, writable: false });
    let text = '';
    socket.on('data', (chunk: Buffer) => { if (text.length < 1 << 16) text += chunk.toString(); });
    socket.on('end', () => done(text));
    socket.on('error', () => done(text));
  });
}

/** One hook run inside the container: its state on stdin (written before it starts, it is small),
 * stdout and stderr gathered, SIGKILL at its timeout. */
async function runJoinedHook(id: string, hook: OciHook, state: HookState, target: OciJoinTarget, process: Record<string, any>, capabilities: bigint | undefined): Promise<HookOutcome> {
  const [stdinRead, stdinWrite] = pipe();
  writeSync(stdinWrite, JSON.stringify(state));
  close(stdinWrite);
  const [outRead, outWrite] = pipe();
  const output = drain(outRead);
  let proc;
  try {
    proc = await joinOciProcess(id, target, { ...process, args: hook.args, env: hook.env, terminal: false }, {}, {
      file: hook.path, stdio: [stdinRead, outWrite, outWrite], ...(capabilities === undefined ? {} : { capabilities }),
    });
  } finally {
    close(stdinRead);
    close(outWrite);
  }
  let timedOut = false;
  const timer = hook.timeout === null ? null : setTimeout(() => { timedOut = true; pidfdSendSignal(proc.pidfd, 9); }, hook.timeout * 1000);
  const status = await new Promise<ExitStatus>((done) => exitWatcher.watch(proc.pidfd, done));
  if (timer) clearTimeout(timer);
  close(proc.pidfd);
  return { exitCode: status.exitCode, signal: status.signal === null ? null : SIGNAL_NAMES.get(status.signal) ?? String(status.signal), timedOut, output: await output };
}

/** Runs createContainer hooks (in the container's namespaces before its pivot_root, as root with
 * every capability and no seccomp filter, as runc's init runs them) or startContainer hooks (in the
 * container, as its process: its user, capabilities and filter), one after another; the path is
 * resolved in the container's mount namespace. The first failure is thrown. */
export async function runContainerHooks(kind: 'createContainer' | 'startContainer', hooks: readonly OciHook[], state: HookState, target: OciJoinTarget): Promise<void> {
  const creating = kind === 'createContainer';
  const { seccomp: _, ...linux } = target.config.linux ?? {};
  const joined = creating ? { ...target, config: { ...target.config, linux } } : target;
  const process = creating ? { user: { uid: 0, gid: 0 }, cwd: '/' } : { ...target.config.process, cwd: '/' };
  for (const [i, hook] of hooks.entries()) {
    const failed = hookError(kind, i, hook, await runJoinedHook(state.id, hook, state, joined, process, creating ? capabilityMask('all') : undefined));
    if (failed) throw failed;
  }
}

/** start's startContainer hooks, in the created container whose init is pid (alive: whether the pid
 * still names it, checked once a pidfd of it is open). */
export async function runStartContainerHooks(hooks: readonly OciHook[], state: HookState, init: { pid: number; alive: () => boolean; config: Record<string, any>; bundle: string; cgroup: string | null }): Promise<void> {
  const pidfd = pidfdOpen(init.pid);
  try {
    if (!init.alive()) throw new CorralError(`cannot start container "${state.id}": its init is gone`, { code: 'ERR_CONTAINER_STATE' });
    await runContainerHooks('startContainer', hooks, state, { pidfd, config: init.config, bundle: init.bundle, cgroup: init.cgroup === null ? null : Cgroup.open(init.cgroup) });
  } finally {
    close(pidfd);
  }
}
