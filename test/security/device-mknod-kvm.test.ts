// A container makes /dev/kvm (c 10:232) and creates a VM with KVM_CREATE_VM: the host's
// hypervisor, reached from inside. Defended by the device filter (lib/cgroup/device-filter.ts).
import { describeDeviceAttack, hostDevice } from '../fixtures/device-attack.ts';

describeDeviceAttack({
  name: 'mknod /dev/kvm and KVM_CREATE_VM',
  type: 'c',
  device: hostDevice('/dev/kvm'),
  mode: 'rw',
  use: 'kvm-create-vm',
  allow: { path: '/dev/kvm' },
});
