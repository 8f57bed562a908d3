import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { run, create, Runtime, type ExitInfo } from '../../lib/index.ts';
import { alive, eventually, makeBusyboxRoot, pidsInNamespaceOf, rmRoot, rootless } from '../helpers.ts';

const sh = (script: string) => ['/bin/sh', '-c', script];

describe(`lifecycle (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  before(() => {
    root = makeBusyboxRoot();
  });
  after(() => rmRoot(root));

  it('returns exit codes as child_process does', async () => {
    for (const code of [0, 1, 3, 255]) {
      const r = await run({ command: sh(`exit ${code}`), rootfs: root });
      assert.equal(r.exitCode, code);
      assert.equal(r.signal, null);
      assert.equal(r.timedOut, false);
      assert.ok(r.durationMs > 0);
    }
  });

  it('reports a fatal signal by name', async () => {
    // PID 1 is immune to signals it has no handler for, so the signal is sent from outside.
    await using c = await create({ command: ['sleep', '100'], rootfs: root });
    await c.start();
    c.kill('SIGKILL');
    assert.deepEqual(await c.wait(), { exitCode: null, signal: 'SIGKILL' });
    // A process that is not PID 1 dies of its own signal.
    const r = await run({ command: sh('kill -SEGV $$'), rootfs: root, namespaces: { pid: false } });
    assert.equal(r.exitCode, null);
    assert.equal(r.signal, 'SIGSEGV');
  });

  it('collects stdout and stderr and feeds input', async () => {
    const r = await run({ command: sh('cat; echo err >&2'), rootfs: root }, { input: 'hello\n' });
    assert.equal(r.stdout.toString(), 'hello\n');
    assert.equal(r.stderr.toString(), 'err\n');
  });

  it('kills on timeout and reports timedOut', async () => {
    const r = await run({ command: ['sleep', '30'], rootfs: root }, { timeout: 100 });
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, 'SIGKILL');
    assert.ok(r.durationMs < 5000);
  });

  it('kills on abort and rejects with an AbortError', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(run({ command: ['sleep', '30'], rootfs: root }, { signal: ac.signal }), { name: 'AbortError', code: 'ABORT_ERR' });
    await assert.rejects(run({ command: ['true'], rootfs: root }, { signal: AbortSignal.abort() }), { name: 'AbortError' });
  });

  it('create() holds the process before exec until start()', async () => {
    await using c = await create({ command: sh('echo started; cat'), rootfs: root });
    assert.equal(c.status, 'created');
    assert.ok(c.pid > 0);
    // Still the runtime's setup code, not the command: nothing printed yet.
    const early: Buffer[] = [];
    c.stdout!.on('data', (d: Buffer) => early.push(d));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(Buffer.concat(early).length, 0);
    let startEvent = false;
    c.on('start', () => { startEvent = true; });
    await c.start();
    assert.equal(c.status, 'running');
    assert.ok(startEvent);
    c.stdin!.end('bye\n');
    const exitEvent = new Promise<ExitInfo>((r) => c.once('exit', r));
    assert.deepEqual(await c.wait(), { exitCode: 0, signal: null });
    assert.deepEqual(await exitEvent, { exitCode: 0, signal: null });
    assert.equal(Buffer.concat(early).toString(), 'started\nbye\n');
    assert.equal(c.status, 'stopped');
    await assert.rejects(c.start(), { code: 'ERR_CONTAINER_STATE' });
    assert.throws(() => c.kill(), { code: 'ERR_CONTAINER_STATE' });
  });

  it('stop() sends SIGTERM, then SIGKILL after the timeout', async () => {
    const trapping = await create({ command: sh('trap "exit 7" TERM; while :; do sleep 0.05; done'), rootfs: root });
    await trapping.start();
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await trapping.stop({ timeout: 5000 }), { exitCode: 7, signal: null });
    await trapping.remove();
    const stubborn = await create({ command: ['sleep', '100'], rootfs: root });
    await stubborn.start();
    const t0 = Date.now();
    assert.deepEqual(await stubborn.stop({ timeout: 200 }), { exitCode: null, signal: 'SIGKILL' });
    assert.ok(Date.now() - t0 >= 190);
    await stubborn.remove();
    assert.equal(stubborn.status, 'removed');
  });

  it('remove() refuses a running container unless forced', async () => {
    const rt = new Runtime();
    const c = await rt.create({ command: ['sleep', '100'], rootfs: root, id: 'keep-me' });
    await c.start();
    await assert.rejects(c.remove(), { code: 'ERR_CONTAINER_STATE' });
    assert.equal(rt.get('keep-me'), c);
    await assert.rejects(rt.create({ command: ['true'], rootfs: root, id: 'keep-me' }), { code: 'ERR_CONTAINER_EXISTS' });
    await c.remove({ force: true });
    assert.equal(c.status, 'removed');
    assert.equal(rt.get('keep-me'), undefined);
    assert.equal(alive(c.pid), false);
  });

  it('await using kills and removes the container at the end of the scope', async () => {
    let pid: number;
    {
      await using c = await create({ command: ['sleep', '100'], rootfs: root });
      await c.start();
      pid = c.pid;
      assert.ok(alive(pid));
    }
    assert.equal(alive(pid), false);
  });

  it('exec runs a new process in the namespaces and root of a running container', async () => {
    await using c = await create({ command: ['sleep', '100'], rootfs: root, hostname: 'inside' });
    await c.start();
    const r = await c.exec(sh('echo $$; hostname; cat /etc/marker; cat /proc/1/cmdline | tr "\\0" " "'));
    assert.equal(r.exitCode, 0, r.stderr.toString());
    const [pid, host, marker, init] = r.stdout.toString().split('\n');
    assert.ok(Number(pid) > 1 && Number(pid) < 100, pid);
    assert.equal(host, 'inside');
    assert.equal(marker, 'busybox-root');
    assert.equal(init!.trim(), 'sleep 100');
    const failing = await c.exec(sh('exit 5'), { input: 'x' });
    assert.equal(failing.exitCode, 5);
    await assert.rejects(c.exec(['no-such-program']), { code: 'ENOENT' });
    const withEnv = await c.exec(sh('echo $A; pwd'), { env: { A: 'b', PATH: '/bin' }, cwd: '/etc' });
    assert.equal(withEnv.stdout.toString(), 'b\n/etc\n');
  });

  it('CVE-2019-5736: exec cannot reach the host node binary through /proc (non-dumpable until exec)', async () => {
    await using c = await create({
      // Watch every pid for an exe that is not busybox, for as long as the test runs execs.
      command: sh('seen=0; while [ ! -e /tmp/stop ]; do for p in /proc/[0-9]*; do e=$(readlink $p/exe 2>/dev/null) && [ -n "$e" ] && [ "$e" != /bin/busybox ] && echo "$p $e"; seen=$((seen+1)); done; done; echo seen $seen'),
      rootfs: root,
    });
    await c.start();
    const out: Buffer[] = [];
    c.stdout!.on('data', (d: Buffer) => out.push(d));
    for (let i = 0; i < 50; i++) await c.exec(['true']);
    await c.exec(['touch', '/tmp/stop']);
    assert.deepEqual(await c.wait(), { exitCode: 0, signal: null });
    const text = Buffer.concat(out).toString();
    assert.match(text, /seen [1-9]/);
    assert.doesNotMatch(text, new RegExp(process.execPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.equal(text.split('\n').filter((l) => l.startsWith('/proc')).length, 0, text);
  });

  it('exec fails with ERR_CONTAINER_STATE on a stopped container', async () => {
    await using c = await create({ command: ['true'], rootfs: root });
    await c.start();
    await c.wait();
    await assert.rejects(c.exec(['true']), { code: 'ERR_CONTAINER_STATE' });
  });

  it('children of the first process die with it', async () => {
    const c = await create({ command: sh('sleep 1000 & sleep 1000 & (sleep 1000 &); exec sleep 1000'), rootfs: root });
    await c.start();
    assert.ok(await eventually(() => pidsInNamespaceOf(c.pid).length >= 4));
    const members = pidsInNamespaceOf(c.pid);
    c.kill('SIGKILL');
    await c.wait();
    assert.ok(await eventually(() => members.every((p) => !alive(p))), `still alive: ${members.filter(alive)}`);
    await c.remove();
  });

  for (const how of ['exits', 'is SIGKILLed'] as const) {
    it(`containers die when the host Node process ${how}`, async () => {
      const script = fileURLToPath(new URL('../fixtures/hold-container.ts', import.meta.url));
      const child = spawn(process.execPath, ['--import', 'tsx', script, root, how === 'exits' ? 'exit' : 'hang'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const line = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString())));
      const pid = Number(line.trim());
      assert.ok(pid > 0, line);
      if (how === 'is SIGKILLed') {
        assert.ok(alive(pid));
        child.kill('SIGKILL');
      }
      await new Promise((r) => child.once('exit', r));
      assert.ok(await eventually(() => !alive(pid)), `container ${pid} outlived its host process`);
    });
  }

  it("keeps node's child_process working beside corral", async () => {
    const pending = run({ command: ['sleep', '0.3'], rootfs: root });
    const viaChildProcess = await new Promise<number | null>((resolve) => spawn('sh', ['-c', 'exit 4']).on('exit', resolve));
    assert.equal(viaChildProcess, 4);
    assert.equal(spawnSync('sh', ['-c', 'exit 6']).status, 6);
    assert.equal((await pending).exitCode, 0);
  });
});
