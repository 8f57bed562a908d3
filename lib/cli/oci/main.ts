#!/usr/bin/env node
// corral-oci: runc's command line over OCI bundles (config.json + rootfs), for containerd's shim,
// conmon and other callers of an OCI runtime binary.
import { readFileSync } from 'node:fs';
import { CorralError } from '../../sys/errors.ts';
import { OCI_VERSION, OciStore } from '../../container/oci-container.ts';
import { logError, type OciLog } from './log.ts';

type Command = (store: OciStore, args: string[], log: OciLog) => number | Promise<number>;

/** Each command's module and function, loaded when it runs: a start-up of Node pays only for the
 * modules its command needs (state, start, kill and delete no spec compiler), and containerd's
 * shim starts us once per call. Literal imports, so that dist/corral-oci.js (one file, see
 * bindings/bundle.mjs) holds them all. */
const COMMANDS: Record<string, [load: () => Promise<object>, exported: string]> = {
  create: [() => import('./create.ts'), 'createCommand'], start: [() => import('./start.ts'), 'startCommand'], state: [() => import('./state.ts'), 'stateCommand'],
  kill: [() => import('./kill.ts'), 'killCommand'], delete: [() => import('./delete.ts'), 'deleteCommand'], run: [() => import('./run.ts'), 'runCommand'],
  exec: [() => import('./exec.ts'), 'execCommand'], ps: [() => import('./ps.ts'), 'psCommand'], pause: [() => import('./pause.ts'), 'pauseCommand'],
  resume: [() => import('./pause.ts'), 'resumeCommand'], list: [() => import('./list.ts'), 'listCommand'], update: [() => import('./update.ts'), 'updateCommand'],
  events: [() => import('./events.ts'), 'eventsCommand'], spec: [() => import('./spec.ts'), 'specCommand'], features: [() => import('./features.ts'), 'featuresCommand'],
};
const USAGE = `usage: corral-oci [--root DIR] [--log FILE] [--log-format text|json] COMMAND [ARGS...]
commands: ${Object.keys(COMMANDS).join(', ')}; --version`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  // Three lines, as runc prints them (containerd's go-runc parses exactly that).
  return `corral-oci version ${pkg.version}\ncommit: corral ${pkg.version}\nspec: ${OCI_VERSION}\n`;
}

/** Splits the global flags (before the command) from the command and its arguments. */
function globals(argv: string[]): { root: string; log: OciLog; command: string | undefined; args: string[] } {
  let root = '/run/corral-oci';
  const log: OciLog = { file: null, format: 'text' };
  let i = 0;
  for (; i < argv.length && argv[i]!.startsWith('-'); i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = (): string => inline ?? argv[++i] ?? '';
    if (flag === '--root') root = value();
    else if (flag === '--log') log.file = value();
    else if (flag === '--log-format') log.format = value() === 'json' ? 'json' : 'text';
    else if (flag === '--systemd-cgroup') throw new CorralError('--systemd-cgroup is not supported: corral-oci manages cgroupfs paths only', { code: 'ERR_INVALID_ARG_VALUE' });
    else if (flag === '--version' || flag === '-v') return { root, log, command: '--version', args: [] };
    else if (flag === '--debug') continue;
    else if (flag === '--rootless') {
      const mode = inline ?? (['true', 'false', 'auto'].includes(argv[i + 1] ?? '') ? argv[++i] : 'true');
      if (mode === 'true') throw new CorralError(`--rootless: corral-oci runs containers as root only for now`, { code: 'ERR_INVALID_ARG_VALUE' });
    }
    else if (flag === '--help' || flag === '-h') return { root, log, command: '--help', args: [] };
    else throw new CorralError(`unknown global flag ${flag}`, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  return { root, log, command: argv[i], args: argv.slice(i + 1) };
}

async function main(argv: string[]): Promise<number> {
  let log: OciLog = { file: null, format: 'text' };
  try {
    const parsed = globals(argv);
    log = parsed.log;
    if (parsed.command === '--version') return process.stdout.write(version()), 0;
    if (parsed.command === '--help' || parsed.command === undefined) return process.stdout.write(`${USAGE}\n`), parsed.command ? 0 : 1;
    const entry = COMMANDS[parsed.command];
    if (!entry) throw new CorralError(`unknown command "${parsed.command}"`, { code: 'ERR_INVALID_ARG_VALUE' });
    const command = ((await entry[0]()) as Record<string, Command>)[entry[1]]!;
    return await command(new OciStore(parsed.root), parsed.args, log);
  } catch (e) {
    logError(log, e instanceof Error ? e.message : String(e));
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
