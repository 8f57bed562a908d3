// A process exec'd into a corral-oci container that joined a pod sandbox's network namespace by
// path (linux.namespaces[].path) must be in that namespace, not in the runtime's. In-process
// (the twin lifts a defence), so in a mocha of its own, in a network namespace of its own
// (test/security/oci-exec-joined-netns.test.ts starts it under unshare --net).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBusyboxRoot, rmRoot } from '../helpers.ts';
import { bundle } from '../oci-cli.ts';

// Loaded as ES modules (not through mocha's require of this file): OciStore.create imports the
// spec compiler dynamically, and one copy of the library, and of its lifted defences, must serve.
const { OciStore } = await import('../../lib/container/oci-container.ts');
const { ociExec } = await import('../../lib/container/oci-exec.ts');
const { exitWatcher } = await import('../../lib/spawn/exit-watcher.ts');
const { close, pidfdOpen } = await import('../../lib/sys/libc.ts');
const { withLifted } = await import('../security/lifted.ts');

describe('security: exec into a corral-oci container that joined a network namespace by path', () => {
  let dir: string;
  let rootfs: string;
  let store: InstanceType<typeof OciStore>;
  let sandboxNet: string;
  const reaped: Promise<void>[] = [];
  /** Creates and starts a container running `sleep 100`; its init is ours to reap. */
  const start = async (id: string, edit: (c: any) => void = () => {}): Promise<number> => {
    const pid = await store.create(id, bundle(dir, ['sleep', '100'], (c) => { c.root.path = rootfs; c.root.readonly = false; edit(c); }));
    const pidfd = pidfdOpen(pid);
    reaped.push(new Promise((done) => exitWatcher.watch(pidfd, () => { close(pidfd); done(); })));
    await store.start(id);
    return pid;
  };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corral-oci-exec-netns-'));
    rootfs = makeBusyboxRoot();
    store = new OciStore(join(dir, 'root'));
    const sandbox = await start('sandbox');
    sandboxNet = readlinkSync(`/proc/${sandbox}/ns/net`);
    await start('member', (c) => { c.linux.namespaces.find((n: { type: string }) => n.type === 'network').path = `/proc/${sandbox}/ns/net`; });
  });
  after(async () => {
    for (const id of store?.ids() ?? []) await store.delete(id, true);
    await Promise.all(reaped);
    if (dir) rmRoot(dir);
    if (rootfs) rmRoot(rootfs);
  });
  /** The network namespace an exec'd process of the member is in. */
  const execNet = async (file: string): Promise<string> => {
    const proc = await ociExec(store, 'member', { args: ['sh', '-c', `readlink /proc/self/ns/net > /${file}`], cwd: '/', env: ['PATH=/bin'] });
    await new Promise((done) => exitWatcher.watch(proc.pidfd, done));
    close(proc.pidfd);
    return readFileSync(join(rootfs, file), 'utf8').trim();
  };

  it('the process is in the sandbox\'s network namespace', async () => {
    assert.notEqual(sandboxNet, readlinkSync('/proc/self/ns/net'));
    assert.equal(await execNet('net-defended'), sandboxNet);
  });

  it('twin: joining only the namespaces the container made leaves it in the runtime\'s', async () => {
    assert.equal(await withLifted({ execMadeNamespacesOnly: true }, () => execNet('net-lifted')), readlinkSync('/proc/self/ns/net'));
  });
});
