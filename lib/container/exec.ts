import { close, pidfdSendSignal } from '../sys/libc.ts';
import { CorralError } from '../sys/errors.ts';
import { exitWatcher } from '../spawn/exit-watcher.ts';
import { launchJoined, type LaunchedProcess } from '../spawn/launch.ts';
import type { Cgroup } from '../cgroup/cgroup.ts';
import { checkRunOptions, collectRun, exitInfo, signalNumber, type ExitInfo, type RunOptions, type RunResult } from './run-result.ts';
import { cloneFlags, envList, joinedProcessOps, joiningOps, searchPath } from './setup.ts';
import { lastStepOps } from './hardening.ts';
import { checkMapped, type ResolvedSpec, type StdioMode } from './spec.ts';
import { openStdio } from './stdio.ts';

/** Options of exec(): a new process in a running container. */
export interface ExecOptions extends RunOptions {
  /** Environment; default the container's. */
  env?: Record<string, string>;
  cwd?: string;
  user?: { uid: number; gid: number; groups?: number[] };
  stdio?: StdioMode;
}

/** The running container an exec joins. */
export interface ExecTarget {
  spec: ResolvedSpec;
  /** A pidfd of the container's first process. */
  initPidfd: number;
  cgroup: Cgroup | null;
}

/** Signals the exec'd process and everything in its process group (it is a session leader), so a
 * timeout or abort also ends the children that hold its output (test/security/exec-timeout-escape.test.ts).
 * Only while the leader is not reaped (its pidfd is open): until then its pid cannot name another group. */
function killProcessGroup(proc: LaunchedProcess, signal: number): void {
  if (proc.pidfd < 0) return;
  pidfdSendSignal(proc.pidfd, signal);
  try {
    process.kill(-proc.pid, signal);
  } catch {
    // the group is gone already
  }
}

/** Runs another process inside a running container (joined through setns on the init's pidfd, born
 * in its cgroup) and collects its exit and output. */
export async function execIn(target: ExecTarget, command: string[], options: ExecOptions = {}): Promise<RunResult<Buffer | string>> {
  if (!Array.isArray(command) || command.length === 0 || command.some((a) => typeof a !== 'string' || a.includes('\0'))) {
    throw new CorralError('exec command must be a non-empty array of strings', { code: 'ERR_INVALID_ARG_VALUE' });
  }
  const stdioMode = options.stdio ?? 'pipe';
  checkRunOptions(options, stdioMode === 'pipe');
  const env = options.env ?? target.spec.env;
  const spec = {
    cwd: options.cwd ?? target.spec.cwd,
    user: options.user ? { ...options.user, groups: options.user.groups ?? [] } : target.spec.user,
    idMap: target.spec.idMap,
    namespaces: target.spec.namespaces,
    capabilities: target.spec.capabilities,
    hardening: target.spec.hardening,
  };
  if (spec.idMap && spec.user) checkMapped(spec.idMap, spec.user);
  const stdio = openStdio(stdioMode);
  const startedAt = performance.now();
  const oomBefore = target.cgroup?.oomKills() ?? 0;
  let proc: LaunchedProcess;
  try {
    proc = await launchJoined({
      cloneFlags: 0n,
      targetPidfd: target.initPidfd,
      nsFlags: cloneFlags(target.spec),
      joinCgroupFd: target.cgroup?.fd ?? -1,
      joinSetup: joiningOps(),
      setup: joinedProcessOps(spec),
      beforeExec: lastStepOps(spec.hardening),
      command,
      env: envList(env),
      searchPath: searchPath(env),
      stdio: stdio.childFds,
    });
  } catch (e) {
    stdio.destroy();
    throw e;
  }
  stdio.releaseChildEnds();
  const exited = new Promise<ExitInfo>((resolve) => {
    exitWatcher.watch(proc.pidfd, (status) => {
      close(proc.pidfd);
      proc.pidfd = -1;
      resolve(exitInfo(status));
    });
  });
  return collectRun({
    ...stdio,
    wait: () => exited,
    kill: (signal) => killProcessGroup(proc, signalNumber(signal)),
    oomKilled: () => (target.cgroup?.oomKills() ?? 0) > oomBefore,
  }, options, startedAt);
}
