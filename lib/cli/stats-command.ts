import { parseArgs } from 'node:util';
import type { Container } from '../index.ts';
import { cliRuntime, ROOT_OPTION } from './runtime-option.ts';

const USAGE = `usage: corral stats [--no-stream] [--root DIR] [CONTAINER...]

Prints the resource usage of the given containers (default: every running one), again every second
until interrupted, or once with --no-stream.`;

const REFRESH_MS = 1000;

function row(c: Container): string {
  const s = c.stats();
  return [c.id, c.name ?? '-', `${(s.cpu.usageUsec / 1e6).toFixed(2)}s`, s.memory ? String(s.memory.current) : '-', s.pids ? String(s.pids.current) : '-'].join('\t');
}

/** `corral stats`. */
export async function statsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { 'no-stream': { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, ...ROOT_OPTION } });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const runtime = cliRuntime(values.root);
  const containers = positionals.length ? positionals.map((id) => runtime.find(id)) : runtime.list();
  const header = ['CONTAINER ID', 'NAME', 'CPU', 'MEMORY BYTES', 'PIDS'].join('\t');
  const print = (): void => console.log([header, ...containers.filter((c) => c.status === 'running' || c.status === 'paused').map(row)].join('\n'));
  print();
  if (values['no-stream']) return 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(print, REFRESH_MS);
    process.once('SIGINT', () => {
      clearInterval(timer);
      resolve();
    });
  });
  return 0;
}
