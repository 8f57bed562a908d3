// config.json → ContainerSpec for corral-oci: the fields containerd's default spec carries (device
// rules, cpu shares, a terminal), and the errors naming what cannot be honoured.
import assert from 'node:assert/strict';
import { ociToSpec, sharesToWeight } from '../../lib/container/oci-config.ts';

const base = (): Record<string, any> => ({ ociVersion: '1.0.2', process: { args: ['true'], cwd: '/' }, root: { path: '/tmp/rootfs' }, linux: {} });

describe('corral-oci config mapping', function () {
  it('converts cpu shares with crun\'s formula: 1024 (containerd\'s default) is the default weight, not written', function () {
    assert.deepEqual([2, 1024, 262144].map(sharesToWeight), [1, 100, 10000]);
    assert.equal(sharesToWeight(512), 59);
    const config = base();
    config.linux.resources = { cpu: { shares: 1024 } };
    assert.equal(ociToSpec('c', config, '/b').spec.limits?.cpuWeight, undefined);
    config.linux.resources = { cpu: { shares: 2048 } };
    assert.equal(ociToSpec('c', config, '/b').spec.limits?.cpuWeight, 174);
  });

  it('takes device rules as an allow-list after a leading deny-all, and refuses a later deny', function () {
    const config = base();
    config.linux.resources = { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, { allow: true, type: 'c', major: 136, access: 'rw' }] };
    assert.deepEqual(ociToSpec('c', config, '/b').spec.devices, [{ type: 'c', major: 1, minor: 3, access: 'rwm' }, { type: 'c', major: 136, minor: '*', access: 'rw' }]);
    config.linux.resources.devices.push({ allow: false, type: 'c', major: 1, minor: 3 });
    assert.throws(() => ociToSpec('c', config, '/b'), (e: any) => e.code === 'ERR_INVALID_SPEC' && e.step === 'linux.resources.devices[3]');
  });

  it('maps process.terminal and consoleSize onto tty', function () {
    const config = base();
    config.process.terminal = true;
    config.process.consoleSize = { height: 40, width: 120 };
    const { spec } = ociToSpec('c', config, '/b');
    assert.equal(spec.tty, true);
    assert.deepEqual(spec.consoleSize, { rows: 40, cols: 120 });
  });
});
