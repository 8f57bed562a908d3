import assert from 'node:assert/strict';
import { run, create, Runtime } from '../../lib/index.ts';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';

const sh = (script: string) => ['/bin/sh', '-c', script];

describe(`run and exec options: maxBuffer, encoding (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  before(() => {
    root = makeBusyboxRoot();
  });
  after(() => rmRoot(root));

  it('kills a container whose output passes maxBuffer and keeps exactly maxBuffer bytes', async () => {
    const r = await run({ command: sh('yes corral'), rootfs: root }, { maxBuffer: 1 << 20 });
    assert.equal(r.maxBufferExceeded, true);
    assert.equal(r.signal, 'SIGKILL');
    assert.equal(r.stdout.length, 1 << 20);
    assert.match(r.stdout.subarray(0, 14).toString(), /^corral\ncorral\n$/);
  });

  it('counts stderr against maxBuffer too, and leaves output under it alone', async () => {
    const over = await run({ command: sh('head -c 5000 /dev/zero >&2; sleep 100'), rootfs: root }, { maxBuffer: 4096 });
    assert.equal(over.maxBufferExceeded, true);
    assert.equal(over.stderr.length, 4096);
    const under = await run({ command: sh('head -c 4096 /dev/zero'), rootfs: root }, { maxBuffer: 4096 });
    assert.equal(under.maxBufferExceeded, false);
    assert.equal(under.exitCode, 0);
    assert.equal(under.stdout.length, 4096);
  });

  it("gives strings with encoding 'utf8', Buffers by default", async () => {
    const text = await run({ command: sh('printf "h\\303\\251llo"; printf err >&2'), rootfs: root }, { encoding: 'utf8' });
    assert.equal(text.stdout, 'héllo');
    assert.equal(text.stderr, 'err');
    const bytes = await run({ command: sh('printf hi'), rootfs: root });
    assert.ok(Buffer.isBuffer(bytes.stdout));
  });

  it('applies both to exec', async () => {
    await using c = await create({ command: ['sleep', '100'], rootfs: root });
    await c.start();
    const text = await c.exec(['echo', 'inside'], { encoding: 'utf8' });
    assert.equal(text.stdout, 'inside\n');
    const big = await c.exec(sh('yes'), { maxBuffer: 1000 });
    assert.equal(big.maxBufferExceeded, true);
    assert.equal(big.stdout.length, 1000);
    assert.equal(c.status, 'running');
  });

  it('rejects bad values before anything is created', async () => {
    await assert.rejects(run({ command: ['true'], rootfs: root }, { maxBuffer: -1 }), { code: 'ERR_INVALID_ARG_VALUE' });
    await assert.rejects(run({ command: ['true'], rootfs: root }, { encoding: 'klingon' as BufferEncoding }), { code: 'ERR_INVALID_ARG_VALUE' });
  });
});

describe(`a user the container cannot map (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  before(() => {
    root = makeBusyboxRoot();
  });
  after(() => rmRoot(root));

  it('is refused before anything is created with ERR_ROOTLESS_IDS in a user namespace with the single mapping', async () => {
    const single = new Runtime({ idMap: 'single' });
    await assert.rejects(single.run({ command: ['id'], rootfs: root, user: { uid: 1000, gid: 1000 }, namespaces: { user: true } }), {
      code: 'ERR_ROOTLESS_IDS', message: /user 1000:1000 cannot exist in this container: uid 1000 and gid 1000 are not mapped: .*\/etc\/subuid and \/etc\/subgid.*uidmap/,
    });
    const r = await single.run({ command: ['id', '-u'], rootfs: root, user: { uid: 0, gid: 0 }, namespaces: { user: true } });
    assert.equal(r.stdout.toString(), '0\n');
  });
});
