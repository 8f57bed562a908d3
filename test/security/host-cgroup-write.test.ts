// The container never gets write access to the host's cgroups: the host's cgroup tree is not
// mounted inside, and mounting one needs CAP_SYS_ADMIN. Once mounted, enabling a controller
// ('+pids' to cgroup.subtree_control) would act on a host cgroup: the group the container was
// started from, the root of its cgroup namespace.
import assert from 'node:assert/strict';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { availableControllers, findV2Mount, ownV2Path } from '../../lib/cgroup/hierarchy.ts';
import { hostileRoot, mode } from './hostile.ts';

/** Whether this process may open path for writing. */
function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

describe(`security: write a host cgroup file (${mode})`, () => {
  const h = hostileRoot();
  const mount = findV2Mount();

  it('the host hierarchy is not there, and a new cgroup2 mount is refused', async () => {
    assert.ok(mount, 'no cgroup v2 hierarchy on this host');
    assert.equal(await h.probe(['write', `${mount}/cgroup.subtree_control`, '+pids']), 'ENOENT');
    assert.equal(await h.probe(['cgroup-enable-pids']), 'mount EPERM');
  });

  it('twin: with SYS_ADMIN and no seccomp filter the mount works and the write reaches the host group', async () => {
    const got = await h.probe(['cgroup-enable-pids'], { capabilities: { add: ['SYS_ADMIN'] }, seccomp: 'unconfined' });
    // Rootless, unless that group is delegated to us, it belongs to the host's root, whom the user
    // namespace does not map. Where we may write it the kernel takes the write and answers for the
    // controller: on a hybrid host pids is bound to cgroup v1 (ENOENT); on a pure v2 host the group
    // holds processes (EBUSY) or is the root (ok).
    if (!writable(join(mount!, ownV2Path(), 'cgroup.subtree_control'))) assert.equal(got, 'write EACCES');
    else if (!availableControllers(mount!).has('pids')) assert.equal(got, 'write ENOENT');
    else assert.match(got, /^(write EBUSY|ok)$/);
  });
});
