import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
 * any process: a detached one outlives the test) and the root deleted. */
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
