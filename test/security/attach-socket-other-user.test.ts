// Another host user (uid 65534 against root's runtime) connects to a detached container's attach
// socket to read its terminal and type into it. The socket is 0600 in the 0700 state directory of
// the container (bindings/supervisor.c open_attach, lib/container/state-store.ts): the connect is
// refused. Its twin gives the directories and the socket wider modes and the same connect reads the
// container's output. Rootless: the same modes, checked (the attacker must be another user, whom
// the rootless pass cannot become).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Runtime, type Container } from '../../lib/index.ts';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';

const NOBODY = 65534;
const mode = (path: string): number => statSync(path).mode & 0o7777;

/** As uid 65534, connects to the socket through a link of its own (the real path is longer than a
 * socket address) and prints what comes within 1 s, or the connect's error code. */
function connectAsNobody(link: string): string {
  const script = `const s = require('node:net').connect(${JSON.stringify(link)});
    let got = '';
    s.on('data', (d) => { got += d; });
    s.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });
    setTimeout(() => { console.log('read ' + JSON.stringify(got)); process.exit(0); }, 1000);`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', uid: NOBODY, gid: NOBODY });
  return r.stdout.trim();
}

describe(`security: another user attaches to a detached container's terminal (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(30_000);
  let base: string;
  let rootfs: string;
  let runtime: Runtime;
  let c: Container;
  let socket: string;
  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'corral-attach-socket-'));
    // Only the runtime's own modes stand between uid 65534 and it: its parent is 0755.
    chmodSync(base, 0o755);
    rootfs = makeBusyboxRoot();
    runtime = new Runtime({ root: join(base, 'state') });
    c = await runtime.run({ detached: true, tty: true, interactive: true, rootfs, command: ['/bin/sh', '-c', 'while :; do echo secret-output; sleep 0.1; done'] });
    socket = join(base, 'state', 'containers', c.id, 'attach');
  });
  after(async () => {
    await c.remove({ force: true });
    rmRoot(rootfs);
    rmSync(base, { recursive: true, force: true });
  });

  it("makes the socket 0600 and the container's state directory 0700", () => {
    assert.equal(mode(socket), 0o600);
    assert.equal(mode(dirname(socket)), 0o700);
  });

  if (!rootless) {
    let link: string;
    before(() => {
      const own = mkdtempSync(join(tmpdir(), 'n-'));
      chownSync(own, NOBODY, NOBODY);
      link = join(own, 'a');
      symlinkSync(socket, link);
    });
    after(() => rmSync(dirname(link), { recursive: true, force: true }));

    it('refuses uid 65534 the connect', () => {
      assert.equal(connectAsNobody(link), 'error EACCES');
    });

    it('twin: with the directories 0755 and the socket 0666, uid 65534 reads the terminal', () => {
      for (let d = dirname(socket); d !== base; d = dirname(d)) chmodSync(d, 0o755);
      chmodSync(socket, 0o666);
      assert.match(connectAsNobody(link), /^read ".*secret-output/);
    });
  }
});
