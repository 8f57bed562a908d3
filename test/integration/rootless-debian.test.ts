// Issue 12 with a real distro: Debian's minbase made by mmdebstrap from the Debian archive the
// machine's apt uses (cached in /var/tmp/corral-test-cache), imported, `id _apt`, the owners of
// _apt's files kept, `apt-get install` of a local .deb (apt drops to _apt: setgroups, seteuid 42),
// then a commit whose tar headers say 0/0 for what root inside wrote. As uid 65534 this needs a
// subordinate range (test/run.mjs gives one); as root it is the reference.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.ts';
import { callerIdMap, idMapHelpers, isSingleIdMap } from '../../lib/sys/id-map.ts';
import { removeTreeMapped } from '../../lib/fs/remove-mapped.ts';
import { layoutOf } from '../image-fixtures.ts';
import { layerHeaders, topLayerBlob } from '../image-store-contents.ts';
import { requirePrerequisite, rootless } from '../helpers.ts';

const CACHE = '/var/tmp/corral-test-cache';
const IMAGE_TAR = join(CACHE, 'debian-minbase-bookworm.tar');
const sh = (script: string) => ['/bin/sh', '-c', script];

function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The cached minbase tarball, made by mmdebstrap when missing (unshare mode when rootless). */
function debianTar(): string {
  if (existsSync(IMAGE_TAR)) return IMAGE_TAR;
  mkdirSync(CACHE, { recursive: true });
  if (!rootless) chmodSync(CACHE, 0o1777);
  const partial = `${IMAGE_TAR}.${process.pid}.tmp`;
  execFileSync('mmdebstrap', [...(rootless ? ['--mode=unshare'] : []), '--variant=minbase', 'bookworm', partial], { stdio: 'ignore', timeout: 900_000 });
  chmodSync(partial, 0o644);
  renameSync(partial, IMAGE_TAR);
  return IMAGE_TAR;
}

/** A .deb with one file, built by dpkg-deb. */
function probeDeb(work: string): string {
  const dir = join(work, 'deb');
  mkdirSync(join(dir, 'DEBIAN'), { recursive: true });
  mkdirSync(join(dir, 'usr/share/corral-probe'), { recursive: true });
  writeFileSync(join(dir, 'DEBIAN/control'), 'Package: corral-probe\nVersion: 1.0\nArchitecture: all\nMaintainer: corral <corral@example.org>\nDescription: a probe\n');
  writeFileSync(join(dir, 'usr/share/corral-probe/hello'), 'hello from the deb\n');
  const out = join(work, 'pkgs');
  mkdirSync(out);
  execFileSync('dpkg-deb', ['--root-owner-group', '--build', dir, join(out, 'corral-probe.deb')], { stdio: 'ignore' });
  chmodSync(out, 0o755);
  return out;
}


describe(`a Debian minbase image (${rootless ? 'rootless with a subordinate range' : 'root'})`, function () {
  this.timeout(900_000);
  let work: string;
  let state: string;
  let pkgs: string;
  let rt: Runtime;
  before(async function () {
    requirePrerequisite(this, hasCommand('mmdebstrap') && hasCommand('dpkg-deb') ? null : 'mmdebstrap and dpkg-deb (Debian: apt-get install mmdebstrap)');
    if (rootless) requirePrerequisite(this, isSingleIdMap(callerIdMap()) || !idMapHelpers() ? `a subordinate range for uid ${process.getuid!()} in /etc/subuid and /etc/subgid, and uidmap` : null);
    work = mkdtempSync(join(tmpdir(), 'corral-test-debian-'));
    chmodSync(work, 0o755);
    state = join(work, 'state');
    pkgs = probeDeb(work);
    rt = new Runtime({ root: state, cgroupParent: false });
    await rt.images.import(layoutOf(join(work, 'layout'), 'debian:minbase', [readFileSync(debianTar())]));
  });
  after(async () => {
    // Files the image's other users own (shifted into the range) go as root of a user namespace.
    if (work) await removeTreeMapped(work, rootless ? callerIdMap() : null);
  });

  it("knows _apt, and _apt's files keep their owner through import", async () => {
    const r = await rt.run({ image: 'debian:minbase', command: sh('id _apt; stat -c "%u:%g %a %n" /var/cache/apt/archives/partial /usr/bin/chage /etc/shadow'), network: 'none' }, { encoding: 'utf8' });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      'uid=42(_apt) gid=65534(nogroup) groups=65534(nogroup)',
      '42:0 700 /var/cache/apt/archives/partial',
      '0:42 2755 /usr/bin/chage',
      '0:42 640 /etc/shadow',
    ]);
  });

  it('installs a local .deb with apt-get, and the commit says 0/0 for what root wrote', async () => {
    const c = await rt.create({
      image: 'debian:minbase', network: 'none',
      command: sh('apt-get install -y /pkgs/corral-probe.deb && cat /usr/share/corral-probe/hello'),
      mounts: [{ type: 'bind', source: pkgs, target: '/pkgs', readonly: true }],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout!.on('data', (d: Buffer) => out.push(d));
    c.stderr!.on('data', (d: Buffer) => err.push(d));
    await c.start();
    const exit = await c.wait();
    assert.equal(exit.exitCode, 0, Buffer.concat(err).toString());
    assert.match(Buffer.concat(out).toString(), /hello from the deb/);
    assert.doesNotMatch(Buffer.concat(err).toString(), /setgroups|seteuid/);
    const { manifestDigest } = await c.commit({ ref: 'debian:probe' });
    await c.remove();
    const owners = new Map([...await layerHeaders(topLayerBlob(state, manifestDigest))].map(([name, h]) => [name, h.split(' ')[0]!]));
    assert.equal(owners.get('usr/share/corral-probe/hello'), '0:0');
    assert.equal(owners.get('var/lib/dpkg/status'), '0:0');
    assert.equal(owners.get('usr/'), '0:0');
    const hostOwned = [...owners].filter(([, o]) => rootless && o.split(':').includes(String(process.getuid!())));
    assert.deepEqual(hostOwned.filter(([name]) => !name.startsWith('var/cache/') && !name.startsWith('var/lib/apt/')), [], 'no entry says the host uid');
    const r = await rt.run({ image: 'debian:probe', command: ['cat', '/usr/share/corral-probe/hello'], network: 'none' }, { encoding: 'utf8' });
    assert.equal(r.stdout, 'hello from the deb\n');
  });
});
