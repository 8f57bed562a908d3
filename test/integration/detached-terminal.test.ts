// Detached containers with a terminal (run -dit) or kept stdin (run -di): their supervisor holds
// the pty master or the stdin pipe, `corral attach` (on a real host pty) and attach() get the live
// output and send input through its attach socket, the window size follows the attaching
// terminal, the detach keys leave it running, and the session outlives its creator.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../../lib/index.ts';
import { rootless } from '../helpers.ts';
import { spawnOnPty } from '../host-pty.ts';
import { collect, createIn, detachedFixture } from '../detached-fixture.ts';

const cli = join(fileURLToPath(new URL('../..', import.meta.url)), 'dist/cli/main.js');
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `corral ARGS` to its end, its stdout. */
function corral(args: string[]): string {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

/** A stream that keeps what is written to it. */
function captured(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => { text += d; });
  return { stream, text: () => text };
}

async function until(what: string, test: () => boolean): Promise<void> {
  for (let i = 0; !test(); i++) {
    if (i === 500) throw new Error(`never saw ${what}`);
    await pause(20);
  }
}

/** The supervisor's resident memory in kB. */
function supervisorRss(runtime: Runtime, id: string): number {
  const pid = runtime.get(id)!.inspect().supervision!.supervisorPid;
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

describe(`detached containers with a terminal or stdin (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(60_000);
  const fx = detachedFixture('corral-dtty-');

  it('run -dit, corral attach: a /dev/pts terminal that follows our size, typed input, ctrl-p ctrl-q detaches and it goes on, attach again, exit 3 recorded, the output logged', async () => {
    const id = corral(['run', '-dit', '--root', fx.store, '--rootfs', fx.rootfs, '--', 'sh']);
    const first = spawnOnPty([process.execPath, cli, 'attach', '--root', fx.store, id], { cols: 150, rows: 40 });
    const t = first.session;
    assert.match(await t.command('tty'), /^\/dev\/pts\/\d+\r\n$/);
    assert.match(await t.command('stty size'), /^40 150\r\n$/);
    first.terminal.resize({ cols: 111, rows: 33 });
    await pause(300);
    assert.match(await t.command('stty size'), /^33 111\r\n$/);
    assert.match(await t.command('echo typed-$((2+3))'), /^typed-5\r\n$/);
    t.type('\x10\x11');
    assert.deepEqual(await first.exited, { code: 0, signal: null });
    first.terminal.destroy();
    const c = fx.runtime.get(id)!;
    assert.equal(c.status, 'running');
    // With 1 attacher and with none, the supervisor stays small.
    assert.ok(supervisorRss(fx.runtime, id) < 1024, `supervisor RSS ${supervisorRss(fx.runtime, id)} kB`);

    const second = spawnOnPty([process.execPath, cli, 'attach', '--root', fx.store, id], { cols: 90, rows: 20 });
    assert.match(await second.session.command('echo again-$((1+1)); stty size'), /^again-2\r\n20 90\r\n$/);
    assert.ok(supervisorRss(fx.runtime, id) < 1024, `supervisor RSS ${supervisorRss(fx.runtime, id)} kB with an attacher`);
    second.session.type('exit 3\r');
    assert.deepEqual(await second.exited, { code: 3, signal: null });
    second.terminal.destroy();
    assert.deepEqual(await c.wait(), { exitCode: 3, signal: null });
    assert.deepEqual(fx.runtime.get(id)!.inspect().exit, { exitCode: 3, signal: null });
    const logged = await collect(c.logs());
    assert.ok(logged.every((e) => e.stream === 'stdout'));
    assert.match(logged.map((e) => e.log).join(''), /typed-5\r\n[^]*again-2\r\n/);
  });

  it('run -dt without -i: corral attach shows the terminal but keeps our keys cooked, so Ctrl-C stays ours (--sig-proxy false: it detaches)', async () => {
    const id = corral(['run', '-dt', '--root', fx.store, '--rootfs', fx.rootfs, '--', 'sh', '-c', 'while :; do echo tick-$(tty); sleep 0.1; done']);
    const p = spawnOnPty([process.execPath, cli, 'attach', '--sig-proxy', 'false', '--root', fx.store, id]);
    // Our terminal adds its \r to the container terminal's \r\n: its output mode stays ours too.
    await p.session.waitFor(/tick-\/dev\/pts\/\d+\r+\n/);
    p.terminal.write('\x03');
    assert.deepEqual(await p.exited, { code: 0, signal: null });
    p.terminal.destroy();
    assert.equal(fx.runtime.get(id)!.status, 'running');
    assert.deepEqual(fx.runtime.get(id)!.inspect().openStdin, false);
  });

  it('run -di: stdin kept as a pipe, echoed by cat to corral attach and to a second attacher at once; no input without -i', async () => {
    const id = corral(['run', '-di', '--root', fx.store, '--rootfs', fx.rootfs, '--', 'cat']);
    const other = captured();
    const c = fx.runtime.get(id)!;
    const watching = c.attach({ stdout: other.stream });
    const attach = spawn(process.execPath, [cli, 'attach', '--root', fx.store, id], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    attach.stdout!.on('data', (d: Buffer) => { out += d; });
    await pause(300);
    attach.stdin!.write('ping-1\n');
    await until('the echo', () => out === 'ping-1\n' && other.text() === 'ping-1\n');
    c.kill('SIGKILL');
    assert.equal(await new Promise((resolve) => attach.on('exit', resolve)), 137);
    assert.deepEqual(await watching, { detached: false, exit: { exitCode: null, signal: 'SIGKILL' } });
    assert.deepEqual((await collect(c.logs())).map((e) => e.log), ['ping-1\n']);

    // Without interactive its stdin is /dev/null: cat ends at once, and what an attacher types goes nowhere.
    const deaf = await fx.runtime.run({ detached: true, rootfs: fx.rootfs, command: ['/bin/sh', '-c', 'cat; echo cat-done; sleep 100'] });
    const input = new PassThrough();
    const result = deaf.attach({ stdin: input, stdout: other.stream });
    input.write('typed-in-vain\n');
    await pause(300);
    deaf.kill('SIGKILL');
    await result;
    assert.deepEqual((await collect(deaf.logs())).map((e) => e.log), ['cat-done\n']);
  });

  it('survives SIGKILL of the process that created it: a later attach() drives its terminal', async () => {
    const { proc, id } = await createIn(fx.store, fx.rootfs, 'tty-orphan', 'exec sh', { spec: { tty: true, interactive: true } });
    proc.kill('SIGKILL');
    await new Promise((resolve) => proc.on('exit', resolve));
    await pause(200);
    const c = new Runtime({ root: fx.store }).get('tty-orphan')!;
    assert.equal(c.id, id);
    assert.equal(c.status, 'running');
    const input = new PassThrough();
    const out = captured();
    const attached = c.attach({ stdin: input, stdout: out.stream });
    await c.resize({ cols: 77, rows: 22 });
    input.write('stty size; tty; exit 4\n');
    assert.deepEqual(await attached, { detached: false, exit: { exitCode: 4, signal: null } });
    assert.match(out.text(), /22 77\r\n\/dev\/pts\/\d+\r\n/);
  });

  it('corral start -ai: a created detached container started with our terminal attached, its exit code ours', async () => {
    const c = await fx.runtime.create({ detached: true, tty: true, interactive: true, rootfs: fx.rootfs, command: ['/bin/sh', '-c', 'echo started-$(tty); read line; echo got-$line; exit 5'] });
    const p = spawnOnPty([process.execPath, cli, 'start', '-a', '-i', '--root', fx.store, c.id]);
    await p.session.waitFor(/started-\/dev\/pts\/\d+\r\n/);
    p.session.type('typed\r');
    await p.session.waitFor(/got-typed\r\n/);
    assert.deepEqual(await p.exited, { code: 5, signal: null });
    p.terminal.destroy();
  });

  it('refuses resize() of a container without a terminal, naming it', async () => {
    const c = await fx.runtime.run({ detached: true, rootfs: fx.rootfs, command: ['/bin/sleep', '100'] });
    await assert.rejects(c.resize({ cols: 10, rows: 10 }), { code: 'ERR_CONTAINER_STATE', message: new RegExp(`container ${c.id} has no terminal`) });
  });
});
