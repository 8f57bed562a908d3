// Issue 12: a rootless user namespace with the caller's subordinate range, and owners kept in both
// directions: image owners shifted into the range on unpack, and mapped back on commit (root
// inside is 0/0 in the layer whatever the caller's host uid). The same assertions run as root, so
// the rootless commit is compared entry by entry with the same commit made as root.
// test/run.mjs gives uid 65534 a range in /etc/subuid and /etc/subgid for the rootless pass.
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.ts';
import { callerIdMap, toHost } from '../../lib/sys/id-map.ts';
import { layoutOf } from '../image-fixtures.ts';
import { packTar } from '../tar-fixtures.ts';
import { eventually, rootless, singleIdRootless } from '../helpers.ts';
import { layerHeaders, storedLayers, topLayerBlob } from '../image-store-contents.ts';

const sh = (script: string) => ['/bin/sh', '-c', script];
const MTIME = new Date('2024-01-01T00:00:00Z');

/** A busybox image whose files have several owners, as a distro's do: root, _apt (100:101),
 * a user 1000, a setgid binary of group 42. */
async function manyOwnersLayer(): Promise<Buffer> {
  const owned = (uid: number, gid: number) => ({ uid, gid });
  const applets = ['sh', 'ls', 'id', 'cat', 'touch', 'mkdir', 'echo', 'true', 'chown'];
  return packTar([
    { name: 'bin/', type: 'directory', mode: 0o755, ...owned(0, 0) },
    { name: 'bin/busybox', mode: 0o755, content: readFileSync('/bin/busybox'), ...owned(0, 0) },
    ...applets.map((a) => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox', ...owned(0, 0) })),
    { name: 'etc/', type: 'directory', mode: 0o755, ...owned(0, 0) },
    { name: 'etc/passwd', mode: 0o644, content: 'root:x:0:0::/root:/bin/sh\n_apt:x:100:65534::/nonexistent:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n', ...owned(0, 0) },
    { name: 'etc/group', mode: 0o644, content: 'root:x:0:\nshadow:x:42:\n_apt:x:101:\napp:x:1000:\n', ...owned(0, 0) },
    { name: 'var/', type: 'directory', mode: 0o755, ...owned(0, 0) },
    { name: 'var/lib/', type: 'directory', mode: 0o755, ...owned(0, 0) },
    { name: 'var/lib/apt/', type: 'directory', mode: 0o755, ...owned(100, 101) },
    { name: 'var/lib/apt/lists', mode: 0o644, content: 'apt\n', ...owned(100, 101) },
    { name: 'var/lib/apt/link', type: 'symlink', linkname: 'lists', ...owned(100, 101) },
    { name: 'home/', type: 'directory', mode: 0o755, ...owned(0, 0) },
    { name: 'home/app/', type: 'directory', mode: 0o700, ...owned(1000, 1000) },
    { name: 'home/app/.profile', mode: 0o600, content: 'x\n', ...owned(1000, 1000) },
    { name: 'usr/', type: 'directory', mode: 0o755, ...owned(0, 0) },
    { name: 'usr/bin/', type: 'directory', mode: 0o755, ...owned(0, 0) },
    { name: 'usr/bin/chage', mode: 0o2755, content: 'setgid\n', ...owned(0, 42) },
    { name: 'tmp/', type: 'directory', mode: 0o1777, ...owned(0, 0) },
    ...['proc/', 'dev/', 'sys/'].map((name) => ({ name, type: 'directory', mode: 0o755, ...owned(0, 0) })),
  ], MTIME);
}



// Where the caller has a range (test/run.mjs grants uid 65534 one for the rootless pass), or as root.
if (!singleIdRootless) describe(`rootless ids: the subordinate range, owners kept both ways (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(120_000);
  let work: string;
  let state: string;
  let rt: Runtime;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'corral-test-ids-'));
    state = join(work, 'state');
    rt = new Runtime({ root: state, cgroupParent: false });
    await rt.images.import(layoutOf(join(work, 'layout'), 'owners:1', [await manyOwnersLayer()]));
  });
  after(async () => {
    if (!rt) return;
    for (const ref of rt.images.list().flatMap((i) => i.tags)) await rt.images.remove(ref).catch(() => {});
    await rt.images.gc();
    assert.deepEqual(storedLayers(state), [], 'removing the images and gc take every shifted layer away');
    rmSync(work, { recursive: true, force: true });
  });

  it('shows the image owners inside (ls -ln), and runs user 100 as 100 with its groups', async () => {
    const r = await rt.run({ image: 'owners:1', command: sh('ls -lnd /var/lib/apt /var/lib/apt/lists /home/app /usr/bin/chage; id'), user: { uid: 100, gid: 101, groups: [42] } }, { encoding: 'utf8' });
    assert.equal(r.exitCode, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => l.split(/\s+/));
    assert.deepEqual(lines.slice(0, 4).map((f) => [f[0], f[2], f[3], f.at(-1)]), [
      ['drwx------', '1000', '1000', '/home/app'],
      ['-rwxr-sr-x', '0', '42', '/usr/bin/chage'],
      ['drwxr-xr-x', '100', '101', '/var/lib/apt'],
      ['-rw-r--r--', '100', '101', '/var/lib/apt/lists'],
    ]);
    assert.match(lines[4]!.join(' '), /^uid=100\(_apt\) gid=101\(_apt\) groups=42\(shadow\)/);
  });

  it(rootless ? 'stores the image owners shifted into the subordinate range on disk' : 'stores the image owners as they are', () => {
    const layer = readdirLayer(state);
    const map = callerIdMap();
    const host = (uid: number) => (rootless ? toHost(map.uids, uid) : uid);
    assert.equal(lstatSync(join(layer, 'var/lib/apt/lists')).uid, host(100));
    assert.equal(lstatSync(join(layer, 'var/lib/apt/link')).uid, host(100), 'a symlink is shifted itself, not its target');
    assert.equal(lstatSync(join(layer, 'home/app')).uid, host(1000));
    assert.equal(lstatSync(join(layer, 'etc/passwd')).uid, rootless ? process.getuid!() : 0);
    assert.equal(lstatSync(join(layer, 'usr/bin/chage')).mode & 0o7777, 0o2755, 'the chown keeps the setgid bit');
  });

  it('commits with the owners inside, entry by entry the same as root', async () => {
    const c = await rt.create({ image: 'owners:1', command: sh('echo a > /var/lib/apt/new && echo b > /home/app/.profile'), user: { uid: 100, gid: 101 } });
    await c.start();
    assert.equal((await c.wait()).exitCode, 1, 'user 100 cannot write the home of 1000');
    const root = await rt.create({ image: 'owners:1', command: sh('echo a > /var/lib/apt/new2 && chown 100:101 /var/lib/apt/new2 && echo r > /etc/root-file && echo b >> /home/app/.profile && mkdir /home/app/d') });
    await root.start();
    assert.equal((await root.wait()).exitCode, 0);
    const { manifestDigest } = await root.commit({ ref: 'owners:committed' });
    await root.remove();
    await c.remove();
    const owners = await layerHeaders(topLayerBlob(state, manifestDigest));
    assert.deepEqual(Object.fromEntries(owners), {
      'etc/': '0:0 755',
      'etc/root-file': '0:0 644',
      'home/': '0:0 755',
      'home/app/': '1000:1000 700',
      'home/app/.profile': '1000:1000 600',
      'home/app/d/': '0:0 755',
      'var/': '0:0 755',
      'var/lib/': '0:0 755',
      'var/lib/apt/': '100:101 755',
      'var/lib/apt/new2': '100:101 644',
    });
    // A removed container leaves no layer behind, even with files of other users in it.
    assert.ok(await eventually(() => readdirSafe(join(state, 'containers')).every((d) => readdirSafe(join(state, 'containers', d)).length === 0)));
  });

  // Rootless, containers are made in one user namespace per process and map, mapped once
  // (lib/spawn/shared-user-namespace.ts: no newuidmap at a start); 'per-container' maps a fresh one.
  if (rootless) it("makes its containers in one shared user namespace, or in one each with userNamespace 'per-container'", async () => {
    const perContainer = new Runtime({ root: state, cgroupParent: false, userNamespace: 'per-container' });
    const userns = async (r: Runtime): Promise<string> => {
      const got = await r.run({ image: 'owners:1', command: sh('cat /proc/self/uid_map; ls -l /proc/self/ns/user') }, { encoding: 'utf8' });
      assert.equal(got.exitCode, 0, got.stderr);
      const maps = got.stdout.trim().split('\n').slice(0, -1);
      assert.deepEqual(maps.map((l) => l!.trim().split(/\s+/).map(Number)), callerIdMap().uids.map((u) => [u.inside, u.outside, u.count]));
      return got.stdout.trim().split('-> ')[1]!;
    };
    const shared = [await userns(rt), await userns(rt)];
    const own = [await userns(perContainer), await userns(perContainer)];
    assert.equal(shared[0], shared[1]);
    assert.equal(new Set([shared[0], ...own]).size, 3, `${shared[0]} ${own.join(' ')}`);
  });

  it('runs a detached container with the range too (its supervisor maps each restart), and a later process commits it the same', async () => {
    const script = 'id -u; ls -lnd /var/lib/apt; echo a >> /var/lib/apt/lists; exit 3';
    const c = await rt.run({ image: 'owners:1', command: sh(script), user: { uid: 100, gid: 101 }, detached: true, restart: 'on-failure:1' });
    assert.deepEqual(await c.wait(), { exitCode: 3, signal: null });
    const lines: string[][] = [];
    for await (const e of c.logs()) lines.push(e.log.trim().split(/\s+/));
    // uid, then the mode and owner of /var/lib/apt: in the run and in the restart
    assert.deepEqual(lines.map((f) => (f.length === 1 ? f : [f[0], f[2], f[3]])), [['100'], ['drwxr-xr-x', '100', '101'], ['100'], ['drwxr-xr-x', '100', '101']]);
    // Another process's handle: its map comes from the saved state, not from that runtime's own.
    const later = new Runtime({ root: state, cgroupParent: false, idMap: 'single' });
    const { manifestDigest } = await later.get(c.id)!.commit({ ref: 'owners:detached' });
    await later.get(c.id)!.remove();
    // (var/ only: the layer may also hold etc/, the parent of the container's own /etc files.)
    const written = [...await layerHeaders(topLayerBlob(state, manifestDigest))].filter(([name]) => name.startsWith('var/'));
    assert.deepEqual(Object.fromEntries(written), {
      'var/': '0:0 755', 'var/lib/': '0:0 755', 'var/lib/apt/': '100:101 755', 'var/lib/apt/lists': '100:101 644',
    });
  });
});

// As root a user namespace keeps the single mapping and every id exists: nothing to refuse there.
// 'auto' is the single mapping where the caller has no range (no /etc/subuid and /etc/subgid line,
// or no uidmap), as in the single-id pass of test/run.mjs and for most users who never set one up.
const withoutRange = singleIdRootless ? (['single', 'auto'] as const) : rootless ? (['single'] as const) : [];
for (const idMap of withoutRange) describe(`rootless ids without a range (rootless, idMap ${idMap})`, function () {
  this.timeout(60_000);
  let work: string;
  let rt: Runtime;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), `corral-test-ids-${idMap}-`));
    rt = new Runtime({ root: join(work, 'state'), cgroupParent: false, idMap });
    await rt.images.import(layoutOf(join(work, 'layout'), 'owners:1', [await manyOwnersLayer()]));
  });
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('refuses user 100 up front with ERR_ROOTLESS_IDS naming the id and how to get a range', async () => {
    await assert.rejects(rt.run({ image: 'owners:1', command: ['id'], user: { uid: 100, gid: 101 } }), (e: Error & { code: string }) =>
      e.code === 'ERR_ROOTLESS_IDS' && /uid 100 and gid 101 are not mapped/.test(e.message) && /\/etc\/subuid/.test(e.message) && /uidmap/.test(e.message));
    assert.deepEqual(readdirSafe(join(work, 'state', 'containers')).flatMap((d) => readdirSafe(join(work, 'state', 'containers', d))), []);
  });

  it("imports an image of many owners as root's files and runs it as root", async () => {
    const r = await rt.run({ image: 'owners:1', command: sh('ls -lnd /home/app /var/lib/apt; id -u') }, { encoding: 'utf8' });
    assert.equal(r.exitCode, 0, r.stderr);
    const [home, apt, uid] = r.stdout.trim().split('\n').map((l) => l.split(/\s+/));
    assert.deepEqual([home![2], home![3], home!.at(-1)], ['0', '0', '/home/app'], 'owned by 1000:1000 in the image');
    assert.deepEqual([apt![2], apt![3], apt!.at(-1)], ['0', '0', '/var/lib/apt'], 'owned by 100:101 in the image');
    assert.deepEqual(uid, ['0']);
  });

  it('runs root-only work with the single mapping, and a commit says 0/0 for root, not the host uid', async () => {
    const c = await rt.create({ image: 'owners:1', command: sh('id -u; echo r > /etc/root-file') });
    await c.start();
    assert.equal((await c.wait()).exitCode, 0);
    const { manifestDigest } = await c.commit({ ref: `owners:${idMap}` });
    await c.remove();
    const owners = await layerHeaders(topLayerBlob(join(work, 'state'), manifestDigest));
    assert.deepEqual(Object.fromEntries(owners), { 'etc/': '0:0 755', 'etc/root-file': '0:0 644' });
  });
});

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The contents directory of the one unpacked layer of the store. */
function readdirLayer(state: string): string {
  const [name] = storedLayers(state);
  return join(state, 'images/layers', name!, 'fs');
}
