import { writeSync } from 'node:fs';
import { OCI_VERSION } from '../../container/oci-container.ts';
import { HOOK_KINDS } from '../../container/oci-hooks.ts';
import { MOUNT_OPTIONS } from '../../container/oci-config.ts';

/** `features`: what this build supports, in runc's JSON shape. */
export function featuresCommand(): number {
  const features = {
    ociVersionMin: '1.0.0',
    ociVersionMax: OCI_VERSION,
    hooks: HOOK_KINDS,
    mountOptions: MOUNT_OPTIONS,
    linux: {
      namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'uts'],
      capabilities: [],
      cgroup: { v1: false, v2: true, systemd: false, systemdUser: false },
      seccomp: { enabled: true },
    },
    annotations: { 'org.opencontainers.runc.version': 'corral-oci', 'org.opencontainers.runc.checkpoint.enabled': 'false' },
  };
  writeSync(1, `${JSON.stringify(features, null, 2)}\n`);
  return 0;
}
