// `corral run` and `corral exec` at a terminal, driven as a person drives it: the CLI runs on a real
// host pty that is its controlling terminal (test/host-pty.ts); keys are typed into that pty.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../../lib/index.ts';
import { makeBusyboxRoot, rmRoot, rootless, zombieChildren } from '../helpers.ts';
import { spawnOnPty, type OnPty } from '../host-pty.ts';

const cli = join(fileURLToPath(new URL('../..', import.meta.url)), 'dist/cli/main.js');
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** corral with args on a host pty, under a shell that then prints corral's exit code and the
 * modes of its own terminal. */
function corralOnPty(args: string, size: { cols: number; rows: number }): OnPty {
  return spawnOnPty(['/bin/sh', '-c', `${process.execPath} ${cli} ${args}; echo "code=$?"; stty -a | tr ' ;' '\\n\\n' | grep -x -E -e '-?(icanon|echo|opost)' | tr '\\n' ' '; echo modes-done`], size);
}

/** Waits for corral's exit code (printed after from), then checks that our terminal is back in
 * cooked mode (canonical input, echo and output processing on) and the shell ended. */
async function assertCookedAfterExit(p: OnPty, code: number, from: number): Promise<void> {
  const modes = await p.session.waitFor(new RegExp(`code=${code}\\r\\n(.*)modes-done`), from);
  assert.deepEqual(modes[1]!.trim().split(' ').sort(), ['echo', 'icanon', 'opost']);
  assert.deepEqual(await p.exited, { code: 0, signal: null });
  p.terminal.destroy();
}

describe(`corral run and exec at a terminal: -it, --init, signals (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  before(() => {
    root = makeBusyboxRoot();
  });
  after(() => rmRoot(root));

  it('-it: a /dev/pts terminal sized like ours that follows a resize, Ctrl-C, job control, exit code, and our terminal cooked again', async () => {
    const p = corralOnPty(`run -it --rootfs ${root} -- sh`, { cols: 150, rows: 40 });
    const t = p.session;
    await t.waitFor(/# /);
    assert.match(await t.command('tty'), /^\/dev\/pts\/\d+\r\n$/);
    assert.match(await t.command('stty size'), /^40 150\r\n$/);
    p.terminal.resize({ cols: 111, rows: 33 });
    await pause(200);
    assert.match(await t.command('stty size'), /^33 111\r\n$/);
    assert.match(await t.interruptSleep(), /^status-130\r\n$/);
    t.type('sleep 100\r');
    await pause(300);
    t.type('\x1a');
    assert.match(await t.command('jobs'), /Stopped\s+sleep 100/);
    t.type('kill -9 %1\r');
    await pause(200);
    const from = t.output.length;
    // ash refuses the first exit after a job was stopped.
    t.type('exit 3\r');
    await t.waitFor(/You have stopped jobs/, from);
    t.type('exit 3\r');
    await assertCookedAfterExit(p, 3, from);
  });

  it('exec -it into a detached container: a terminal of its own that streams, follows a resize, takes Ctrl-C; exit code; our terminal cooked again', async function () {
    this.timeout(60_000);
    const store = mkdtempSync(join(tmpdir(), 'corral-exec-it-'));
    const runtime = new Runtime({ root: store });
    const c = await runtime.run({ detached: true, command: ['sleep', '1000'], rootfs: root });
    try {
      const p = corralOnPty(`exec -it --root ${store} ${c.id} sh`, { cols: 120, rows: 30 });
      const t = p.session;
      await t.waitFor(/# /);
      // The exec'd shell has a terminal of its own, not the container's first process's (none).
      assert.match(await t.command('tty; stty size; cut -d" " -f7 /proc/1/stat'), /^\/dev\/pts\/\d+\r\n30 120\r\n0\r\n$/);
      p.terminal.resize({ cols: 99, rows: 22 });
      await pause(200);
      assert.match(await t.command('stty size'), /^22 99\r\n$/);
      assert.match(await t.interruptSleep(), /^status-130\r\n$/);
      const from = t.output.length;
      t.type('exit 3\r');
      await assertCookedAfterExit(p, 3, from);
      // The container goes on; exec without -t passes the exit code through too.
      assert.equal(c.status, 'running');
      const plain = spawn(process.execPath, [cli, 'exec', '--root', store, c.id, 'sh', '-c', 'exit 5'], { stdio: 'ignore' });
      assert.equal(await new Promise((resolve) => plain.on('exit', resolve)), 5);
    } finally {
      await c.remove({ force: true });
      rmSync(store, { recursive: true, force: true });
    }
    assert.deepEqual(zombieChildren(), []);
  });

  it('exec without -t: Ctrl-C at our terminal reaches the exec\'d command (forwarded), which ends by it', async function () {
    this.timeout(60_000);
    const store = mkdtempSync(join(tmpdir(), 'corral-exec-int-'));
    const c = await new Runtime({ root: store }).run({ detached: true, command: ['sleep', '1000'], rootfs: root });
    try {
      const p = spawnOnPty([process.execPath, cli, 'exec', '--root', store, c.id, 'sleep', '100']);
      await pause(1500);
      p.terminal.write('\x03');
      assert.deepEqual(await p.exited, { code: 130, signal: null });
      p.terminal.destroy();
      const left = await c.exec(['sh', '-c', 'pidof sleep | wc -w'], { encoding: 'utf8' });
      assert.equal(left.stdout.trim(), '1');
    } finally {
      await c.remove({ force: true });
      rmSync(store, { recursive: true, force: true });
    }
  });

  it('without a tty, a second Ctrl-C ends a PID 1 that ignores SIGINT after the stop timeout', async () => {
    const started = Date.now();
    // corral is the terminal's foreground process group: Ctrl-C is SIGINT to it.
    const p = spawnOnPty([process.execPath, cli, 'run', '--stop-timeout', '1', '--rootfs', root, '--', 'sleep', '100']);
    await pause(1500);
    p.terminal.write('\x03');
    await pause(500);
    p.terminal.write('\x03');
    assert.deepEqual(await p.exited, { code: 137, signal: null });
    assert.ok(Date.now() - started < 8000);
    p.terminal.destroy();
  });

  it('--init: one Ctrl-C ends sleep, with its exit code (130)', async () => {
    const p = spawnOnPty([process.execPath, cli, 'run', '--init', '--rootfs', root, '--', 'sleep', '100']);
    await pause(1500);
    p.terminal.write('\x03');
    assert.deepEqual(await p.exited, { code: 130, signal: null });
    p.terminal.destroy();
  });

  it('SIGTERM to corral stops a container whose PID 1 ignores it, within the stop timeout', async () => {
    const child = spawn(process.execPath, [cli, 'run', '--stop-timeout', '1', '--rootfs', root, '--', 'sleep', '100'], { stdio: 'ignore' });
    await pause(1500);
    const sent = Date.now();
    child.kill('SIGTERM');
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 137);
    assert.ok(Date.now() - sent < 5000);
  });
});
