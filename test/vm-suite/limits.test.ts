// cgroup v2 limits, run by test/run.mjs inside a pure cgroup v2 kernel under qemu (test/vm/): the
// hosts here are hybrid, with memory, cpu, pids and io bound to cgroup v1.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, type Container, type ContainerSpec, type RunOptions } from '../../lib/index.ts';
import { availableControllers, findV2Mount } from '../../lib/cgroup/hierarchy.ts';
import { makeBusyboxRoot, rmRoot } from '../helpers.ts';

const sh = (script: string) => ['/bin/sh', '-c', script];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cgroupFile(c: Container, file: string): string {
  return readFileSync(`${c.cgroupPath}/${file}`, 'utf8').trim();
}

// The VM's root is an overlay itself, which overlayfs cannot take as an upper layer: the runtime
// keeps its layers on the VM's /tmp (a tmpfs).
const state = mkdtempSync(join(tmpdir(), 'corral-vm-state-'));
const runtime = new Runtime({ root: state });
const run = (spec: ContainerSpec, options?: RunOptions) => runtime.run(spec, options);
const create = (spec: ContainerSpec) => runtime.create(spec);

describe('cgroup v2 limits (pure cgroup v2 kernel)', () => {
  let root: string;
  after(() => rmSync(state, { recursive: true, force: true }));
  before(() => {
    const mount = findV2Mount();
    assert.ok(mount, 'no cgroup v2 hierarchy');
    const offered = availableControllers(mount);
    for (const c of ['memory', 'cpu', 'pids', 'io']) assert.ok(offered.has(c), `controller ${c} missing from ${mount}: this suite needs a pure cgroup v2 kernel`);
    root = makeBusyboxRoot();
  });
  after(() => rmRoot(root));

  it("OOM-kills a memory hog under memory: '32m' and reports oomKilled", async () => {
    const r = await run({ command: sh('x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived ${#x}'), rootfs: root, limits: { memory: '32m', memorySwap: 0 } });
    assert.equal(r.oomKilled, true);
    assert.equal(r.signal, 'SIGKILL');
    assert.doesNotMatch(r.stdout.toString(), /survived/);
    const fine = await run({ command: sh('x=$(head -c 1000000 /dev/zero | tr "\\0" a); echo ${#x}'), rootfs: root, limits: { memory: '32m' } });
    assert.equal(fine.oomKilled, false);
    assert.equal(fine.stdout.toString().trim(), '1000000');
  });

  it("emits 'oom' on a container", async () => {
    await using c = await create({ command: sh('x=$(head -c 200000000 /dev/zero | tr "\\0" a)'), rootfs: root, limits: { memory: '32m', memorySwap: 0 } });
    const oom = new Promise<void>((resolve) => c.once('oom', resolve));
    await c.start();
    await oom;
    await c.wait();
    assert.equal(c.oomKilled, true);
  });

  it('pids: 16 makes the 17th task fail to fork', async () => {
    await using c = await create({ command: ['sleep', '1000'], rootfs: root, limits: { pids: 16 } });
    await c.start();
    // Tasks: sleep (1) + this shell (1) + the background sleeps it manages to fork.
    const r = await c.exec(sh('i=0; while [ $i -lt 30 ]; do sleep 100 >/dev/null 2>&1 & i=$((i+1)); echo $i > /tmp/forks; done'));
    assert.notEqual(r.exitCode, 0, 'the shell should die when fork fails');
    assert.equal(readFileSync(`/proc/${c.pid}/root/tmp/forks`, 'utf8').trim(), '14');
    assert.equal(c.stats().pids!.limit, 16);
    assert.ok(Number(/max (\d+)/.exec(cgroupFile(c, 'pids.events'))![1]) > 0, 'no fork was refused');
  });

  it('cpus: 0.25 keeps a busy loop near a quarter of a CPU', async () => {
    await using c = await create({ command: sh('while :; do :; done'), rootfs: root, limits: { cpus: 0.25 } });
    await c.start();
    await sleep(300);
    const a = c.stats().cpu.usageUsec;
    const t0 = performance.now();
    await sleep(2000);
    const used = (c.stats().cpu.usageUsec - a) / 1000 / (performance.now() - t0);
    assert.ok(used > 0.15 && used < 0.35, `used ${used.toFixed(3)} of a CPU`);
    assert.ok(c.stats().cpu.throttledUsec! > 0);
    assert.equal(cgroupFile(c, 'cpu.max'), '25000 100000');
  });

  it('stats() numbers move', async () => {
    await using c = await create({ command: sh('x=$(head -c 5000000 /dev/zero | tr "\\0" a); while :; do :; done'), rootfs: root, limits: { memory: '64m', pids: 50 } });
    await c.start();
    await sleep(1500);
    const s = c.stats();
    assert.ok(s.memory!.current > 4_000_000, `memory.current ${s.memory!.current}`);
    assert.equal(s.memory!.limit, 64 * 1024 * 1024);
    assert.ok(s.memory!.peak === null || s.memory!.peak >= s.memory!.current);
    assert.ok(s.pids!.current >= 1);
    assert.ok(s.cpu.usageUsec > 0);
    assert.ok(s.io !== null);
  });

  it('update() changes the limits of a running container', async () => {
    await using c = await create({ command: ['sleep', '100'], rootfs: root, limits: { pids: 100 } });
    await c.start();
    c.update({ pids: 5, memory: '48m', cpus: 0.5 });
    assert.equal(c.stats().pids!.limit, 5);
    assert.equal(cgroupFile(c, 'memory.max'), String(48 * 1024 * 1024));
    assert.equal(cgroupFile(c, 'cpu.max'), '50000 100000');
    const r = await c.exec(sh('for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; echo done'));
    assert.match(r.stdout.toString(), /can't fork|Resource temporarily unavailable/);
    assert.throws(() => c.update({ memory: '1k' }), { code: 'ERR_INVALID_LIMITS' });
  });

  it('exec processes join the container group and its limits', async () => {
    await using c = await create({ command: ['sleep', '100'], rootfs: root, limits: { memory: '32m', memorySwap: 0 } });
    await c.start();
    const r = await c.exec(sh('x=$(head -c 200000000 /dev/zero | tr "\\0" a)'));
    assert.equal(r.oomKilled, true);
    assert.equal(c.status, 'running');
  });
});
