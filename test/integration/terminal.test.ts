import assert from 'node:assert/strict';
import { run, create } from '../../lib/index.ts';
import { makeBusyboxRoot, openFds, quietFds, rmRoot, rootless, zombieChildren } from '../helpers.ts';
import { TerminalSession } from '../terminal-session.ts';

const sh = (script: string) => ['/bin/sh', '-c', script];
const wide = { cols: 200, rows: 50 };

describe(`terminals: spec.tty, exec and spawn with tty (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  before(() => {
    root = makeBusyboxRoot();
  });
  after(() => rmRoot(root));

  it('gives the process a /dev/pts terminal of the container as stdio; without tty, pipes as before', async () => {
    const r = await run({ command: sh('tty; [ -t 1 ] && echo out-is-tty; [ -t 2 ] && echo err-is-tty'), rootfs: root, tty: true }, { encoding: 'utf8' });
    assert.equal(r.exitCode, 0);
    assert.match(r.stdout, /^\/dev\/pts\/\d+\r\nout-is-tty\r\nerr-is-tty\r\n$/);
    const piped = await run({ command: sh('tty'), rootfs: root }, { encoding: 'utf8' });
    assert.equal(piped.stdout, 'not a tty\n');
    assert.equal(piped.exitCode, 1);
  });

  it("comes from the container's own devpts: fd 0 is on the filesystem mounted at its /dev/pts", async () => {
    const r = await run({ command: sh('stat -L -c %d /proc/self/fd/0 /dev/pts; stat -f -c %T /dev/pts'), rootfs: root, tty: true }, { encoding: 'utf8' });
    const [slaveDev, ptsDev, fsType] = r.stdout.trim().split(/\r?\n/);
    assert.equal(slaveDev, ptsDev);
    assert.equal(fsType, 'devpts');
  });

  it('makes the process the session leader with the terminal as its controlling terminal', async () => {
    // /proc/PID/stat: field 6 the session, 7 the controlling terminal (0: none).
    const r = await run({ command: sh('cut -d" " -f1,6,7 /proc/$$/stat; true </dev/tty && echo dev-tty-ok'), rootfs: root, tty: true }, { encoding: 'utf8' });
    const [pid, sid, ttyNr] = r.stdout.split(/\r?\n/)[0]!.split(' ');
    assert.equal(sid, pid);
    assert.notEqual(ttyNr, '0');
    assert.match(r.stdout, /dev-tty-ok/);
  });

  it('follows resize (stty size, SIGWINCH), starts at consoleSize, and sends Ctrl-C to the foreground process group', async () => {
    await using c = await create({ command: ['/bin/sh'], rootfs: root, tty: true, consoleSize: wide });
    const t = new TerminalSession(c.terminal!);
    await c.start();
    assert.match(await t.command('stty size'), /^50 200\r\n$/);
    c.terminal!.resize({ cols: 132, rows: 43 });
    assert.match(await t.command('stty size'), /^43 132\r\n$/);
    // A trap in a child shell proves the signal is SIGWINCH to the foreground group.
    const from = t.output.length;
    t.type('sh -c \'trap "echo got-winch; exit 0" WINCH; while :; do sleep 0.05; done\'\n');
    await new Promise((r) => setTimeout(r, 300));
    c.terminal!.resize({ cols: 120, rows: 40 });
    await t.waitFor(/got-winch/, from);
    await t.waitFor(/# /, t.output.lastIndexOf('got-winch'));
    // The shell survives: the signal reached sleep (killed by SIGINT: status 130), not PID 1.
    assert.match(await t.interruptSleep(), /^status-130\r\n$/);
    t.type('exit 3\n');
    assert.deepEqual(await c.wait(), { exitCode: 3, signal: null });
  });

  it('ends the terminal stream when the process exits, leaving no fd behind', async () => {
    const fds = await quietFds();
    const c = await create({ command: sh('echo bye'), rootfs: root, tty: true });
    const ended = new Promise<void>((resolve) => c.terminal!.on('end', resolve).resume());
    await c.start();
    await c.wait();
    await ended;
    await c.remove();
    assert.deepEqual(openFds(), fds);
  });

  it('leaves no fd or process behind when a launch with a terminal fails', async () => {
    const fds = await quietFds();
    await assert.rejects(run({ command: ['/no/such/command'], rootfs: root, tty: true, init: true }), { code: 'ENOENT', syscall: 'execve' });
    await assert.rejects(create({ command: ['/no/such/command'], rootfs: root, tty: true }), { code: 'ENOENT' });
    const c = await create({ command: ['sleep', '100'], rootfs: root });
    await c.start();
    await assert.rejects(c.exec(['/no/such/command'], { tty: true }), { code: 'ENOENT' });
    await c.remove({ force: true });
    assert.deepEqual(openFds(), fds);
    assert.deepEqual(zombieChildren(), []);
  });

  it('gives exec(cmd, { tty: true }) a terminal of its own, sized by consoleSize, its output collected', async () => {
    await using c = await create({ command: ['sleep', '100'], rootfs: root });
    await c.start();
    const r = await c.exec(sh('tty; stty size'), { tty: true, consoleSize: { cols: 90, rows: 33 }, encoding: 'utf8' });
    assert.equal(r.exitCode, 0);
    assert.match(r.stdout, /^\/dev\/pts\/\d+\r\n33 90\r\n$/);
    const piped = await c.exec(['tty'], { encoding: 'utf8' });
    assert.equal(piped.stdout, 'not a tty\n');
  });

  it('spawn(cmd, { tty: true }) hands over the running process: its terminal streams, resizes, takes Ctrl-C, and wait() gives the exit', async () => {
    await using c = await create({ command: ['sleep', '100'], rootfs: root });
    await c.start();
    const p = await c.spawn(['/bin/sh'], { tty: true, consoleSize: wide });
    assert.equal(p.stdin, null);
    const t = new TerminalSession(p.terminal!);
    // Output arrives while the process runs, not only at its end.
    assert.match(await t.command('tty; stty size'), /^\/dev\/pts\/\d+\r\n50 200\r\n$/);
    p.terminal!.resize({ cols: 101, rows: 21 });
    assert.match(await t.command('stty size'), /^21 101\r\n$/);
    assert.match(await t.interruptSleep(), /^status-130\r\n$/);
    assert.equal(p.exitInfo, null);
    t.type('exit 4\n');
    assert.deepEqual(await p.wait(), { exitCode: 4, signal: null });
    assert.deepEqual(p.exitInfo, { exitCode: 4, signal: null });
  });

  it('spawn() with pipes streams stdin to stdout while it runs; kill() signals it; await using ends what is left', async () => {
    const fds = await quietFds();
    {
      await using c = await create({ command: ['sleep', '100'], rootfs: root });
      await c.start();
      const cat = await c.spawn(['cat']);
      const out: Buffer[] = [];
      cat.stdout!.on('data', (d: Buffer) => out.push(d));
      cat.stdin!.write('one\n');
      for (let i = 0; i < 100 && Buffer.concat(out).toString() !== 'one\n'; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(Buffer.concat(out).toString(), 'one\n');
      cat.stdin!.end('two\n');
      assert.deepEqual(await cat.wait(), { exitCode: 0, signal: null });
      const sleeper = await c.spawn(['sleep', '100'], { stdio: 'ignore' });
      assert.equal(sleeper.stdout, null);
      sleeper.kill('SIGTERM');
      assert.deepEqual(await sleeper.wait(), { exitCode: null, signal: 'SIGTERM' });
      // Left running, with a child of its own: the end of the scope kills its group and reaps it.
      await using left = await c.spawn(sh('sleep 100 & sleep 100'));
      assert.ok(left.pid > 0);
    }
    assert.deepEqual(openFds(), fds);
    assert.deepEqual(zombieChildren(), []);
  });

  it('spawn() ends on abort with killSignal, and refuses an aborted signal, a bad command or tty size before starting', async () => {
    await using c = await create({ command: ['sleep', '100'], rootfs: root });
    await c.start();
    const ac = new AbortController();
    const p = await c.spawn(['sleep', '100'], { signal: ac.signal, killSignal: 'SIGTERM', stdio: 'ignore' });
    ac.abort();
    assert.deepEqual(await p.wait(), { exitCode: null, signal: 'SIGTERM' });
    await assert.rejects(c.spawn(['true'], { signal: ac.signal }), { name: 'AbortError' });
    await assert.rejects(c.spawn([]), { code: 'ERR_INVALID_ARG_VALUE' });
    await assert.rejects(c.spawn(['sh'], { tty: true, consoleSize: { cols: 0, rows: 1 } }), { code: 'ERR_INVALID_ARG_VALUE' });
    await assert.rejects(c.spawn(['/no/such/command'], { tty: true }), { code: 'ENOENT' });
  });

  it('refuses tty without a mount namespace, and a bad size, with ERR_INVALID_SPEC / ERR_INVALID_ARG_VALUE', async () => {
    await assert.rejects(run({ command: ['true'], tty: true, namespaces: { mount: false } }), { code: 'ERR_INVALID_SPEC' });
    await assert.rejects(run({ command: ['true'], rootfs: root, tty: true, consoleSize: { cols: 0, rows: 3 } }), { code: 'ERR_INVALID_ARG_VALUE' });
    await using c = await create({ command: ['sleep', '100'], rootfs: root, tty: true });
    assert.throws(() => c.terminal!.resize({ cols: 70000, rows: 1 }), { code: 'ERR_INVALID_ARG_VALUE' });
  });
});
