// A container makes a node of a host block device and reads it: the host's disk gives every file
// of the host, around every mount. Defended by the device filter. The device is the first one the
// host itself can open (its disk on most hosts; loop devices last): this sandbox forbids opening
// its own disk even to the host's root, which would leave the lifted twin nothing to show.
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { describeDeviceAttack } from '../fixtures/device-attack.ts';
import { rootless } from '../helpers.ts';

const disks = readdirSync('/sys/block')
  .sort((a, b) => Number(a.startsWith('loop')) - Number(b.startsWith('loop')))
  .map((name) => {
    const [major, minor] = readFileSync(`/sys/block/${name}/dev`, 'utf8').trim().split(':').map(Number);
    return { name, major: major!, minor: minor! };
  });
const openable = (name: string): boolean => {
  try {
    closeSync(openSync(`/dev/${name}`, 'r'));
    return true;
  } catch {
    return false;
  }
};
// Rootless, the host cannot open any disk: the attack still has numbers to try.
const disk = rootless ? disks[0] : disks.find((d) => openable(d.name));

describeDeviceAttack({
  name: `mknod a host block device (${disk?.name ?? 'none'}) and read it`,
  type: 'b',
  device: disk ?? null,
  mode: 'r',
  use: 'read',
  allow: { type: 'b', major: disk?.major ?? 0, minor: disk?.minor ?? 0, access: 'r' },
});
