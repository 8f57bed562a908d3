import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.ts';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';
import type { LogEntry } from '../../lib/index.ts';

async function text(stream: NodeJS.ReadableStream): Promise<string> {
  let out = '';
  for await (const chunk of stream) out += chunk.toString();
  return out;
}

async function collect(entries: AsyncIterable<LogEntry>): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of entries) out.push(e);
  return out;
}

describe(`a stopped detached container started again, and logs as a stream (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(30_000);
  let rootfs: string;
  let store: string;
  let runtime: Runtime;
  before(() => {
    rootfs = makeBusyboxRoot();
  });
  after(() => rmRoot(rootfs));
  beforeEach(() => {
    store = mkdtempSync(join(tmpdir(), 'corral-restart-'));
    runtime = new Runtime({ root: store });
  });
  afterEach(async () => {
    for (const c of runtime.list({ all: true, onError: () => {} })) await c.remove({ force: true });
    rmRoot(store);
  });

  it('start() of an exited detached container runs it again, from this and from another process', async () => {
    const c = await runtime.run({ detached: true, command: ['/bin/sh', '-c', 'echo run; exit 3'], rootfs });
    assert.deepEqual(await c.wait(), { exitCode: 3, signal: null });
    assert.equal(c.status, 'stopped');
    await c.start();
    assert.deepEqual(await c.wait(), { exitCode: 3, signal: null });
    assert.equal(c.status, 'stopped');
    const other = new Runtime({ root: store }).find(c.id);
    assert.equal(other.status, 'stopped');
    await other.start();
    assert.deepEqual(await other.wait(), { exitCode: 3, signal: null });
    assert.equal(await text(other.logsStream()), 'run\nrun\nrun\n');
  });

  it('a stopped container started again is running and can be stopped again', async () => {
    // As pid 1, sh ignores a SIGTERM that comes before its trap: wait for 'ready' each time.
    const c = await runtime.run({ detached: true, command: ['/bin/sh', '-c', "trap 'exit 9' TERM; echo ready; while true; do sleep 0.1; done"], rootfs });
    const ready = async (n: number): Promise<void> => {
      for (let i = 0; (await collect(c.logs())).filter((e) => e.log === 'ready\n').length < n; i++) {
        assert.ok(i < 100, `run ${n} never got ready`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await ready(1);
    assert.deepEqual(await c.stop({ timeout: 5000 }), { exitCode: 9, signal: null });
    await c.start();
    await ready(2);
    assert.equal(c.status, 'running');
    assert.deepEqual(await c.stop({ timeout: 5000 }), { exitCode: 9, signal: null });
  });

  it('an attached container cannot start again once stopped', async () => {
    const c = await runtime.create({ command: ['/bin/true'], rootfs });
    await c.start();
    await c.wait();
    await assert.rejects(c.start(), { code: 'ERR_CONTAINER_STATE', message: `container ${c.id} is stopped; start needs it created` });
    await c.remove();
  });

  it('logsStream() pipes the text, filtered by stream, and ends with a followed container', async () => {
    const c = await runtime.run({ detached: true, command: ['/bin/sh', '-c', 'echo out; echo err >&2; sleep 0.3; echo late'], rootfs });
    assert.equal(await text(c.logsStream({ follow: true, stderr: false })), 'out\nlate\n');
    assert.equal(await text(c.logsStream({ stdout: false })), 'err\n');
  });
});
