// A container makes /dev/kmsg (c 1:11) and opens it for writing: lines in the host's kernel log.
// Defended by the device filter. (The twin only opens it: nothing is written to the host's log.)
import { describeDeviceAttack, hostDevice } from '../fixtures/device-attack.ts';

describeDeviceAttack({
  name: 'mknod /dev/kmsg and open it for writing',
  type: 'c',
  device: hostDevice('/dev/kmsg'),
  mode: 'w',
  allow: { path: '/dev/kmsg', access: 'w' },
});
