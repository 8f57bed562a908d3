import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, create, CorralError } from '../../lib/index.ts';
import { makeBusyboxRoot, quietFds, rmRoot, rootless, settledFds, zombieChildren } from '../helpers.ts';

describe(`errors (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  before(() => {
    root = makeBusyboxRoot();
    writeFileSync(join(root, 'bin/not-executable'), '#!/bin/sh\necho no\n');
    chmodSync(join(root, 'bin/not-executable'), 0o644);
  });
  after(() => rmRoot(root));

  it('rejects a program missing from PATH with ENOENT naming it', async () => {
    const err = await run({ command: ['no-such-program'], rootfs: root }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof CorralError);
    assert.equal(err.code, 'ENOENT');
    assert.equal(err.errno, 2);
    assert.equal(err.path, 'no-such-program');
    assert.match(err.message, /no-such-program/);
    assert.match(err.step!, /resolve command/);
  });

  it('rejects a non-executable program with EACCES', async () => {
    await assert.rejects(run({ command: ['not-executable'], rootfs: root }), { code: 'EACCES', path: 'not-executable' });
    await assert.rejects(run({ command: ['/bin/not-executable'], rootfs: root }), { code: 'EACCES' });
  });

  it('create() reports a missing program before anything runs', async () => {
    await assert.rejects(create({ command: ['no-such-program'], rootfs: root }), { code: 'ENOENT', path: 'no-such-program' });
  });

  it('rejects a missing rootfs before anything is created', async () => {
    const before = await quietFds();
    await assert.rejects(run({ command: ['true'], rootfs: join(root, 'missing') }), (e: CorralError) => {
      assert.equal(e.code, 'ENOENT');
      assert.equal(e.path, join(root, 'missing'));
      assert.match(e.message, /rootfs/);
      return true;
    });
    assert.deepEqual(await settledFds(before), before);
  });

  it('rejects a rootfs that is a file', async () => {
    await assert.rejects(run({ command: ['true'], rootfs: join(root, 'etc/marker') }), { code: 'ENOTDIR', path: join(root, 'etc/marker') });
  });

  it('rejects a bad spec with ERR_INVALID_SPEC', async () => {
    await assert.rejects(run({ command: [] }), { code: 'ERR_INVALID_SPEC' });
    await assert.rejects(run({ command: ['true'], rootfs: 'relative/path' }), { code: 'ERR_INVALID_SPEC' });
    await assert.rejects(run({ command: ['true'], network: 'no such/network' }), { code: 'ERR_INVALID_SPEC' });
    await assert.rejects(run({ command: ['true'], stdio: 'tty' as 'pipe' }), { code: 'ERR_INVALID_SPEC' });
    await assert.rejects(run({ command: ['true'], hostname: 'bad host' }), { code: 'ERR_INVALID_SPEC' });
    await assert.rejects(run({ command: ['true'], user: { uid: -1, gid: 0 } }), { code: 'ERR_INVALID_SPEC' });
    await assert.rejects(run({ command: ['true'], comand: ['x'] } as never), { code: 'ERR_INVALID_SPEC', message: /comand/ });
  });

  it('names the failing setup step, its path and errno', async () => {
    // cwd that does not exist inside the rootfs
    const err = await run({ command: ['true'], rootfs: root, cwd: '/nowhere' }).then(() => null, (e: unknown) => e as CorralError);
    assert.ok(err);
    assert.equal(err.code, 'ENOENT');
    assert.equal(err.syscall, 'chdir');
    assert.equal(err.path, '/nowhere');
    assert.match(err.step!, /change directory to \/nowhere/);
  });

  it('leaves no process or fd behind after failed launches', async () => {
    await run({ command: ['true'], rootfs: root });
    const before = await quietFds();
    for (let i = 0; i < 20; i++) {
      await assert.rejects(run({ command: ['no-such-program'], rootfs: root }), { code: 'ENOENT', step: /resolve command 'no-such-program'/ });
      await assert.rejects(create({ command: ['no-such-program'], rootfs: root }), { code: 'ENOENT', step: /resolve command 'no-such-program'/ });
    }
    assert.deepEqual(await settledFds(before), before);
    assert.deepEqual(zombieChildren(), []);
  });
});
