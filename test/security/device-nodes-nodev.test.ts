// Device nodes outside /dev (issue 10, item 3, the mount half): a node that comes in an image layer
// or a bind mount, or that a container makes in a writable place (/tmp, /dev/shm, a tmpfs, a
// volume), must not open: every mount but /dev is nodev, as Docker does. The twin lifts nodev
// (lib/spawn/lifted-defences.ts) and the same nodes open. The device cgroup that limits which
// nodes /dev itself may hold is another defence (lib/cgroup/), not tested here.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, type ContainerSpec } from '../../lib/index.ts';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';
import { withLifted } from './lifted.ts';

/** A shell line per path: "PATH: opened", or "PATH: " and cat's error. */
function tryOpen(paths: string[]): string {
  return paths.map((p) => `if cat ${p} >/dev/null 2>/dev/null; then echo "${p}: opened"; else echo "${p}: $(cat ${p} 2>&1)"; fi`).join('; ');
}

/** Each path's outcome: 'opened' or 'denied' (EACCES) or the error text. */
function outcomes(stdout: string): Record<string, string> {
  return Object.fromEntries(stdout.trim().split('\n').map((line) => {
    const [path, ...rest] = line.split(': ');
    const text = rest.join(': ');
    return [path, text === 'opened' ? 'opened' : /Permission denied/.test(text) ? 'denied' : text];
  }));
}

describe(`device nodes outside /dev do not open: nodev mounts (${rootless ? 'rootless' : 'root'})`, () => {
  const rt = new Runtime({ cgroupParent: false });
  let root: string;
  let hostDir: string;

  before(() => {
    root = makeBusyboxRoot();
    // Not under /tmp: a host-root container gets a /tmp of its own.
    hostDir = mkdtempSync(join(rootless ? tmpdir() : '/var/tmp', 'corral-nodev-'));
    if (!rootless) {
      // As an image layer would bring it: /dev/null's numbers, in the rootfs and in a host directory.
      execFileSync('mknod', ['-m', '666', join(root, 'devnode'), 'c', '1', '3']);
      mkdirSync(join(hostDir, 'sub'));
      execFileSync('mknod', ['-m', '666', join(hostDir, 'sub/devnode'), 'c', '1', '3']);
    }
  });
  after(() => {
    rmRoot(root);
    rmSync(hostDir, { recursive: true, force: true });
  });

  /** Runs the shell script in a container and returns what each path did. */
  async function probe(script: string, extra: Partial<ContainerSpec> = {}): Promise<Record<string, string>> {
    const r = await rt.run({ command: ['sh', '-c', script], rootfs: root, ...extra });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    return outcomes(r.stdout.toString());
  }

  const withNodevLifted = <T>(fn: () => Promise<T>): Promise<T> => withLifted({ devNodes: true }, fn);

  // A bind of the host's /dev: its nodes are real devices; rootless can do this too.
  const hostDev: Partial<ContainerSpec> = { mounts: [{ type: 'bind', source: '/dev', target: '/hostdev', readonly: true }] };

  it('a bind mount of a directory with device nodes: they do not open (/dev itself still works)', async () => {
    assert.deepEqual(await probe(tryOpen(['/hostdev/null', '/dev/null']), hostDev), { '/hostdev/null': 'denied', '/dev/null': 'opened' });
  });

  it('twin: without nodev the bound node opens', async () => {
    assert.deepEqual(await withNodevLifted(() => probe(tryOpen(['/hostdev/null']), hostDev)), { '/hostdev/null': 'opened' });
  });

  if (rootless) {
    // Without CAP_MKNOD in the host's user namespace no node can be made in a rootfs or a writable
    // place; checked here, so the root-only tests below are not missing for nothing.
    it('(rootless: mknod of a device is refused, so only bound nodes exist)', async () => {
      const r = await rt.run({ command: ['sh', '-c', 'mknod /tmp/n c 1 3 2>&1 || true'], rootfs: root });
      assert.match(r.stdout.toString(), /Operation not permitted/);
    });
    return;
  }

  const made = ['/tmp/n', '/dev/shm/n', '/scratch/n', '/vol/n'];
  const makeNodes = made.map((p) => `mknod -m 666 ${p} c 1 3`).join(' && ');
  // MKNOD given outright: without a device cgroup (cgroupParent: false) the default drops it.
  const writable: Partial<ContainerSpec> = { capabilities: { add: ['MKNOD'] }, mounts: [{ type: 'tmpfs', target: '/scratch' }, { type: 'volume', source: 'corral-nodev-test', target: '/vol' }] };
  after(async () => { await rt.volumes.remove('corral-nodev-test').catch(() => {}); });

  it('a node in the image (rootfs), on the overlay and on a direct rootfs, and in the host root: they do not open', async () => {
    assert.deepEqual(await probe(tryOpen(['/devnode'])), { '/devnode': 'denied' });
    assert.deepEqual(await probe(tryOpen(['/devnode']), { rootfsWritable: 'direct' }), { '/devnode': 'denied' });
    const hostRoot = await rt.run({ command: ['/bin/sh', '-c', tryOpen([`${hostDir}/sub/devnode`])] });
    assert.deepEqual(outcomes(hostRoot.stdout.toString()), { [`${hostDir}/sub/devnode`]: 'denied' });
  });

  it('twin: without nodev the image node opens', async () => {
    await withNodevLifted(async () => {
      assert.deepEqual(await probe(tryOpen(['/devnode'])), { '/devnode': 'opened' });
      assert.deepEqual(await probe(tryOpen(['/devnode']), { rootfsWritable: 'direct' }), { '/devnode': 'opened' });
      const hostRoot = await rt.run({ command: ['/bin/sh', '-c', tryOpen([`${hostDir}/sub/devnode`])] });
      assert.deepEqual(outcomes(hostRoot.stdout.toString()), { [`${hostDir}/sub/devnode`]: 'opened' });
    });
  });

  it('a node made in /tmp, /dev/shm, a tmpfs or a volume does not open; one made in /dev does', async () => {
    const got = await probe(`${makeNodes} && mknod -m 666 /dev/n c 1 3 && ${tryOpen([...made, '/dev/n'])}`, writable);
    assert.deepEqual(got, { '/tmp/n': 'denied', '/dev/shm/n': 'denied', '/scratch/n': 'denied', '/vol/n': 'denied', '/dev/n': 'opened' });
  });

  it('twin: without nodev the nodes made there open', async () => {
    const got = await withNodevLifted(() => probe(`rm -f /vol/n && ${makeNodes} && ${tryOpen(made)}`, writable));
    assert.deepEqual(got, { '/tmp/n': 'opened', '/dev/shm/n': 'opened', '/scratch/n': 'opened', '/vol/n': 'opened' });
  });
});
