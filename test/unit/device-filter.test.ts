import assert from 'node:assert/strict';
import { deviceFilterInsns, encodeInsns, type BpfInsn } from '../../lib/cgroup/device-filter.ts';
import { BPF, bpfProgLoad } from '../../lib/sys/bpf.ts';
import { close } from '../../lib/sys/libc.ts';
import { DEFAULT_DEVICE_RULES } from '../../lib/container/devices.ts';
import { rootless } from '../helpers.ts';

// The prologue: r2 = type, r3 = access, r4 = major, r5 = minor from struct bpf_cgroup_dev_ctx.
const PROLOGUE: BpfInsn[] = [
  [0x61, 2, 1, 0, 0], [0x54, 2, 0, 0, 0xffff], [0x61, 3, 1, 0, 0], [0x74, 3, 0, 0, 16],
  [0x61, 4, 1, 4, 0], [0x61, 5, 1, 8, 0],
];
const ALLOW: BpfInsn[] = [[0xb7, 0, 0, 0, 1], [0x95, 0, 0, 0, 0]];
const DENY: BpfInsn[] = [[0xb7, 0, 0, 0, 0], [0x95, 0, 0, 0, 0]];

describe('device filter program', () => {
  it('denies everything for no rules', () => {
    assert.deepEqual(deviceFilterInsns([]), [...PROLOGUE, ...DENY]);
  });

  it('assembles one block per rule, each test jumping to the next block (golden)', () => {
    const insns = deviceFilterInsns([
      { type: 'c', major: 1, minor: 3, access: 'rwm' },
      { type: 'c', major: null, minor: null, access: 'm' },
      { type: 'b', major: 8, minor: null, access: 'rw' },
      { type: 'a', major: null, minor: null, access: 'rwm' },
    ]);
    assert.deepEqual(insns, [
      ...PROLOGUE,
      // c 1:3 rwm: type, major, minor; all access, so no access test
      [0x55, 2, 0, 4, 2], [0x55, 4, 0, 3, 1], [0x55, 5, 0, 2, 3], ...ALLOW,
      // c *:* m: type, then (access & m) == access
      [0x55, 2, 0, 5, 2], [0xbc, 1, 3, 0, 0], [0x54, 1, 0, 0, 1], [0x5d, 1, 3, 2, 0], ...ALLOW,
      // b 8:* rw
      [0x55, 2, 0, 6, 1], [0xbc, 1, 3, 0, 0], [0x54, 1, 0, 0, 6], [0x5d, 1, 3, 3, 0], [0x55, 4, 0, 2, 8], ...ALLOW,
      // a *:* rwm matches everything: nothing after it (the verifier refuses unreachable code)
      ...ALLOW,
    ]);
  });

  it('stops at a rule that matches everything', () => {
    const all = { type: 'a', major: null, minor: null, access: 'rwm' } as const;
    assert.deepEqual(deviceFilterInsns([all, { type: 'c', major: 1, minor: 3, access: 'rwm' }]), [...PROLOGUE, ...ALLOW]);
  });

  it('encodes struct bpf_insn: code, dst | src << 4, off, imm (little-endian)', () => {
    assert.equal(encodeInsns([[0x61, 2, 1, 0, 0], [0x55, 2, 0, 4, 2], [0x54, 2, 0, 0, 0xffff]]).toString('hex'),
      '6112000000000000' + '5502040002000000' + '54020000ffff0000');
  });

  it("the kernel's verifier accepts the default program, and one allowing everything", function () {
    if (rootless) this.skip(); // loading needs CAP_BPF
    for (const rules of [DEFAULT_DEVICE_RULES, [...DEFAULT_DEVICE_RULES, { type: 'a', major: null, minor: null, access: 'rwm' } as const]]) {
      const fd = bpfProgLoad(BPF.PROG_TYPE_CGROUP_DEVICE, encodeInsns(deviceFilterInsns(rules)), 'load a device filter');
      assert.ok(fd >= 0);
      close(fd);
    }
  });

  it("a program the verifier refuses is an error carrying the verifier's log", function () {
    if (rootless) this.skip();
    // r0 is never set before exit.
    assert.throws(() => bpfProgLoad(BPF.PROG_TYPE_CGROUP_DEVICE, encodeInsns([[0x95, 0, 0, 0, 0]]), 'load a broken program'),
      { code: 'EACCES', syscall: 'bpf', message: /^load a broken program: EACCES [^]*R0 !read_ok/ });
  });
});
