// `corral run` at a terminal, driven as a person drives it: the CLI runs on a real host pty that is
// its controlling terminal (test/host-pty.ts); keys are typed into that pty.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';
import { spawnOnPty } from '../host-pty.ts';

const cli = join(fileURLToPath(new URL('../..', import.meta.url)), 'dist/cli/main.js');
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(`corral run at a terminal: -it, --init, signals (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  before(() => {
    root = makeBusyboxRoot();
  });
  after(() => rmRoot(root));

  it('-it: a /dev/pts terminal sized like ours that follows a resize, Ctrl-C, job control, exit code, and our terminal cooked again', async () => {
    // The host shell runs corral, then reports its exit code and its own terminal's mode.
    const p = spawnOnPty(['/bin/sh', '-c', `${process.execPath} ${cli} run -it --rootfs ${root} -- sh; echo "code=$?"; stty -a | tr ' ;' '\\n\\n' | grep -x -E -e '-?(icanon|echo|opost)' | tr '\\n' ' '; echo modes-done`], { cols: 150, rows: 40 });
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
    await t.waitFor(/code=3\r\n/, from);
    // Back in cooked mode: canonical input, echo and output processing on.
    const modes = await t.waitFor(/code=3\r\n(.*)modes-done/, from);
    assert.deepEqual(modes[1]!.trim().split(' ').sort(), ['echo', 'icanon', 'opost']);
    assert.deepEqual(await p.exited, { code: 0, signal: null });
    p.terminal.destroy();
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
