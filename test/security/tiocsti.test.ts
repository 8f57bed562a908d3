// CVE-2017-5226 (bubblewrap): TIOCSTI on an inherited terminal pushes input into the host's
// shell. The container starts a session of its own (no controlling terminal), and the default
// seccomp filter refuses TIOCSTI.
import assert from 'node:assert/strict';
import { hostileRoot, mode } from './hostile.ts';

describe(`security: TIOCSTI into the terminal, CVE-2017-5226 (${mode})`, () => {
  const h = hostileRoot();

  it('the ioctl is refused', async () => {
    assert.equal(await h.probe(['tiocsti']), 'EPERM');
  });

  it('the container leads its own session and has no controlling terminal', async () => {
    const r = await h.sh('ps -o pid,sid | tail -n +2 | head -1; cat /dev/tty 2>&1');
    assert.match(r.stdout.toString(), /^\s*1\s+1\n/);
    assert.match(r.stdout.toString(), /No such device or address/);
  });

  it('twin: without the seccomp filter the ioctl reaches the tty layer', async () => {
    // fd 0 is a pipe: the kernel's own answer, not the filter's.
    assert.equal(await h.probe(['tiocsti'], { seccomp: 'unconfined' }), 'ENOTTY');
  });
});
