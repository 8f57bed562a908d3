// What the test suite needs on the machine, and the Debian package that brings each (the packages
// .ci/setup installs): npm test stops at once naming what is missing, instead of a test failing
// deep inside with ENOENT.
import { existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** [what, how to find it, Debian package]. A leading '/' is a path; else a command on PATH. */
const NEEDS = [
  ['a C compiler', 'cc', 'gcc'],
  ['make', 'make', 'make'],
  ['a static busybox', '/bin/busybox', 'busybox-static'],
  ['libseccomp', '/usr/lib/x86_64-linux-gnu/libseccomp.so.2', 'libseccomp2'],
  ['libnftables', '/usr/lib/x86_64-linux-gnu/libnftables.so.1', 'libnftables1'],
  ['nft', 'nft', 'nftables'],
  ['ip', 'ip', 'iproute2'],
  ['pasta', 'pasta', 'passt'],
  ['unshare and setpriv', 'setpriv', 'util-linux'],
  ['newuidmap and newgidmap (rootless with a subordinate range)', 'newuidmap', 'uidmap'],
  ['mmdebstrap (the Debian test image)', 'mmdebstrap', 'mmdebstrap'],
  ['skopeo', 'skopeo', 'skopeo'],
  ['umoci', 'umoci', 'umoci'],
  ['oci-image-tool', 'oci-image-tool', 'oci-image-tool'],
  ['docker-registry', 'docker-registry', 'docker-registry'],
  ['htpasswd', 'htpasswd', 'apache2-utils'],
  ['openssl', 'openssl', 'openssl'],
  ['zstd', 'zstd', 'zstd'],
  ['newuidmap', 'newuidmap', 'uidmap'],
  ['mmdebstrap', 'mmdebstrap', 'mmdebstrap'],
  ['runc', 'runc', 'runc'],
  ['containerd and ctr (corral-oci driven by containerd\'s runc shim)', 'containerd', 'containerd'],
  ['script (a terminal for ctr run -t)', 'script', 'bsdutils'],
  ['podman and conmon (corral-oci driven by podman, in the VM)', 'podman', 'podman'],
  ['conmon (podman\'s monitor of corral-oci)', 'conmon', 'conmon'],
  ['qemu (the cgroup v2 VM)', 'qemu-system-x86_64', 'qemu-system-x86'],
  ['xz (the VM initramfs, ADD of xz archives)', 'xz', 'xz-utils'],
  ['bzip2 (ADD of bzip2 archives)', 'bzip2', 'bzip2'],
];

function onPath(command) {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, command)));
}

function hasKernelImage() {
  try {
    return readdirSync('/boot').some((f) => f.startsWith('vmlinuz-'));
  } catch {
    return false;
  }
}

/** The missing prerequisites as lines "what (apt-get install PACKAGE)"; empty when all are there. */
export function missingPrerequisites() {
  const missing = NEEDS.filter(([, where]) => !(where.startsWith('/') ? existsSync(where) : onPath(where)))
    .map(([what, , pkg]) => ({ what, pkg }));
  if (!hasKernelImage()) missing.push({ what: "a kernel for the cgroup v2 VM (/boot/vmlinuz-*)", pkg: 'linux-image-amd64' });
  return missing;
}
