import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorralError, Runtime, type Container } from '../../lib/index.ts';
import { startTime } from '../../lib/sys/process-tag.ts';
import { alive, eventually, makeBusyboxRoot, openFds, rmRoot, rootless } from '../helpers.ts';
import { collect, createIn, detachedFixture, sigkill } from '../detached-fixture.ts';

const renamer = fileURLToPath(new URL('../fixtures/detached-renamer.ts', import.meta.url));
const cli = fileURLToPath(new URL('../../lib/cli/main.ts', import.meta.url));

/** Runs the corral command (from the sources) and returns its exit status and output. */
function corral(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function exitOf(proc: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => proc.once('exit', resolve));
}

describe(`detached containers (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(30_000);
  const fx = detachedFixture('corral-detached-');

  it('survives SIGKILL of the creating process; another takes it over: list, logs, exec, stop, exit code', async () => {
    const { proc, id, pid } = await createIn(fx.store, fx.rootfs, 'survivor', "trap 'echo bye; exit 7' TERM; echo hello; echo oops >&2; while true; do sleep 0.1; done");
    await sigkill(proc);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(alive(pid), 'the container outlived its creator');
    const listed = fx.runtime.list();
    assert.deepEqual(listed.map((c) => [c.id, c.name, c.status]), [[id, 'survivor', 'running']]);
    const c = fx.runtime.find('survivor');
    assert.equal(c.id, id);
    assert.equal(fx.runtime.find(id.slice(0, 4)).id, id, 'an id prefix resolves');
    const logs = await collect(c.logs());
    assert.deepEqual(logs.map((e) => [e.stream, e.log]), [['stdout', 'hello\n'], ['stderr', 'oops\n']]);
    assert.ok(logs.every((e) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/.test(e.time)));
    const r = await c.exec(['/bin/sh', '-c', 'echo in $(hostname)']);
    assert.equal(r.exitCode, 0);
    assert.match(r.stdout.toString(), /^in /);
    if (c.cgroupPath) assert.ok(c.stats().cpu.usageUsec >= 0);
    assert.deepEqual(await c.stop({ timeout: 5000 }), { exitCode: 7, signal: null });
    assert.equal(c.status, 'stopped');
    assert.equal(fx.runtime.find(id).status, 'stopped');
    assert.deepEqual(fx.runtime.find(id).exitInfo, { exitCode: 7, signal: null });
    assert.deepEqual((await collect(c.logs({ tail: 1 }))).map((e) => e.log), ['bye\n']);
    await c.remove();
    assert.equal(fx.runtime.get(id), undefined);
    assert.throws(() => fx.runtime.find(id), (e: CorralError) => e.code === 'ERR_CONTAINER_NOT_FOUND');
    assert.deepEqual(readdirSync(join(fx.store, 'containers')).filter((n) => !n.startsWith('.')), [], 'nothing of it is left');
  });

  it("the sweepers of a later process leave a detached container's layer, cgroup and volume marker alone", async () => {
    const { proc, id } = await createIn(fx.store, fx.rootfs, 'kept', 'echo x > /data/f; while true; do sleep 0.1; done', { volume: 'data' });
    await sigkill(proc);
    const c = fx.runtime.find(id);
    // The layer lives under the supervisor's tag, not the dead creator's.
    const supervisor = c.inspect().supervision!.supervisorPid;
    const layerDir = join(fx.store, 'containers', readdirSync(join(fx.store, 'containers')).find((n) => n.startsWith(`proc-${supervisor}-`))!);
    // A new runtime's first container sweeps what dead processes left: the creator is dead now.
    const later = new Runtime({ root: fx.store });
    assert.equal((await later.run({ command: ['true'], rootfs: fx.rootfs })).exitCode, 0);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(existsSync(join(layerDir, id, 'upper')), 'the layer is kept');
    if (c.cgroupPath) assert.ok(existsSync(c.cgroupPath), 'the cgroup is kept');
    await assert.rejects(later.volumes.remove('data'), (e: CorralError) => e.code === 'ERR_VOLUME_IN_USE');
    assert.equal((await c.exec(['cat', '/data/f'])).stdout.toString(), 'x\n');
    await c.remove({ force: true });
    await later.volumes.remove('data');
  });

  it('reports the real exit code of a container that exited while nobody watched', async () => {
    const { proc, id } = await createIn(fx.store, fx.rootfs, 'quick', 'sleep 0.3; exit 42');
    await sigkill(proc);
    const c = fx.runtime.find(id);
    assert.deepEqual(await c.wait(), { exitCode: 42, signal: null });
    // A process that comes later still sees it, stopped with its code.
    const later = new Runtime({ root: fx.store }).find('quick');
    assert.equal(later.status, 'stopped');
    assert.deepEqual(later.exitInfo, { exitCode: 42, signal: null });
    assert.deepEqual(fx.runtime.list().map((x) => x.id), [], 'ps without all lists running ones only');
    assert.deepEqual(fx.runtime.list({ all: true }).map((x) => x.id), [id]);
  });

  it('a killed supervisor takes its container with it, the state says so, and nothing leaks', async () => {
    const c = await fx.runtime.run({ detached: true, command: ['sleep', '1000'], rootfs: fx.rootfs });
    const state = JSON.parse(readFileSync(join(fx.store, 'containers', c.id, 'state.json'), 'utf8'));
    const supervisor: number = state.supervisor.pid;
    assert.ok(alive(supervisor) && alive(c.pid));
    process.kill(supervisor, 'SIGKILL');
    assert.ok(await eventually(() => !alive(c.pid)), 'the container died with its supervisor');
    assert.deepEqual(await c.wait(), { exitCode: null, signal: 'SIGKILL' });
    const seen = new Runtime({ root: fx.store }).find(c.id);
    assert.equal(seen.status, 'stopped');
    assert.deepEqual(seen.exitInfo, { exitCode: null, signal: 'SIGKILL' });
    await seen.remove();
    assert.deepEqual(readdirSync(join(fx.store, 'containers')).filter((n) => !n.startsWith('.')), []);
    if (c.cgroupPath) {
      assert.ok(!existsSync(c.cgroupPath));
      assert.ok(!existsSync(dirname(c.cgroupPath)), "the supervisor's group is gone too");
    }
  });

  it('a reused pid does not confuse get(): a state naming another process is not that process', async () => {
    const stranger = spawn('sleep', ['100']);
    try {
      const id = 'fake0001';
      const dir = join(fx.store, 'containers', id);
      mkdirSync(dir, { recursive: true });
      const spec = { command: ['true'], rootfs: fx.rootfs, id };
      // The supervisor is our stranger with another start time: it is not alive as that supervisor.
      writeFileSync(join(dir, 'state.json'), JSON.stringify({ version: 1, id, name: null, createdAt: new Date().toISOString(), spec, image: null, supervisor: { pid: stranger.pid, startTime: '1' }, host: { cgroup: null, layer: null, mounts: [], owner: `proc-${stranger.pid}-1` }, options: {} }));
      writeFileSync(join(dir, 'process.json'), JSON.stringify({ status: 'running', pid: stranger.pid, startTime: '1', startedAt: null, finishedAt: null, exitCode: null, signal: null, restartCount: 0, startError: null }));
      const c = fx.runtime.find(id);
      assert.equal(c.status, 'stopped');
      assert.throws(() => c.kill('SIGKILL'), (e: CorralError) => e.code === 'ERR_CONTAINER_STATE');
      // The supervisor really is the stranger now, but the container's pid names a process that
      // started at another time: signals reach nobody.
      const real = startTime(stranger.pid!)!;
      const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
      state.supervisor.startTime = real;
      writeFileSync(join(dir, 'state.json'), JSON.stringify(state));
      const d = fx.runtime.find(id);
      assert.equal(d.status, 'running');
      d.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(alive(stranger.pid!), 'the stranger was not signalled');
      await assert.rejects(d.exec(['true']), (e: CorralError) => e.code === 'ERR_CONTAINER_STATE');
      writeFileSync(join(dir, 'process.json'), JSON.stringify({ status: 'exited', pid: stranger.pid, startTime: '1', startedAt: null, finishedAt: null, exitCode: 0, signal: null, restartCount: 0, startError: null }));
    } finally {
      stranger.kill('SIGKILL');
    }
  });

  it('a truncated or garbage state file is reported by name and does not stop the listing', async () => {
    const good = await fx.runtime.run({ detached: true, name: 'good', command: ['sleep', '1000'], rootfs: fx.rootfs });
    for (const [id, text] of [['truncated1', '{"version":1,"id":"trunc'], ['garbage1', '\x00\x01 not json']] as const) {
      mkdirSync(join(fx.store, 'containers', id));
      writeFileSync(join(fx.store, 'containers', id, 'state.json'), text);
    }
    const errors: CorralError[] = [];
    const listed = new Runtime({ root: fx.store }).list({ all: true, onError: (e) => errors.push(e) });
    assert.deepEqual(listed.map((c) => c.id), [good.id]);
    assert.deepEqual(errors.map((e) => [e.code, e.path]).sort(), [
      ['ERR_STATE_CORRUPT', join(fx.store, 'containers', 'garbage1', 'state.json')],
      ['ERR_STATE_CORRUPT', join(fx.store, 'containers', 'truncated1', 'state.json')],
    ]);
    assert.throws(() => fx.runtime.find('garbage1'), (e: CorralError) => e.code === 'ERR_STATE_CORRUPT' && e.message.includes('garbage1/state.json'));
    // corral ps lists from the state files without a Runtime (lib/container/detached-list.ts): the same.
    const ps = corral('ps', '-a', '--root', fx.store);
    assert.equal(ps.status, 0, ps.stderr);
    assert.match(ps.stdout, new RegExp(`^CONTAINER ID\tNAME\tSTATUS\tCREATED\tCOMMAND\n${good.id}\tgood\trunning\t\\S+\tsleep 1000\n$`));
    for (const id of ['truncated1', 'garbage1']) assert.match(ps.stderr, new RegExp(`^corral: .*${id}/state\\.json`, 'm'));
    for (const id of ['truncated1', 'garbage1']) rmRoot(join(fx.store, 'containers', id));
  });

  it('names are unique per root and resolve from any process; ambiguous prefixes are refused', async () => {
    const a = await fx.runtime.run({ detached: true, name: 'same', id: 'abc1', command: ['sleep', '1000'], rootfs: fx.rootfs });
    await assert.rejects(new Runtime({ root: fx.store }).run({ detached: true, name: 'same', command: ['true'], rootfs: fx.rootfs }), (e: CorralError) => e.code === 'ERR_CONTAINER_EXISTS');
    await fx.runtime.run({ detached: true, id: 'abc2', command: ['sleep', '1000'], rootfs: fx.rootfs });
    assert.throws(() => fx.runtime.find('abc'), (e: CorralError) => e.code === 'ERR_CONTAINER_AMBIGUOUS');
    assert.throws(() => fx.runtime.find('nosuch'), (e: CorralError) => e.code === 'ERR_CONTAINER_NOT_FOUND');
    assert.equal(new Runtime({ root: fx.store }).find('same').id, a.id);
    await assert.rejects(fx.runtime.create({ name: 'x', command: ['true'], rootfs: fx.rootfs }), (e: CorralError) => e.code === 'ERR_INVALID_SPEC');
  });

  it('concurrent renames from two processes while a third execs and stops never corrupt the state', async () => {
    const c = await fx.runtime.run({ detached: true, name: 'start', command: ['sleep', '1000'], rootfs: fx.rootfs });
    const procs = ['a', 'b'].map((prefix) => spawn(process.execPath, ['--import', 'tsx', renamer, fx.store, c.id, prefix, '40'], { stdio: 'inherit' }));
    const done = procs.map(exitOf);
    for (let i = 0; i < 5; i++) assert.equal((await c.exec(['true'])).exitCode, 0);
    assert.deepEqual(await Promise.all(done), [0, 0]);
    await c.stop({ timeout: 100 });
    const state = JSON.parse(readFileSync(join(fx.store, 'containers', c.id, 'state.json'), 'utf8'));
    assert.ok(['a39', 'b39'].includes(state.name), `final name ${state.name}`);
    const names = readdirSync(join(fx.store, 'containers', '.names')).filter((n) => readFileSync(join(fx.store, 'containers', '.names', n), 'utf8') === c.id);
    assert.deepEqual(names, [state.name], 'exactly the final name maps to the container');
    assert.equal(fx.runtime.find(state.name).id, c.id);
    await c.remove();
    assert.deepEqual(readdirSync(join(fx.store, 'containers', '.names')), []);
  });

  it('pause and resume from another process; the state shows paused', async () => {
    const c = await fx.runtime.run({ detached: true, command: ['sleep', '1000'], rootfs: fx.rootfs });
    if (!c.cgroupPath) return;
    const other = new Runtime({ root: fx.store }).find(c.id);
    await other.pause();
    assert.equal(new Runtime({ root: fx.store }).find(c.id).status, 'paused');
    assert.match(corral('ps', '--root', fx.store).stdout, new RegExp(`^${c.id}\t-\tpaused\t`, 'm'));
    await other.resume();
    assert.equal(new Runtime({ root: fx.store }).find(c.id).status, 'running');
  });

  it('a created detached container is started by another process', async () => {
    const c = await fx.runtime.create({ detached: true, command: ['/bin/sh', '-c', 'echo started; exit 5'], rootfs: fx.rootfs });
    const other = new Runtime({ root: fx.store }).find(c.id);
    assert.equal(other.status, 'created');
    await other.start();
    assert.deepEqual(await other.wait(), { exitCode: 5, signal: null });
    assert.deepEqual((await collect(other.logs())).map((e) => e.log), ['started\n']);
  });

  it('follows the log until the container exits; rotation keeps at most maxFiles files', async () => {
    const script = 'i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done; sleep 0.2; echo last';
    const c = await fx.runtime.run({ detached: true, command: ['/bin/sh', '-c', script], rootfs: fx.rootfs, logs: { maxSize: 4096, maxFiles: 3 } });
    const followed = await collect(c.logs({ follow: true }));
    assert.equal(followed.at(-1)?.log, 'last\n');
    const files = readdirSync(join(fx.store, 'containers', c.id)).filter((n) => n.startsWith('container.log'));
    assert.deepEqual(files.sort(), ['container.log', 'container.log.1', 'container.log.2']);
    for (const f of files) assert.ok(readFileSync(join(fx.store, 'containers', c.id, f)).length <= 4096);
    const kept = await collect(c.logs());
    assert.ok(kept.length < 301 && kept.length > 50, `${kept.length} lines kept`);
    assert.equal(kept.at(-1)!.log, 'last\n');
    assert.deepEqual((await collect(c.logs({ tail: 2, timestamps: true }))).map((e) => e.log.replace(/^\S+ /, '')), ['line-299-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n', 'last\n']);
  });

  it('restart policy on-failure:2 restarts twice with backoff, the count is in the state', async () => {
    const c = await fx.runtime.run({ detached: true, command: ['/bin/sh', '-c', 'echo run; exit 3'], rootfs: fx.rootfs, restart: 'on-failure:2' });
    assert.deepEqual(await c.wait(), { exitCode: 3, signal: null });
    const record = JSON.parse(readFileSync(join(fx.store, 'containers', c.id, 'process.json'), 'utf8'));
    assert.equal(record.restartCount, 2);
    assert.equal((await collect(c.logs())).length, 3);
  });

  it('stop() is final for restart always; attached containers do not outlive their creator', async () => {
    const c = await fx.runtime.run({ detached: true, command: ['sleep', '1000'], rootfs: fx.rootfs, restart: 'always' });
    const first = c.pid;
    await c.stop({ timeout: 200 });
    await new Promise((r) => setTimeout(r, 400));
    const again = new Runtime({ root: fx.store }).find(c.id);
    assert.equal(again.status, 'stopped');
    assert.ok(!alive(first));
    // The attached kind: the hold-container fixture's container dies with it.
    const hold = fileURLToPath(new URL('../fixtures/hold-container.ts', import.meta.url));
    const proc = spawn(process.execPath, ['--import', 'tsx', hold, fx.rootfs], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = Number(await new Promise<string>((r) => proc.stdout!.once('data', (d: Buffer) => r(d.toString()))));
    await sigkill(proc);
    assert.ok(await eventually(() => !alive(pid)), 'an attached container died with its creator');
  });

  it('the CLI: run -d, ps, logs, exec, stop, wait, inspect, rm; usage errors exit 125', async function () {
    // About twenty node processes, each loading the sources through tsx: slow on a loaded machine.
    this.timeout(180_000);
    const run = corral('run', '-d', '--root', fx.store, '--name', 'cli', '--rootfs', fx.rootfs, '--', '/bin/sh', '-c', "trap 'exit 3' TERM; echo from-cli; while true; do sleep 0.1; done");
    assert.equal(run.status, 0, run.stderr);
    const id = run.stdout.trim();
    assert.match(corral('ps', '--root', fx.store).stdout, new RegExp(`^${id}\tcli\trunning\t`, 'm'));
    assert.equal(corral('ps', '-q', '--root', fx.store).stdout, `${id}\n`);
    assert.equal(JSON.parse(corral('ps', '--format', 'json', '--root', fx.store).stdout).name, 'cli');
    assert.equal(corral('logs', '--root', fx.store, 'cli').stdout, 'from-cli\n');
    assert.equal(corral('restart', '--root', fx.store, '-t', '5', 'cli').stdout, 'cli\n');
    assert.equal(corral('logs', '--root', fx.store, 'cli').stdout, 'from-cli\nfrom-cli\n');
    const exec = corral('exec', '--root', fx.store, 'cli', '/bin/sh', '-c', 'echo -n $X; exit 4');
    assert.equal(exec.status, 4);
    assert.equal(corral('exec', '--root', fx.store, '-e', 'X=y', 'cli', '/bin/sh', '-c', 'echo -n $X').stdout, 'y');
    if (!rootless) assert.match(corral('stats', '--no-stream', '--root', fx.store, 'cli').stdout, new RegExp(`^${id}\\tcli\\t[\\d.]+s\\t`, 'm'));
    assert.equal(corral('stop', '--root', fx.store, '-t', '5', 'cli').status, 0);
    assert.equal(corral('wait', '--root', fx.store, 'cli').stdout, '3\n');
    assert.deepEqual(JSON.parse(corral('inspect', '--root', fx.store, id).stdout)[0].exit, { exitCode: 3, signal: null });
    assert.equal(corral('ps', '-q', '--root', fx.store).stdout, '');
    assert.equal(corral('rm', '--root', fx.store, 'cli').status, 0);
    assert.equal(corral('ps', '-aq', '--root', fx.store).stdout, '');
    for (const bad of [['bogus'], ['ps', '--nope'], ['logs'], ['run', '--name', 'x', '--rootfs', fx.rootfs, '--', 'true']]) {
      const r = corral(...bad);
      assert.equal(r.status, 125, `${bad.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^corral: .+/);
    }
    assert.equal(corral('rm', '--root', fx.store, 'nosuch').status, 1);
  });

  it('autoRemove: the supervisor removes the container once it ends, though nobody watches', async () => {
    const c = await fx.runtime.run({ detached: true, autoRemove: true, name: 'gone', command: ['/bin/sh', '-c', 'sleep 0.3; exit 2'], rootfs: fx.rootfs });
    const supervisor = c.inspect().supervision!.supervisorPid;
    assert.ok(await eventually(() => !existsSync(join(fx.store, 'containers', c.id)), 15_000), 'its state went');
    assert.ok(await eventually(() => !alive(supervisor), 5000), 'its supervisor ended');
    assert.deepEqual(readdirSync(join(fx.store, 'containers')).filter((n) => !n.startsWith('.')), [], 'its layer went');
    assert.deepEqual(readdirSync(join(fx.store, 'containers', '.names')), [], 'its name is free');
    if (c.cgroupPath) assert.ok(!existsSync(c.cgroupPath));
    assert.throws(() => fx.runtime.find('gone'), (e: CorralError) => e.code === 'ERR_CONTAINER_NOT_FOUND');
  });

  it('200 detached containers: each supervisor under 1 MB RSS, list() sees them all running (its time is in benchmarks/detached.ts)', async function () {
    this.timeout(180_000);
    const made: Container[] = [];
    for (let i = 0; i < 200; i++) made.push(await fx.runtime.run({ detached: true, command: ['sleep', '1000'], rootfs: fx.rootfs }));
    const supervisors = made.map((c) => JSON.parse(readFileSync(join(fx.store, 'containers', c.id, 'state.json'), 'utf8')).supervisor.pid as number);
    const rss = supervisors.map((pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]));
    assert.ok(Math.max(...rss) < 1024, `supervisor RSS up to ${Math.max(...rss)} kB`);
    const fresh = new Runtime({ root: fx.store });
    const fds = openFds().length;
    const listed = fresh.list({ all: true });
    assert.equal(listed.length, 200);
    assert.ok(listed.every((c) => c.status === 'running'));
    listed[0]!.kill('SIGCONT');
    assert.equal(openFds().length, fds, 'handles that look and signal hold no fds');
    for (const c of made) await c.remove({ force: true });
    assert.ok(supervisors.every((pid) => !alive(pid)));
  });

  it('a container whose rootfs and bind source were deleted is listed by ps and removed by rm -f with all it holds', async function () {
    this.timeout(60_000);
    const rootfs = makeBusyboxRoot();
    const source = mkdtempSync(join(tmpdir(), 'corral-deleted-source-'));
    // Made by another process (gone since), so this one's spawnSync below does not hold its supervisor's exit.
    const { proc, id } = await createIn(fx.store, rootfs, 'orphaned', 'while true; do sleep 0.1; done', { spec: { mounts: [{ type: 'bind', source, target: '/src' }] } });
    await sigkill(proc);
    const c = fx.runtime.find(id);
    const supervisor = c.inspect().supervision!.supervisorPid;
    rmRoot(rootfs);
    rmSync(source, { recursive: true });
    assert.deepEqual(new Runtime({ root: fx.store }).list().map((r) => [r.id, r.status]), [[c.id, 'running']]);
    const ps = corral('ps', '--root', fx.store);
    assert.deepEqual([ps.status, ps.stderr], [0, ''], 'ps reports no error');
    assert.match(ps.stdout, new RegExp(`^${c.id}\torphaned\trunning\t`, 'm'));
    const rm = corral('rm', '-f', '--root', fx.store, 'orphaned');
    assert.equal(rm.status, 0, rm.stderr);
    // The supervisor (reparented to the host's init when its creator died) is gone when rm returns;
    // the container's init, SIGKILLed by it, may still be in its exit on a busy machine.
    assert.ok(!alive(supervisor), 'its supervisor ended');
    assert.ok(await eventually(() => !alive(c.pid)), 'its processes ended');
    assert.deepEqual(readdirSync(join(fx.store, 'containers')).filter((n) => !n.startsWith('.')), [], 'its state and layer went');
    assert.deepEqual(readdirSync(join(fx.store, 'containers', '.names')), [], 'its name is free');
    if (c.cgroupPath) assert.ok(!existsSync(c.cgroupPath), 'its cgroup went');
  });

  it('detached containers leave no processes when removed, even from another process', async () => {
    const c: Container = await fx.runtime.run({ detached: true, command: ['sleep', '1000'], rootfs: fx.rootfs });
    const state = JSON.parse(readFileSync(join(fx.store, 'containers', c.id, 'state.json'), 'utf8'));
    await new Runtime({ root: fx.store }).find(c.id).remove({ force: true });
    assert.ok(!alive(c.pid) && !alive(state.supervisor.pid));
    assert.deepEqual(readdirSync(join(fx.store, 'containers')).filter((n) => !n.startsWith('.')), []);
    assert.equal(spawnSync('true').status, 0);
  });
});
