// Writing /proc/sys (kernel tunables, many not namespaced): /proc/sys is bound read-only.
import assert from 'node:assert/strict';
import { rootless } from '../helpers.ts';
import { hostileRoot, mode } from './hostile.ts';

// A tunable of the container's own network namespace, owned by its root and needing no
// capability: writable once the read-only bind is gone, and harmless to write ("1 0" is the default).
const TARGET = '/proc/sys/net/ipv4/ping_group_range';

describe(`security: write /proc/sys (${mode})`, () => {
  const h = hostileRoot();
  const procSysMount = async (extra = {}): Promise<string | undefined> => {
    const mounts = await h.sh('cat /proc/self/mountinfo', extra);
    return mounts.stdout.toString().split('\n').find((l) => l.split(' ')[4] === '/proc/sys');
  };

  // Rootless the kernel refuses the open for write before it looks at the mount (EACCES: the
  // file's access check is made against the host's root), so only the mount flags tell there.
  it('the write fails and /proc/sys is a read-only mount', async () => {
    assert.equal(await h.probe(['write', TARGET, '1 0']), rootless ? 'EACCES' : 'EROFS');
    const line = await procSysMount();
    assert.ok(line, 'no mount on /proc/sys');
    assert.match(line.split(' ')[5]!, /^ro,/);
  });

  it('twin: with readonlyPaths [] /proc/sys is writable (as root the same write works)', async () => {
    assert.equal(await h.probe(['write', TARGET, '1 0'], { readonlyPaths: [] }), rootless ? 'EACCES' : 'ok');
    assert.equal(await procSysMount({ readonlyPaths: [] }), undefined);
  });
});
