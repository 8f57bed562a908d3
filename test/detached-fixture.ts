import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime, type LogEntry } from '../lib/index.ts';
import { makeBusyboxRoot, rmRoot } from './helpers.ts';

/** What the detached-container suites work on; set by the hooks, so read it inside a test or hook
 * (`fx.rootfs`), never destructured when the suite is defined (it would be undefined then). */
export interface DetachedFixture {
  /** A busybox root for the whole suite. */
  readonly rootfs: string;
  /** A fresh runtime root for each test. */
  readonly store: string;
  /** A Runtime on that root. */
  readonly runtime: Runtime;
}

/** The hooks of a suite of detached containers: a busybox root for the suite, a fresh runtime
 * root and Runtime for each test, and after each test every container of the root removed (from
 * any process: a detached one outlives the test), its networks, and the root deleted. */
export function detachedFixture(prefix: string): DetachedFixture {
  let rootfs: string | undefined;
  let store: string | undefined;
  let runtime: Runtime | undefined;
  before(() => {
    rootfs = makeBusyboxRoot();
  });
  after(() => rmRoot(rootfs!));
  beforeEach(() => {
    store = mkdtempSync(join(tmpdir(), prefix));
    runtime = new Runtime({ root: store });
  });
  afterEach(async () => {
    for (const c of runtime!.list({ all: true, onError: () => {} })) await c.remove({ force: true });
    await runtime!.networks.prune();
    rmRoot(store!);
  });
  const set = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the detached fixture's ${what} is set by its hooks: read it inside a test`);
    return value;
  };
  return {
    get rootfs() {
      return set(rootfs, 'rootfs');
    },
    get store() {
      return set(store, 'store');
    },
    get runtime() {
      return set(runtime, 'runtime');
    },
  };
}

/** Every entry of a log, read to its end. */
export async function collect(entries: AsyncIterable<LogEntry>): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of entries) out.push(e);
  return out;
}

const creator = fileURLToPath(new URL('./fixtures/detached-creator.ts', import.meta.url));

/** Starts a Node process that runs a detached container (`/bin/sh -c script`, with a volume at
 * /data and more spec keys if given) and waits; resolves with it, the id and the pid. */
export async function createIn(store: string, rootfs: string, name: string, script: string, options: { volume?: string; spec?: Record<string, unknown> } = {}): Promise<{ proc: ChildProcess; id: string; pid: number }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', creator, store, rootfs, name, script, '', options.volume ?? '', JSON.stringify(options.spec ?? {})], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) resolve(out.trim());
    });
    proc.on('exit', (code) => reject(new Error(`creator exited with ${code} before printing`)));
  });
  const [id, pid] = line.split(' ');
  return { proc, id: id!, pid: Number(pid) };
}

/** SIGKILL of a process; resolves once it has exited. */
export async function sigkill(proc: ChildProcess): Promise<void> {
  const gone = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await gone;
}
