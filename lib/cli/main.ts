#!/usr/bin/env node
// The corral command: `corral run [options] -- COMMAND...` runs a container with the terminal's stdio
// and exits with the container's exit code.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { constants } from 'node:os';
import { CorralError, Runtime, type ContainerSpec } from '../index.ts';
import { pairs, parseMountFlag, parseTmpfsFlag, parseVolumeFlag, usageError } from './parse.ts';
import { volumeCommand } from './volume-command.ts';

const USAGE = `usage: corral run [options] [--rootfs DIR] -- COMMAND [ARG...]
       corral volume create|ls|inspect|rm|prune ...

Runs COMMAND in a new container (own PID, mount, UTS, IPC, network and cgroup namespaces; a user
namespace when not root). Without --rootfs the container sees the host root read-only, with its own
/proc, /dev and an empty writable /tmp. The exit code is the command's (128+N for signal N).

options:
  --rootfs DIR            root directory of the container
  -e, --env KEY=VALUE     set an environment variable (repeatable; default PATH only)
  -w, --cwd DIR           working directory inside the container
  -u, --user UID[:GID]    run as this user
      --hostname NAME     host name inside the container
      --network MODE      none (default: own namespace with lo) or host
      --id ID             container id
  -l, --label KEY=VALUE   label (repeatable)
      --cap-add CAP       add a capability (repeatable; 'ALL' for all)
      --cap-drop CAP      drop a capability (repeatable)
      --timeout MS        kill the container after MS milliseconds (exit code 124)
  -v, --volume SRC:DST[:ro]  bind a host path (absolute SRC) or mount a named volume
      --mount SPEC        type=bind|tmpfs|volume,source=…,target=…[,readonly][,size=…]
      --tmpfs DST[:OPTS]  a tmpfs at DST (OPTS: size=64m,mode=1777)
      --read-only         the root filesystem read-only
      --rootfs-writable M overlay (default: writes go to a discarded layer) or direct
      --root DIR          where volumes and container layers live
  -h, --help              this text
  -v, --version           corral's version

exit codes: 125 corral failed, 126 command not executable, 127 command not found.`;

/** Exit codes for failures of corral itself, as docker uses them. */
const EXIT = { failed: 125, notExecutable: 126, notFound: 127, timedOut: 124 } as const;

function parseUser(value: string): { uid: number; gid: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(value);
  if (!m) throw usageError(`--user must be UID[:GID], got '${value}'`);
  return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** `corral run`: builds the spec from the options, runs it with inherited stdio, forwards signals. */
async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      rootfs: { type: 'string' },
      env: { type: 'string', short: 'e', multiple: true },
      cwd: { type: 'string', short: 'w' },
      user: { type: 'string', short: 'u' },
      hostname: { type: 'string' },
      network: { type: 'string' },
      id: { type: 'string' },
      label: { type: 'string', short: 'l', multiple: true },
      'cap-add': { type: 'string', multiple: true },
      'cap-drop': { type: 'string', multiple: true },
      timeout: { type: 'string' },
      volume: { type: 'string', short: 'v', multiple: true },
      mount: { type: 'string', multiple: true },
      tmpfs: { type: 'string', multiple: true },
      'read-only': { type: 'boolean' },
      'rootfs-writable': { type: 'string' },
      root: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length === 0) throw usageError('corral run needs a command after --');
  const spec: ContainerSpec = { command: positionals, stdio: 'inherit' };
  if (values.rootfs !== undefined) spec.rootfs = values.rootfs;
  if (values.env) spec.env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...pairs(values.env, '--env') };
  if (values.cwd !== undefined) spec.cwd = values.cwd;
  if (values.user !== undefined) spec.user = parseUser(values.user);
  if (values.hostname !== undefined) spec.hostname = values.hostname;
  if (values.network !== undefined) spec.network = values.network as 'none' | 'host';
  if (values.id !== undefined) spec.id = values.id;
  if (values.label) spec.labels = pairs(values.label, '--label');
  if (values['cap-add'] || values['cap-drop']) spec.capabilities = { add: values['cap-add'] ?? [], drop: values['cap-drop'] ?? [] };
  const mounts = [
    ...(values.volume ?? []).map(parseVolumeFlag),
    ...(values.mount ?? []).map(parseMountFlag),
    ...(values.tmpfs ?? []).map(parseTmpfsFlag),
  ];
  if (mounts.length) spec.mounts = mounts;
  if (values['read-only']) spec.readonlyRootfs = true;
  if (values['rootfs-writable'] !== undefined) spec.rootfsWritable = values['rootfs-writable'] as 'overlay' | 'direct';
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(timeout >= 0)) throw usageError(`--timeout must be milliseconds, got '${values.timeout}'`);

  const runtime = new Runtime(values.root === undefined ? {} : { root: values.root });
  await using container = await runtime.create(spec);
  let timedOut = false;
  const forward = (signal: NodeJS.Signals): void => {
    if (container.status === 'running') container.kill(signal);
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, forward);
  const timer = timeout === undefined ? null : setTimeout(() => {
    timedOut = true;
    forward('SIGKILL');
  }, timeout);
  await container.start();
  const exit = await container.wait();
  if (timer) clearTimeout(timer);
  if (timedOut) return EXIT.timedOut;
  return exit.exitCode ?? 128 + (constants.signals[exit.signal!] ?? 0);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return runCommand(rest);
    case 'volume':
      return volumeCommand(rest);
    case '-v':
    case '--version':
      console.log(`corral ${version()}`);
      return 0;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      console.log(USAGE);
      return command === undefined ? 1 : 0;
    default:
      throw usageError(`unknown command '${command}' (try corral --help)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as CorralError;
    process.stderr.write(`corral: ${e.message}\n`);
    process.exitCode = e.code === 'ENOENT' && e.step?.startsWith('resolve command') ? EXIT.notFound
      : e.code === 'EACCES' && e.step?.startsWith('resolve command') ? EXIT.notExecutable
        : EXIT.failed;
  },
);
