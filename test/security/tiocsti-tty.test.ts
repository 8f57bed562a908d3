// CVE-2017-5226 (bubblewrap) with spec.tty and exec's tty: a container (or a process exec'd into
// one, or a detached one whose terminal the host attached to) that has a terminal pushes input with
// TIOCSTI into it. Its terminal is a pty of its own
// devpts and its controlling terminal is that pty, so the bytes land in its own input and never in
// the terminal of the host that runs it (here a real host pty that is the runner's controlling
// terminal). The default seccomp filter refuses
// TIOCSTI anyway; these runs are unconfined to show the terminal alone holds.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { hostileRoot, mode } from './hostile.ts';
import { spawnOnPty } from '../host-pty.ts';

const fixture = fileURLToPath(new URL('../fixtures/tiocsti-host.ts', import.meta.url));

async function attack(root: string, how: 'tty' | 'host-session' | 'exec-tty' | 'exec-host-session' | 'detached-tty'): Promise<{ exitCode: number; container: string; reached: string }> {
  const p = spawnOnPty([process.execPath, '--import', 'tsx', fixture, root, how]);
  const m = await p.session.waitFor(/RESULT (\{.*\})\r?\n/, 0, 30_000);
  await p.exited;
  p.terminal.destroy();
  return JSON.parse(m[1]!) as { exitCode: number; container: string; reached: string };
}

/** The pushed byte came back as the process's own terminal input and never reached the host's. */
function assertOwnInput(r: { exitCode: number; container: string; reached: string }): void {
  assert.equal(r.exitCode, 0);
  // The terminal echoes the pushed x before the probe's "ok".
  assert.match(r.container, /^x?ok\r\n/);
  assert.match(r.container, /read:x\r\n$/);
  assert.equal(r.reached, '');
}

describe(`security: TIOCSTI from a container with a terminal, CVE-2017-5226 (${mode})`, () => {
  const h = hostileRoot();

  it("lands in the container's own terminal input, not in the host's terminal", async () => {
    assertOwnInput(await attack(h.root, 'tty'));
  });

  it('twin: in the host session with the host terminal as stdio, the byte reaches the host', async () => {
    const r = await attack(h.root, 'host-session');
    assert.equal(r.exitCode, 0);
    assert.equal(r.reached, 'x');
  });

  it("exec(cmd, { tty: true }): lands in the exec'd process's own terminal input, not in the host's terminal", async () => {
    assertOwnInput(await attack(h.root, 'exec-tty'));
  });

  it("twin: an exec'd process in the host session with the host terminal as stdio reaches the host", async () => {
    const r = await attack(h.root, 'exec-host-session');
    assert.equal(r.exitCode, 0);
    assert.equal(r.reached, 'x');
  });

  it("detached with a terminal and our terminal attached: lands in its own terminal input, not in ours (the twin: host-session above)", async () => {
    assertOwnInput(await attack(h.root, 'detached-tty'));
  });

  it('is refused by the default seccomp filter on the terminal as well', async () => {
    assert.equal(await h.probe(['tiocsti'], { tty: true }), 'EPERM');
  });
});
