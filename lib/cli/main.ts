#!/usr/bin/env node
// The corral command: `corral run [options] -- COMMAND...` runs a container with the terminal's stdio
// (or a terminal of its own with -t) and exits with the container's exit code.
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
// The library and each command's module are imported when the command runs: --version, --help
// and usage errors load none of them, and a command only what it uses.
import type { ContainerSpec, Runtime } from '../index.ts';
import { CorralError } from '../sys/errors.ts';
import { failureLine, pairs, parseMountFlag, parsePublishFlag, parseTmpfsFlag, parseVolumeFlag, usageError } from './parse.ts';
import { pullPolicy } from '../container/pull-policy.ts';
import { attachTerminal, stdioSpec, type TerminalFlags } from './terminal.ts';
import { ended } from '../container/attach.ts';
import { parseRunArgs, runEnvironment, runExtraHosts, runLimits, runUser } from './run-options.ts';
import { useCompileCache } from './compile-cache.ts';

const USAGE = `usage: corral run [options] IMAGE [COMMAND [ARG...]] | corral run [options] [--rootfs DIR] -- COMMAND [ARG...]
       corral commit [options] IMAGE NEWREF [COMMAND...]   (run, then store the changes as NEWREF)
       corral build [-t TAG] [-f FILE] [--build-arg K=V] [--target STAGE] [--no-cache] CONTEXT
       corral run -d [-i] [-t] [--name NAME] [--restart POLICY] [options] ...   (detached: prints the id)
       corral ps [-a] [-q] [--format json] | logs [-f] [--tail N] [--since T] [-t] CONTAINER
       corral exec [-it] [-e] [-w] [-u] CONTAINER COMMAND... | inspect CONTAINER... | stats [--no-stream]
       corral attach [--no-stdin] [--detach-keys KEYS] [--sig-proxy BOOL] CONTAINER
       corral start [-a [-i]]|stop [-t S]|restart [-t S]|kill [-s SIG]|rm [-f]|wait|pause|unpause CONTAINER... | rename CONTAINER NAME
       corral image import|export|ls|inspect|tag|rm|gc|du ...   (corral images, corral rmi REF)
       corral pull|push|login|logout ...                       (registries: corral pull --help)
       corral volume create|ls|inspect|rm|prune ...
       corral network create|ls|inspect|rm|prune ...

Runs COMMAND (or the IMAGE's own command) in a new container (own PID, mount, UTS, IPC, network and cgroup namespaces; a user
namespace when not root). Without --rootfs the container sees the host root read-only, with its own
/proc, /dev and an empty writable /tmp. The exit code is the command's (128+N for signal N).

options:
  --rootfs DIR            root directory of the container
  -e, --env KEY[=VALUE]   set an environment variable; a bare KEY passes this shell's on (repeatable)
      --env-file FILE     KEY=VALUE (or KEY) lines, # comments (repeatable)
      --entrypoint CMD    replaces the image's Entrypoint (and its Cmd); '' clears it
  -w, --cwd DIR           working directory inside the container
  -u, --user U[:G]        run as this user: ids or names (of the image's or rootfs's /etc/passwd)
  -h, --hostname NAME     host name inside the container (also its own /etc/hostname and /etc/hosts)
      --add-host NAME:IP  another line of the container's /etc/hosts (repeatable; NAME=IP, [IPv6] too;
                          IP host-gateway: the host as the container reaches it)
      --dns IP            nameserver of the container's /etc/resolv.conf, replacing the host's (repeatable)
      --dns-search DOMAIN search domain of its resolv.conf (repeatable)
      --dns-option OPT    resolver option of its resolv.conf, e.g. ndots:2 (repeatable)
      --network MODE      none (default: own namespace with lo), host, bridge or a network's name
      --network-alias N   another name the container resolves by on its network (repeatable)
  -p, --publish [IP:][HOST:]CONTAINER[/udp]  publish a port (default IP 127.0.0.1; no --network: bridge)
      --id ID             container id
  -l, --label KEY=VALUE   label (repeatable)
      --cap-add CAP       add a capability (repeatable; 'ALL' for all)
      --cap-drop CAP      drop a capability (repeatable)
      --memory SIZE       memory limit (512m, 1g; needs cgroup v2 controllers)
      --cpus N            CPU limit (1.5)
      --pids-limit N      most processes at once
      --timeout MS        kill the container after MS milliseconds (exit code 124)
  -v, --volume SRC:DST[:ro]  bind a host path (absolute SRC) or mount a named volume
      --mount SPEC        type=bind|tmpfs|volume,source=…,target=…[,readonly][,size=…]
      --tmpfs DST[:OPTS]  a tmpfs at DST (OPTS: size=64m,mode=1777)
      --read-only         the root filesystem read-only
      --rootfs-writable M overlay (default: writes go to a discarded layer) or direct
      --root DIR          where volumes, container layers and detached containers live
  --pull POLICY           pull IMAGE: missing (default), always, never
  -d, --detach            run under a supervisor of its own, outliving this command; print the id
      --name NAME         (detached) a name unique in the root
      --restart POLICY    (detached) no, on-failure[:N], always or unless-stopped
      --rm                (detached) removed once it ends, by its supervisor (attached ones always are)
  -i, --interactive       keep stdin connected (with -t: our terminal in raw mode, typed keys go in)
  -t, --tty               a terminal for the container (its own /dev/pts), sized like ours
      --init              an init as PID 1: forwards signals, reaps zombies
      --sig-proxy BOOL    forward SIGINT, SIGTERM, SIGHUP to the container (default true)
      --stop-timeout S    seconds between SIGTERM and SIGKILL when corral stops it (default 10)
  -m, --message TEXT      (commit) recorded in the new image's history
      --help              this text
      --version           corral's version

Options come before IMAGE; what follows IMAGE is the command with its own options.

exit codes: 125 corral failed, 126 command not executable, 127 command not found.`;

/** Exit codes for failures of corral itself, as docker uses them. */
const EXIT = { failed: 125, notExecutable: 126, notFound: 127, timedOut: 124 } as const;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** The runtime of --root, with the library imported now (outside runCommand: tsc leaves the
 * extension of an import() inside a function with `await using` unrewritten). */
async function runtimeFor(root: string | undefined): Promise<Runtime> {
  return (await import('./runtime-option.ts')).cliRuntime(root);
}

/** `corral run` and `corral commit`: options, then IMAGE (and for commit NEWREF) before '--',
 * the command after it. Runs the container with inherited stdio and forwards signals; commit then
 * stores the container's changes as NEWREF. */
async function runCommand(args: string[], commit: boolean): Promise<number> {
  const what = commit ? 'commit' : 'run';
  const { values, positionals, command } = parseRunArgs(args, {
    message: { type: 'string', short: 'm' },
    rootfs: { type: 'string' },
    env: { type: 'string', short: 'e', multiple: true },
    'env-file': { type: 'string', multiple: true },
    entrypoint: { type: 'string' },
    cwd: { type: 'string', short: 'w' },
    user: { type: 'string', short: 'u' },
    hostname: { type: 'string', short: 'h' },
    'add-host': { type: 'string', multiple: true },
    dns: { type: 'string', multiple: true },
    'dns-search': { type: 'string', multiple: true },
    'dns-option': { type: 'string', multiple: true },
    network: { type: 'string' },
    'network-alias': { type: 'string', multiple: true },
    publish: { type: 'string', short: 'p', multiple: true },
    id: { type: 'string' },
    label: { type: 'string', short: 'l', multiple: true },
    'cap-add': { type: 'string', multiple: true },
    'cap-drop': { type: 'string', multiple: true },
    memory: { type: 'string' },
    cpus: { type: 'string' },
    'pids-limit': { type: 'string' },
    timeout: { type: 'string' },
    volume: { type: 'string', short: 'v', multiple: true },
    mount: { type: 'string', multiple: true },
    tmpfs: { type: 'string', multiple: true },
    'read-only': { type: 'boolean' },
    'rootfs-writable': { type: 'string' },
    root: { type: 'string' },
    interactive: { type: 'boolean', short: 'i' },
    tty: { type: 'boolean', short: 't' },
    init: { type: 'boolean' },
    'sig-proxy': { type: 'string' },
    'stop-timeout': { type: 'string' },
    detach: { type: 'boolean', short: 'd' },
    name: { type: 'string' },
    restart: { type: 'string' },
    rm: { type: 'boolean' },
    pull: { type: 'string' },
    // -h is --hostname, as in docker run.
    help: { type: 'boolean' },
  }, commit ? 2 : 1, what);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [image, newRef] = positionals;
  if (commit && !newRef) throw usageError('corral commit needs IMAGE and NEWREF (see corral commit --help)');
  if (!image && command.length === 0 && values.entrypoint === undefined) throw usageError(`corral ${what} needs an IMAGE, or --rootfs DIR and a command (see corral ${what} --help)`);
  const stopTimeout = values['stop-timeout'] === undefined ? 10 : Number(values['stop-timeout']);
  if (!(stopTimeout >= 0)) throw usageError(`--stop-timeout must be seconds, got '${values['stop-timeout']}'`);
  const sigProxy = values['sig-proxy'] ?? 'true';
  if (sigProxy !== 'true' && sigProxy !== 'false') throw usageError(`--sig-proxy must be true or false, got '${sigProxy}'`);
  const flags: TerminalFlags = { interactive: values.interactive ?? false, tty: values.tty ?? false, sigProxy: sigProxy === 'true', stopTimeout: stopTimeout * 1000 };
  const spec: ContainerSpec = stdioSpec(flags);
  if (values.init) spec.init = true;
  if (command.length) spec.command = command;
  if (image) spec.image = image;
  if (values.pull !== undefined) spec.pull = pullPolicy(values.pull);
  if (values.rootfs !== undefined) spec.rootfs = values.rootfs;
  if (values.env || values['env-file']) spec.env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...runEnvironment(values.env, values['env-file'], process.env) };
  if (values.entrypoint !== undefined) spec.entrypoint = values.entrypoint === '' ? [] : [values.entrypoint];
  const limits = runLimits(values);
  if (limits) spec.limits = limits;
  if (values.cwd !== undefined) spec.cwd = values.cwd;
  if (values.user !== undefined) spec.user = runUser(values.user);
  if (values.hostname !== undefined) spec.hostname = values.hostname;
  if (values['add-host']) spec.extraHosts = runExtraHosts(values['add-host']);
  if (values.dns) spec.dns = values.dns;
  if (values['dns-search']) spec.dnsSearch = values['dns-search'];
  if (values['dns-option']) spec.dnsOptions = values['dns-option'];
  if (values.network !== undefined) spec.network = values.network;
  if (values['network-alias']) spec.network = { name: values.network ?? 'bridge', aliases: values['network-alias'] };
  if (values.publish) spec.ports = values.publish.map(parsePublishFlag);
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

  const runtime = await runtimeFor(values.root);
  if (values.detach) {
    if (commit || timeout !== undefined) throw usageError(`--detach does not go with ${commit ? 'commit' : '--timeout'} (see corral --help)`);
    delete spec.stdio;
    const detached = await runtime.run({ ...spec, detached: true, ...(flags.interactive ? { interactive: true } : {}), ...(values.name === undefined ? {} : { name: values.name }), ...(values.restart === undefined ? {} : { restart: values.restart }), ...(values.rm ? { autoRemove: true } : {}) });
    console.log(detached.id);
    return 0;
  }
  if (values.name !== undefined || values.restart !== undefined) throw usageError('--name and --restart need --detach (see corral --help)');
  await using container = await runtime.create(spec);
  let timedOut = false;
  const timer = timeout === undefined ? null : setTimeout(() => {
    timedOut = true;
    if (container.status === 'running') container.kill('SIGKILL');
  }, timeout);
  const detach = attachTerminal(container, flags);
  let exit;
  try {
    await container.start();
    exit = await container.wait();
    await ended(container.terminal);
  } finally {
    detach();
    if (timer) clearTimeout(timer);
  }
  if (timedOut) return EXIT.timedOut;
  const code = exit.exitCode ?? 128 + (constants.signals[exit.signal!] ?? 0);
  if (commit) {
    if (code !== 0) throw new CorralError(`not committed: the command exited with ${code}`, { code: 'ERR_COMMIT_ABORTED' });
    const { manifestDigest } = await container.commit({ ref: newRef!, ...(values.message ? { message: values.message } : {}) });
    console.log(manifestDigest);
  }
  return code;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return runCommand(rest, false);
    case 'commit':
      return runCommand(rest, true);
    case 'build':
      return (await import('./build-command.ts')).buildCommand(rest);
    case 'image':
      return (await import('./image-command.ts')).imageCommand(rest);
    case 'images':
      return (await import('./image-command.ts')).imageCommand(['ls', ...rest]);
    case 'rmi':
      return (await import('./image-command.ts')).imageCommand(['rm', ...rest]);
    case 'volume':
      return (await import('./volume-command.ts')).volumeCommand(rest);
    case 'ps':
      return (await import('./ps-command.ts')).psCommand(rest);
    case 'logs':
      return (await import('./logs-command.ts')).logsCommand(rest);
    case 'exec':
      return (await import('./exec-command.ts')).execCommand(rest);
    case 'attach':
      return (await import('./attach-command.ts')).attachCommand(rest);
    case 'inspect':
      return (await import('./inspect-command.ts')).inspectCommand(rest);
    case 'stats':
      return (await import('./stats-command.ts')).statsCommand(rest);
    case 'network':
      return (await import('./network-command.ts')).networkCommand(rest);
    case 'pull':
    case 'push':
    case 'login':
    case 'logout':
      return (await import('./registry-command.ts')).registryCommand(command, rest);
    case '--version':
      console.log(`corral ${version()}`);
      return 0;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      console.log(USAGE);
      return 0;
    default: {
      const lifecycle = await import('./lifecycle-command.ts');
      if (lifecycle.LIFECYCLE_COMMANDS.has(command)) return lifecycle.lifecycleCommand(command, rest);
      throw usageError(`unknown command '${command}' (see corral --help)`);
    }
  }
}

useCompileCache();
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as CorralError;
    process.stderr.write(`corral: ${failureLine(e, process.argv[2])}\n`);
    // As docker: 127 when the command is not there, 126 when it cannot be executed, else 125.
    const execFailed = e.syscall === 'execve';
    process.exitCode = execFailed && e.code === 'ENOENT' ? EXIT.notFound
      : execFailed && (e.code === 'EACCES' || e.code === 'ENOEXEC' || e.code === 'EPERM') ? EXIT.notExecutable
        : EXIT.failed;
  },
);
