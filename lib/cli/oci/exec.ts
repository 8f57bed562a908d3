import { readFileSync, writeFileSync } from 'node:fs';
import { CorralError } from '../../sys/errors.ts';
import { close, type ExitStatus } from '../../sys/libc.ts';
import { exitWatcher } from '../../spawn/exit-watcher.ts';
import type { OciStore } from '../../container/oci-container.ts';
import { ociExec } from '../../container/oci-exec.ts';
import { consoleSocket, ociFlags, preserveFds } from './flags.ts';
import { exitCode } from './run.ts';

/** The process to exec: --process FILE (containerd's shim writes the whole OCI process), or the
 * command line with --tty, --cwd, --env, --user over the container's own process. */
function execProcess(values: Record<string, unknown>, command: string[], base: Record<string, any>): Record<string, any> {
  if (values.process !== undefined) {
    if (command.length > 0) throw new CorralError('exec takes either --process or a command, not both', { code: 'ERR_INVALID_ARG_VALUE' });
    try {
      return JSON.parse(readFileSync(String(values.process), 'utf8'));
    } catch (e) {
      throw new CorralError(`cannot read the process file ${String(values.process)}: ${(e as Error).message}`, { code: 'ERR_INVALID_SPEC', path: String(values.process) });
    }
  }
  if (command.length === 0) throw new CorralError('exec needs a command (or --process FILE)', { code: 'ERR_INVALID_ARG_VALUE' });
  const process: Record<string, any> = { ...base, args: command, terminal: values.tty === true };
  delete process.consoleSize;
  if (values.cwd !== undefined) process.cwd = values.cwd;
  if (values.env !== undefined) process.env = [...(base.env ?? []), ...(values.env as string[])];
  if (values.user !== undefined) {
    const [uid, gid] = String(values.user).split(':');
    if (!/^\d+$/.test(uid ?? '') || (gid !== undefined && !/^\d+$/.test(gid))) throw new CorralError(`--user must be UID[:GID], got "${String(values.user)}"`, { code: 'ERR_INVALID_ARG_VALUE' });
    process.user = { uid: Number(uid), gid: Number(gid ?? 0) };
  }
  return process;
}

/** `exec [--process FILE | --tty --cwd --env --user] [--detach] [--pid-file P] [--console-socket S] [--preserve-fds N]
 * ID [COMMAND...]`: a process inside a running container; without --detach it waits and exits
 * with the process's code. */
export async function execCommand(store: OciStore, args: string[]): Promise<number> {
  const { values, id, rest } = ociFlags(args, {
    process: { type: 'string', short: 'p' }, detach: { type: 'boolean', short: 'd' }, 'pid-file': { type: 'string' },
    'console-socket': { type: 'string' }, tty: { type: 'boolean', short: 't' }, cwd: { type: 'string' },
    env: { type: 'string', short: 'e', multiple: true }, user: { type: 'string', short: 'u' }, 'preserve-fds': { type: 'string' },
  });
  const proc = await ociExec(store, id, execProcess(values, rest, store.config(id).process ?? {}), { ...consoleSocket(values), ...preserveFds(values) });
  if (values['pid-file']) writeFileSync(String(values['pid-file']), String(proc.pid));
  if (values.detach) {
    close(proc.pidfd);
    return 0;
  }
  const status = await new Promise<ExitStatus>((done) => exitWatcher.watch(proc.pidfd, done));
  close(proc.pidfd);
  return exitCode(status);
}
