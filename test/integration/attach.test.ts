// attach() and `corral attach`: streams connected to a running container until it exits or the
// detach keys are typed; a detached container's output from now on, through the CLI on a real pty.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { create, Runtime } from '../../lib/index.ts';
import { makeBusyboxRoot, openFds, quietFds, rmRoot, rootless } from '../helpers.ts';
import { spawnOnPty } from '../host-pty.ts';
import { TerminalSession } from '../terminal-session.ts';

const cli = join(fileURLToPath(new URL('../..', import.meta.url)), 'dist/cli/main.js');
const sh = (script: string) => ['/bin/sh', '-c', script];
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A stream that keeps what is written to it. */
function captured(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => { text += d; });
  return { stream, text: () => text };
}

describe(`attach (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  before(() => {
    root = makeBusyboxRoot();
  });
  after(() => rmRoot(root));

  it("connects to a container's terminal; ctrl-p,ctrl-q detaches and the container goes on; a second attach ends with its exit", async () => {
    await using c = await create({ command: ['/bin/sh'], rootfs: root, tty: true, consoleSize: { cols: 200, rows: 50 } });
    await c.start();
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const t = new TerminalSession(stdout);
    t.type = (text: string) => void stdin.write(text);
    const first = c.attach({ stdin, stdout });
    assert.match(await t.command('echo attached-$((6*7))'), /^attached-42\r\n$/);
    stdin.write('\x10\x11');
    assert.deepEqual(await first, { detached: true, exit: null });
    assert.equal(c.status, 'running');
    // Output while nobody is attached waits in the terminal for the next attach: nothing is lost.
    c.terminal!.write('echo while-$((1+1))-detached\n');
    await pause(300);
    assert.doesNotMatch(t.output, /while-2-detached/);
    const again = new PassThrough();
    const second = c.attach({ stdin: again, stdout, detachKeys: 'ctrl-a,d' });
    await t.waitFor(/while-2-detached\r\n/);
    again.write('exit 3\n');
    assert.deepEqual(await second, { detached: false, exit: { exitCode: 3, signal: null } });
    await assert.rejects(c.attach({ stdout }), { code: 'ERR_CONTAINER_STATE' });
  });

  it('connects to piped stdio (stderr apart), detaches on abort, and refuses bad detach keys', async () => {
    const fds = await quietFds();
    {
      await using c = await create({ command: sh('while read line; do echo "out:$line"; echo "err:$line" >&2; done'), rootfs: root });
      await c.start();
      const stdin = new PassThrough();
      const out = captured();
      const err = captured();
      await assert.rejects(c.attach({ stdin, detachKeys: 'ctrl-1' }), { code: 'ERR_INVALID_ARG_VALUE' });
      const ac = new AbortController();
      const attached = c.attach({ stdin, stdout: out.stream, stderr: err.stream, signal: ac.signal });
      stdin.write('one\n');
      for (let i = 0; i < 100 && !err.text().includes('err:one'); i++) await pause(20);
      assert.deepEqual([out.text(), err.text()], ['out:one\n', 'err:one\n']);
      ac.abort();
      assert.deepEqual(await attached, { detached: true, exit: null });
      c.stdin!.end();
      assert.deepEqual(await c.wait(), { exitCode: 0, signal: null });
    }
    assert.deepEqual(openFds(), fds);
  });

  describe('a detached container', () => {
    let store: string;
    let runtime: Runtime;
    before(() => {
      store = mkdtempSync(join(tmpdir(), 'corral-attach-'));
      runtime = new Runtime({ root: store });
    });
    after(() => rmSync(store, { recursive: true, force: true }));

    const ticking = sh('trap "echo got-int; exit 8" INT; trap "echo got-term >&2; exit 7" TERM; echo early; while :; do echo tick; sleep 0.1; done');

    it('attach() gives its output from now on and ends with its exit, or detaches on abort', async () => {
      const c = await runtime.run({ detached: true, command: ticking, rootfs: root });
      try {
        await pause(300);
        const out = captured();
        const err = captured();
        const ac = new AbortController();
        const first = c.attach({ stdout: out.stream, stderr: err.stream, signal: ac.signal });
        await pause(500);
        ac.abort();
        assert.deepEqual(await first, { detached: true, exit: null });
        assert.match(out.text(), /^(tick\n)+$/);
        const second = c.attach({ stdout: out.stream, stderr: err.stream, stdin: new PassThrough() });
        await pause(300);
        await c.stop();
        assert.deepEqual(await second, { detached: false, exit: { exitCode: 7, signal: null } });
        assert.equal(err.text(), 'got-term\n');
      } finally {
        await c.remove({ force: true });
      }
    });

    it('corral attach: its output at our terminal, Ctrl-C forwarded (exit code passed through); with --sig-proxy false Ctrl-C detaches', async function () {
      this.timeout(60_000);
      const c = await runtime.run({ detached: true, command: ticking, rootfs: root });
      try {
        const detaching = spawnOnPty([process.execPath, cli, 'attach', '--sig-proxy', 'false', '--root', store, c.id]);
        await detaching.session.waitFor(/tick\r\n/);
        detaching.terminal.write('\x03');
        assert.deepEqual(await detaching.exited, { code: 0, signal: null });
        detaching.terminal.destroy();
        assert.equal(c.status, 'running');
        const p = spawnOnPty([process.execPath, cli, 'attach', '--root', store, c.id]);
        await p.session.waitFor(/tick\r\n/);
        assert.doesNotMatch(p.session.output, /early/);
        p.terminal.write('\x03');
        assert.deepEqual(await p.exited, { code: 8, signal: null });
        await p.session.waitFor(/got-int\r\n/);
        p.terminal.destroy();
        const stopped = spawn(process.execPath, [cli, 'attach', '--root', store, c.id], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        stopped.stderr!.on('data', (d: Buffer) => { stderr += d; });
        assert.equal(await new Promise((resolve) => stopped.on('exit', resolve)), 125);
        assert.match(stderr, /stopped; attach needs it created or running/);
      } finally {
        await c.remove({ force: true });
      }
    });
  });
});
