// corral run and corral commit: the container with the terminal's stdio (or a terminal of its own
// with -t), exiting with its exit code. Imported by main.ts when one of them runs, so other
// commands do not load the terminal and attach code (and the native library it binds).
import { constants } from 'node:os';
import type { ContainerSpec, Runtime } from '../index.ts';
import { CorralError } from '../sys/errors.ts';
import { pairs, parseMountFlag, parsePublishFlag, parseTmpfsFlag, parseVolumeFlag, usageError } from './parse.ts';
import { pullPolicy } from '../container/pull-policy.ts';
import { attachTerminal, stdioSpec, type TerminalFlags } from './terminal.ts';
import { ended } from '../container/attach.ts';
import { parseRunArgs, runEnvironment, runExtraHosts, runLimits, runUser } from './run-options.ts';
import { EXIT, USAGE } from './usage.ts';

/** The runtime of --root, with the library imported now (outside runCommand: tsc leaves the
 * extension of an import() inside a function with `await using` unrewritten). */
async function runtimeFor(root: string | undefined): Promise<Runtime> {
  return (await import('./runtime-option.ts')).cliRuntime(root);
}

/** `corral run` and `corral commit`: options, then IMAGE (and for commit NEWREF) before '--',
 * the command after it. Runs the container with inherited stdio and forwards signals; commit then
 * stores the container's changes as NEWREF. */
export async function runCommand(args: string[], commit: boolean): Promise<number> {
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

