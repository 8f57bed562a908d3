// A container makes /dev/userfaultfd and gets a userfaultfd with USERFAULTFD_IOC_NEW, around the
// seccomp rule that denies the userfaultfd system call. Defended by the device filter.
import { describeDeviceAttack, hostDevice } from '../fixtures/device-attack.ts';

describeDeviceAttack({
  name: 'mknod /dev/userfaultfd and USERFAULTFD_IOC_NEW',
  type: 'c',
  // A misc device with a dynamic minor: take the host's numbers.
  device: hostDevice('/dev/userfaultfd'),
  mode: 'rw',
  use: 'uffd-new',
  allow: { path: '/dev/userfaultfd' },
});
