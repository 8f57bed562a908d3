import assert from 'node:assert/strict';
import { HeldResources, type HostResource } from '../../lib/container/host-resources.ts';
import type { ResolvedSpec } from '../../lib/container/spec.ts';

/** A resource that records its acquire and release in log; fails to acquire when told to. */
function recording(name: string, log: string[], fail = false, failRelease = false): HostResource {
  return {
    name,
    acquire() {
      if (fail) throw new Error(`${name} failed`);
      log.push(`+${name}`);
      return () => {
        log.push(`-${name}`);
        if (failRelease) throw new Error(`release of ${name} failed`);
      };
    },
  };
}

const spec = {} as ResolvedSpec;

describe('host resources', () => {
  it('releases in reverse order of acquisition, once', async () => {
    const log: string[] = [];
    const held = await HeldResources.acquire([recording('cgroup', log), recording('layer', log), recording('volumes', log)], spec, null);
    await held.release();
    await held.release();
    assert.deepEqual(log, ['+cgroup', '+layer', '+volumes', '-volumes', '-layer', '-cgroup']);
  });

  it('rolls back what was acquired when one acquisition fails, and throws that failure', async () => {
    const log: string[] = [];
    await assert.rejects(
      HeldResources.acquire([recording('cgroup', log), recording('layer', log), recording('volumes', log, true), recording('never', log)], spec, null),
      { message: 'volumes failed' },
    );
    assert.deepEqual(log, ['+cgroup', '+layer', '-layer', '-cgroup']);
  });

  it('runs every release when one fails, then throws the first failure', async () => {
    const log: string[] = [];
    const held = await HeldResources.acquire([recording('cgroup', log), recording('layer', log, false, true), recording('volumes', log)], spec, null);
    await assert.rejects(held.release(), { message: 'release of layer failed' });
    assert.deepEqual(log, ['+cgroup', '+layer', '+volumes', '-volumes', '-layer', '-cgroup']);
  });

  it('skips resources a container does not need (acquire returns null)', async () => {
    const log: string[] = [];
    const none: HostResource = { name: 'none', acquire: () => null };
    const held = await HeldResources.acquire([none, recording('cgroup', log)], spec, null);
    await held.release();
    assert.deepEqual(log, ['+cgroup', '-cgroup']);
  });
});
