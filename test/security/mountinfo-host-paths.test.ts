// Issue 10 item 12: a container reads /proc/self/mountinfo, where the overlay under its root listed
// the host paths of its layers (lowerdir=, upperdir=, workdir= under <root>/containers/...). The
// overlay is now made from fds (every layer a detached clone: the kernel names each by its path
// inside the clone, "/", "/upper", "/work"); the twin mounts it from paths, as kernels that take no
// layers by fd need (lib/fs/overlay-probe.ts), and the host path shows. What no mount API hides:
// a bind's or a volume's root field, its path inside the filesystem that holds it (the README's
// Security section says so); its last test pins that down.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Runtime, type ContainerSpec } from '../../lib/index.ts';
import { busyboxLayout, deriveImage } from '../image-fixtures.ts';
import { makeBusyboxRoot, removeWork, rmRoot, rootless } from '../helpers.ts';
import { withLifted } from './lifted.ts';

/** One line of mountinfo: its mount point, root field, and the options after the separator. */
interface MountLine {
  root: string;
  mountPoint: string;
  fstype: string;
  source: string;
  superOptions: string;
  line: string;
}

function parseMountinfo(text: string): MountLine[] {
  return text.trim().split('\n').map((line) => {
    const [left, right] = line.split(' - ');
    const fields = left!.split(' ');
    const [fstype, source, superOptions] = right!.split(' ');
    return { root: fields[3]!, mountPoint: fields[4]!, fstype: fstype!, source: source!, superOptions: superOptions!, line };
  });
}

describe(`security: /proc/self/mountinfo names no host path of the container's layers (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(60_000);
  let work: string;
  let rt: Runtime;
  let rootfs: string;
  let hostDir: string;

  before(async () => {
    work = realpathSync(mkdtempSync(join(tmpdir(), 'corral-sec-mountinfo-')));
    rt = new Runtime({ root: join(work, 'runtime'), cgroupParent: false });
    mkdirSync(join(work, 'img'));
    const layout = busyboxLayout(join(work, 'img'));
    deriveImage(join(work, 'img'), layout, 'base', 'two', { 'etc/second': 'a second layer\n' });
    await rt.images.import(layout, { format: 'oci-layout' });
    rootfs = makeBusyboxRoot();
    hostDir = join(work, 'bound');
    mkdirSync(hostDir);
  });
  after(async () => {
    await rt.volumes.remove('corral-mountinfo-test').catch(() => {});
    rmRoot(rootfs);
    await removeWork(work);
  });

  /** The mountinfo the container's first process reads: from run(), or from an exec into a
   * created and started container (its writable layer on disk, under the runtime root). */
  async function mountinfo(how: 'run' | 'create', spec: Partial<ContainerSpec>): Promise<MountLine[]> {
    const command = ['cat', '/proc/self/mountinfo'];
    if (how === 'run') {
      const r = await rt.run({ command, ...spec });
      assert.equal(r.exitCode, 0, r.stderr.toString());
      return parseMountinfo(r.stdout.toString());
    }
    const c = await rt.create({ command: ['sleep', '100'], ...spec });
    try {
      await c.start();
      const r = await c.exec(command);
      assert.equal(r.exitCode, 0, r.stderr.toString());
      return parseMountinfo(r.stdout.toString());
    } finally {
      await c.remove({ force: true });
    }
  }

  /** The overlay under the container's root. */
  function rootOverlay(lines: MountLine[]): MountLine {
    const root = lines.find((l) => l.mountPoint === '/');
    assert.ok(root, 'no mount on /');
    assert.equal(root.fstype, 'overlay', root.line);
    return root;
  }

  /** The host paths a container must not learn: the work directory (runtime root, layers,
   * writable layers) and the rootfs. */
  const hostPaths = (): string[] => [work, rootfs];

  function assertNoHostPath(lines: MountLine[]): void {
    for (const l of lines) for (const p of hostPaths()) assert.ok(!l.line.includes(p), `mountinfo names ${p}: ${l.line}`);
  }

  const image: Partial<ContainerSpec> = { image: 'two:latest' };
  const fromFds = /(^|,)lowerdir\+=\/(,lowerdir\+=\/)*,upperdir=\/upper,workdir=\/work(,|$)/;

  it('run() of an image (writable layer in memory): each layer is "/", the upper "/upper"', async () => {
    const lines = await mountinfo('run', image);
    assert.match(rootOverlay(lines).superOptions, fromFds);
    assert.equal(rootOverlay(lines).superOptions.match(/lowerdir\+=/g)?.length, 2, 'one lowerdir+ per image layer');
    assertNoHostPath(lines);
  });

  it('create() of an image (writable layer on disk under the runtime root): no host path either', async () => {
    const lines = await mountinfo('create', image);
    assert.match(rootOverlay(lines).superOptions, fromFds);
    assertNoHostPath(lines);
  });

  it('run() of a rootfs directory: the lower is "/", not the rootfs path', async () => {
    const lines = await mountinfo('run', { rootfs });
    assert.match(rootOverlay(lines).superOptions, fromFds);
    assertNoHostPath(lines);
  });

  it('twin: mounted from paths, the writable layer shows its host path under the runtime root', async () => {
    const lines = await withLifted({ overlayFromPaths: true }, () => mountinfo('create', image));
    const options = rootOverlay(lines).superOptions;
    const upper = /(?:^|,)upperdir=([^,]+)/.exec(options)?.[1] ?? '';
    assert.ok(upper.startsWith(join(work, 'runtime', 'containers')) && upper.endsWith('/upper'), `upperdir: ${options}`);
  });

  it('what no mount API hides: a bind\'s and a volume\'s root field is its path inside its filesystem', async () => {
    const lines = await mountinfo('run', {
      rootfs,
      mounts: [{ type: 'bind', source: hostDir, target: '/bound' }, { type: 'volume', source: 'corral-mountinfo-test', target: '/vol' }],
    });
    assertNoHostPath(lines.filter((l) => l.mountPoint !== '/bound' && l.mountPoint !== '/vol'));
    const bound = lines.find((l) => l.mountPoint === '/bound');
    const filesystemTop = execFileSync('findmnt', ['--noheadings', '--output', 'TARGET', '--target', hostDir], { encoding: 'utf8' }).trim();
    assert.equal(bound?.root, `/${relative(filesystemTop, hostDir)}`, bound?.line);
    const volume = lines.find((l) => l.mountPoint === '/vol');
    assert.ok(volume && volume.root.startsWith(`/${relative(filesystemTop, join(work, 'runtime'))}/`), volume?.line);
    // The source field is the filesystem's device, never the bound path.
    assert.ok(bound && !bound.source.includes(hostDir) && !volume.source.includes(work), `${bound?.line}\n${volume.line}`);
  });
});
