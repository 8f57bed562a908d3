import assert from 'node:assert/strict';
import { chmodSync, closeSync, constants, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../lib/index.ts';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';

/** The host pid of the process whose last argument is marker, once it runs. */
async function pidOf(marker: string): Promise<number> {
  for (let i = 0; i < 1000; i++) {
    for (const p of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
      try {
        if (readFileSync(`/proc/${p}/cmdline`, 'utf8').endsWith(`\0${marker}\0`)) return Number(p);
      } catch {
        // gone meanwhile
      }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no process with the argument ${marker}`);
}

// A process outside the container holding its output (pasta, or any fd leaked to the host) must not
// keep run() waiting once the container has exited (issue #17), and nothing written is lost.
describe(`run() output held open outside the container (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  let sync: string;
  before(() => {
    root = makeBusyboxRoot();
    sync = mkdtempSync(join(tmpdir(), 'corral-holder-'));
    chmodSync(sync, 0o755);
  });
  after(() => {
    rmRoot(root);
    rmSync(sync, { recursive: true, force: true });
  });

  it('ends when the container exits though a host process holds its stdout and stderr open, with all the output', async () => {
    const marker = `corral-holder-${process.pid}`;
    // The container waits for the holder, then writes more than a pipe holds.
    const script = 'while [ ! -e /sync/go ]; do sleep 0.02; done; seq 1 100000; echo done >&2';
    const result = run({ rootfs: root, mounts: [{ type: 'bind', source: sync, target: '/sync', readonly: true }], command: ['/bin/sh', '-c', script, marker] });
    const held: number[] = [];
    try {
      const pid = await pidOf(marker);
      held.push(openSync(`/proc/${pid}/fd/1`, constants.O_WRONLY), openSync(`/proc/${pid}/fd/2`, constants.O_WRONLY));
      writeFileSync(join(sync, 'go'), '');
      const r = await result;
      assert.equal(r.exitCode, 0, r.stderr.toString());
      assert.equal(r.stdout.toString(), `${Array.from({ length: 100000 }, (_, i) => i + 1).join('\n')}\n`);
      assert.equal(r.stderr.toString(), 'done\n');
    } finally {
      held.forEach((fd) => closeSync(fd));
      await result.catch(() => {});
    }
  });
});
