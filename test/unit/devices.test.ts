import assert from 'node:assert/strict';
import { deviceRules, DEFAULT_DEVICE_RULES } from '../../lib/container/devices.ts';
import { resolveSpec } from '../../lib/container/spec.ts';

const MKNOD = 1n << 27n;

describe('spec.devices', () => {
  it("defaults to runc's (Docker's) list: mknod of anything, rw of the standard nodes", () => {
    assert.deepEqual(deviceRules(undefined), DEFAULT_DEVICE_RULES);
    assert.deepEqual(DEFAULT_DEVICE_RULES.map((r) => `${r.type} ${r.major ?? '*'}:${r.minor ?? '*'} ${r.access}`), [
      'c *:* m', 'b *:* m', 'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm',
      'c 5:0 rwm', 'c 5:2 rwm', 'c 136:* rwm', 'c 10:200 rwm',
    ]);
  });

  it('adds host nodes by path and device classes after the defaults', () => {
    const rules = deviceRules([{ path: '/dev/null', access: 'r' }, { type: 'b', major: 8 }, { type: 'c', major: 10, minor: '*', access: 'rw' }]);
    assert.deepEqual(rules.slice(DEFAULT_DEVICE_RULES.length), [
      { type: 'c', major: 1, minor: 3, access: 'r' },
      { type: 'b', major: 8, minor: null, access: 'rwm' },
      { type: 'c', major: 10, minor: null, access: 'rw' },
    ]);
  });

  it('refuses bad entries with ERR_INVALID_SPEC before anything is made', () => {
    for (const bad of [
      'x', [null], [{ path: 'dev/null' }], [{ path: '/etc/passwd' }], [{ path: '/nonexistent' }],
      [{ path: '/dev/null', type: 'c' }], [{ type: 'x' }], [{ type: 'c', major: -1 }], [{ type: 'c', major: 4096 }],
      [{ type: 'c', minor: 1.5 }], [{ type: 'c', access: 'rr' }], [{ type: 'c', access: 'x' }], [{ type: 'c', access: '' }],
      [{ type: 'c', allow: false }],
    ]) {
      assert.throws(() => resolveSpec({ command: ['true'], devices: bad as never }, false), { code: 'ERR_INVALID_SPEC' }, JSON.stringify(bad));
    }
  });

  it('as root, the default capabilities keep MKNOD only when the device filter is there', () => {
    assert.equal(resolveSpec({ command: ['true'] }, false, null, true).capabilities & MKNOD, MKNOD);
    assert.equal(resolveSpec({ command: ['true'] }, false, null, false).capabilities & MKNOD, 0n);
    // Asked for explicitly, it is kept; rootless, the user namespace denies device nodes anyway.
    assert.equal(resolveSpec({ command: ['true'], capabilities: { add: ['MKNOD'] } }, false, null, false).capabilities & MKNOD, MKNOD);
    assert.equal(resolveSpec({ command: ['true'] }, true, null, false).capabilities & MKNOD, MKNOD);
  });
});
