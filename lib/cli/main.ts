#!/usr/bin/env node
// The corral command: `corral run [options] -- COMMAND...` runs a container with the terminal's stdio
// (or a terminal of its own with -t) and exits with the container's exit code.
import { readFileSync } from 'node:fs';
// The library and each command's module are imported when the command runs: --version, --help
// and usage errors load none of them, and a command only what it uses.
import type { CorralError } from '../sys/errors.ts';
import { failureLine, usageError } from './parse.ts';
import { useCompileCache } from './compile-cache.ts';
import { EXIT, USAGE } from './usage.ts';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return (await import('./run-command.ts')).runCommand(rest, false);
    case 'commit':
      return (await import('./run-command.ts')).runCommand(rest, true);
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
