// One container reaching another's processes. Containers share a user namespace: the host's as
// root, and rootless with a subordinate range the one the runtime makes per process and map
// (lib/spawn/shared-user-namespace.ts), so root in one holds capabilities in the namespace that
// owns the other's namespaces. What keeps a container from seeing, signalling, tracing or joining
// another's processes is its own pid namespace (and the /proc mounted for it): the victim's pid
// names nothing there. The twin shares the host's pid namespace (namespaces.pid off) and gets
// through, which shows the checks can fail.
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import type { Container, ContainerSpec } from '../../lib/index.ts';
import { hostileRoot, mode, rt } from './hostile.ts';

const MARK = '31337';

describe(`security: a container reaches another's processes in the shared user namespace (${mode})`, () => {
  const h = hostileRoot();
  let victim: Container | null = null;

  afterEach(async () => {
    await victim?.remove({ force: true });
    victim = null;
  });

  /** Starts a victim as user, then runs the attacks on its host pid from a second container as the
   * same user, without the seccomp filter (which refuses ptrace anyway: ptrace-sibling.test.ts), so
   * that the namespaces alone stand in the way; returns what each printed. */
  const attack = async (user: ContainerSpec['user'], extra: Partial<ContainerSpec> = {}) => {
    victim = await rt.create({ rootfs: h.root, command: ['sleep', MARK], ...(user ? { user } : {}) });
    await victim.start();
    const pid = victim.pid;
    const victimUserns = readlinkSync(`/proc/${pid}/ns/user`);
    // seen: how many processes run the victim's command line (the pattern does not match its own).
    const r = await h.sh([
      'readlink /proc/self/ns/user',
      `cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -c 'sleep [${MARK[0]}]${MARK.slice(1)}'`,
      `/bin/probe read /proc/${pid}/cmdline`,
      `/bin/probe setns /proc/${pid}/ns/pid`,
      `/bin/probe ptrace ${pid}`,
      `/bin/probe signal ${pid}`,
    ].join('; '), { ...(user ? { user } : {}), seccomp: 'unconfined', ...extra });
    const [userns, seen, read, setns, ptrace, signal] = r.stdout.toString().trim().split('\n');
    return { shared: userns === victimUserns, seen, read, setns, ptrace, signal, stderr: r.stderr.toString() };
  };

  for (const [who, user] of [['root', undefined], ['uid 65534', { uid: 65534, gid: 65534 }]] as const) {
    it(`as ${who} inside, another container's process cannot be seen, signalled, traced or joined`, async () => {
      const got = await attack(user);
      assert.deepEqual(
        { shared: got.shared, seen: got.seen, read: got.read, setns: got.setns, ptrace: got.ptrace, signal: got.signal },
        { shared: true, seen: '0', read: 'ENOENT', setns: 'open ENOENT', ptrace: 'ESRCH', signal: 'ESRCH' },
        got.stderr,
      );
    });

    it(`twin: as ${who} inside, sharing the host's pid namespace, the same attacks get through`, async () => {
      const got = await attack(user, { namespaces: { pid: false } });
      assert.equal(got.seen, '1', got.stderr);
      assert.match(got.read!, /^read [1-9]/);
      assert.match(got.setns!, /^open ok/);
      assert.equal(got.ptrace, 'ok');
      assert.equal(got.signal, 'ok');
      assert.equal((await victim!.wait()).signal, 'SIGKILL');
    });
  }
});
