// Issue 10 item 9: a container on the host's root (no rootfs) read other containers' layers and
// volumes under the runtime root. The runtime root is masked in every such container.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.ts';

describe('attack: read the runtime root from a container on the host root', () => {
  let state: string;
  let outside: string;
  let rt: Runtime;

  before(async () => {
    // Not under /tmp: a host-root container gets a /tmp of its own, which would hide both.
    state = mkdtempSync('/var/tmp/corral-test-state-');
    outside = mkdtempSync('/var/tmp/corral-test-outside-');
    rt = new Runtime({ root: state, cgroupParent: false });
    await rt.volumes.create('secrets');
    writeFileSync(join(state, 'volumes/secrets/data/token'), 'volume-secret\n');
    writeFileSync(join(outside, 'token'), 'outside-secret\n');
  });

  after(() => {
    rmSync(state, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it('finds nothing of the runtime root: its directory is an empty mask', async () => {
    const r = await rt.run({ command: ['/bin/sh', '-c', `cat ${state}/volumes/secrets/data/token; ls -A ${state} | wc -l`] });
    assert.doesNotMatch(r.stdout.toString(), /volume-secret/);
    assert.match(r.stderr.toString(), /No such file or directory/);
    assert.equal(r.stdout.toString().trim().split('\n').pop(), '0');
  });

  it('positive control: the same read of a host file outside the runtime root works', async () => {
    const r = await rt.run({ command: ['/bin/sh', '-c', `cat ${outside}/token`] });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.equal(r.stdout.toString(), 'outside-secret\n');
  });

  it('masks the root even when the spec lifts every default mask', async () => {
    const r = await rt.run({ command: ['/bin/cat', `${state}/volumes/secrets/data/token`], maskedPaths: [] });
    assert.notEqual(r.exitCode, 0);
    assert.doesNotMatch(r.stdout.toString(), /volume-secret/);
  });
});
