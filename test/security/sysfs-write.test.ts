// Writing /sys (uevent_helper runs a host program as root; power/state suspends the host): the
// container's sysfs is mounted read-only, and without CAP_SYS_ADMIN it cannot be remounted.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rootless } from '../helpers.ts';
import { hostileRoot, mode } from './hostile.ts';

// The loopback's MTU in the container's own network namespace: harmless to write, so the twin can.
const OWN = '/sys/class/net/lo/mtu';

describe(`security: write /sys (${mode})`, () => {
  const h = hostileRoot();

  it('opening for write fails with EROFS', async () => {
    // The host-wide files are only opened, never written: if the defence broke, a write would act
    // on this host.
    const targets = ['/sys/kernel/uevent_helper', '/sys/kernel/profiling', '/sys/power/state'].filter((p) => existsSync(p));
    assert.ok(targets.length > 0, 'no host-wide sysfs attribute to try on this kernel');
    for (const target of targets) assert.equal(await h.probe(['open-write', target]), 'EROFS', target);
    assert.equal(await h.probe(['write', OWN, '1500']), 'EROFS', OWN);
  });

  it('twin: with SYS_ADMIN and no seccomp filter, as root, /sys can be remounted read-write and written', async () => {
    const lifted = { capabilities: { add: ['SYS_ADMIN', 'NET_ADMIN'] }, seccomp: 'unconfined' as const };
    const r = await h.sh(`mount -o remount,rw /sys && /bin/probe write ${OWN} 1500`, lifted);
    // Rootless the kernel keeps the read-only flag of a sysfs the user namespace did not get
    // from a privileged mount: the remount itself is refused.
    if (rootless) assert.match(r.stderr.toString(), /permission denied/);
    else assert.equal(r.stdout.toString().trim(), 'ok', r.stderr.toString());
  });
});
