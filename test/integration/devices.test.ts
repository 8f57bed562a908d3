// The device filter beyond the first process: exec'd processes, a host-root container, and a
// group whose filter cannot be attached (nothing is left behind).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, openSync, closeSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { create, run, Runtime } from '../../lib/index.ts';
import { findV2Mount } from '../../lib/cgroup/hierarchy.ts';
import { deviceFilterInsns, encodeInsns } from '../../lib/cgroup/device-filter.ts';
import { BPF, bpfProgAttach, bpfProgLoad } from '../../lib/sys/bpf.ts';
import { close } from '../../lib/sys/libc.ts';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';

const sh = (script: string) => ['/bin/sh', '-c', script];
// /dev/kmsg's numbers (c 1:11): fixed, and not on the default list.
const openKmsg = 'mknod /dev/k c 1 11 && { true > /dev/k && echo opened || echo refused; }';

describe(`device filter (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  before(() => {
    root = makeBusyboxRoot();
  });
  after(() => rmRoot(root));

  if (rootless) return;

  it("holds exec'd processes too (they join the container's group)", async () => {
    await using c = await create({ command: ['sleep', '100'], rootfs: root });
    await c.start();
    const r = await c.exec(sh(openKmsg));
    assert.equal(r.stdout.toString().trim(), 'refused', r.stderr.toString());
  });

  it('holds a container on the host root (no rootfs) too', async () => {
    const r = await run({ command: sh(openKmsg) });
    assert.equal(r.stdout.toString().trim(), 'refused', r.stderr.toString());
    const allowed = await run({ command: sh(openKmsg), devices: [{ type: 'c', major: 1, minor: 11, access: 'w' }] });
    assert.equal(allowed.stdout.toString().trim(), 'opened', allowed.stderr.toString());
  });

  it('a filter that cannot be attached fails the create, naming the step, and leaves no group', async () => {
    // A program attached without BPF_F_ALLOW_MULTI on the parent forbids programs below it.
    const prog = bpfProgLoad(BPF.PROG_TYPE_CGROUP_DEVICE, encodeInsns(deviceFilterInsns([{ type: 'a', major: null, minor: null, access: 'rwm' }])), 'load an allow-all filter');
    const parent = join(findV2Mount()!, `corral-test-devices-${process.pid}`);
    mkdirSync(parent);
    const dirFd = openSync(parent, 'r');
    try {
      bpfProgAttach(dirFd, prog, BPF.CGROUP_DEVICE, 0, parent, 'attach an exclusive filter');
      const rt = new Runtime({ cgroupParent: parent });
      await assert.rejects(rt.run({ command: ['true'], rootfs: root, id: 'devices-attach-fails' }), {
        code: 'EPERM', syscall: 'bpf', step: /^attach the device filter to .*devices-attach-fails$/,
      });
      const groups = readdirSync(parent, { withFileTypes: true }).filter((e) => e.isDirectory());
      for (const g of groups) assert.deepEqual(readdirSync(join(parent, g.name), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name), []);
    } finally {
      close(prog);
      closeSync(dirFd);
      for (const g of readdirSync(parent, { withFileTypes: true })) if (g.isDirectory()) rmdirSync(join(parent, g.name));
      rmdirSync(parent);
    }
    assert.equal(existsSync(parent), false);
  });
});
