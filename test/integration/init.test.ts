import assert from 'node:assert/strict';
import { run, create } from '../../lib/index.ts';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';
import { TerminalSession } from '../terminal-session.ts';

const sh = (script: string) => ['/bin/sh', '-c', script];

/** How many processes of the container are zombies, counted from an exec inside it. */
async function zombies(c: { exec(cmd: string[], o: { encoding: 'utf8' }): Promise<{ stdout: string }> }): Promise<number> {
  const r = await c.exec(sh('cat /proc/[0-9]*/stat 2>/dev/null'), { encoding: 'utf8' });
  return r.stdout.split('\n').filter((line) => / Z /.test(line.slice(line.lastIndexOf(')')))).length;
}

describe(`spec.init: an init as PID 1 (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  before(() => {
    root = makeBusyboxRoot();
  });
  after(() => rmRoot(root));

  it('keeps the exit code of the command, and 128 + the signal that ended it', async () => {
    assert.deepEqual((await run({ command: sh('exit 7'), rootfs: root, init: true })).exitCode, 7);
    const r = await run({ command: sh('echo out; echo err >&2'), rootfs: root, init: true }, { encoding: 'utf8' });
    assert.deepEqual([r.exitCode, r.stdout, r.stderr], [0, 'out\n', 'err\n']);
    const killed = await run({ command: sh('kill -KILL $$'), rootfs: root, init: true });
    assert.deepEqual([killed.exitCode, killed.signal], [137, null]);
  });

  it('forwards SIGTERM to a command with no handler for it; without init, PID 1 ignores it', async () => {
    await using c = await create({ command: ['sleep', '100'], rootfs: root, init: true });
    await c.start();
    c.kill('SIGTERM');
    assert.deepEqual(await c.wait(), { exitCode: 143, signal: null });
    // The twin: sleep as PID 1 has no handler, so the kernel drops the signal.
    await using bare = await create({ command: ['sleep', '100'], rootfs: root });
    await bare.start();
    bare.kill('SIGTERM');
    const outcome = await Promise.race([bare.wait(), new Promise((r) => setTimeout(() => r('still running'), 500))]);
    assert.equal(outcome, 'still running');
  });

  it('reaches a handler of the command (the signal is forwarded, not turned into a kill)', async () => {
    await using c = await create({ command: sh('trap "echo got-term; exit 5" TERM; while :; do sleep 0.05; done'), rootfs: root, init: true });
    const out: Buffer[] = [];
    c.stdout!.on('data', (d: Buffer) => out.push(d));
    await c.start();
    await new Promise((r) => setTimeout(r, 200));
    c.kill('SIGTERM');
    assert.deepEqual(await c.wait(), { exitCode: 5, signal: null });
    assert.equal(Buffer.concat(out).toString(), 'got-term\n');
  });

  it('reaps orphans that end below it; without init they stay zombies', async () => {
    // The subshell exits at once, so its sleep is orphaned to PID 1, then ends; PID 1 (sleep) never waits.
    const zombieMaker = sh('(sleep 0.1 &); exec sleep 100');
    await using c = await create({ command: zombieMaker, rootfs: root, init: true });
    await c.start();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await zombies(c), 0);
    await using twin = await create({ command: zombieMaker, rootfs: root });
    await twin.start();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await zombies(twin), 1);
  });

  it('works with a terminal: the command leads the session, Ctrl-C reaches it', async () => {
    await using c = await create({ command: ['/bin/sh'], rootfs: root, init: true, tty: true, consoleSize: { cols: 200, rows: 50 } });
    const t = new TerminalSession(c.terminal!);
    await c.start();
    // The shell is not PID 1 (the init is) and leads its own session.
    assert.match(await t.command('cut -d" " -f1,6 /proc/$$/stat; tty'), /^([02-9]|\d\d+) \1\r\n\/dev\/pts\/\d+\r\n$/);
    assert.match(await t.interruptSleep(), /^status-130\r\n$/);
    t.type('exit 9\n');
    assert.deepEqual(await c.wait(), { exitCode: 9, signal: null });
  });
});
