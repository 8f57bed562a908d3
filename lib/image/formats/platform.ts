/** Which manifest of a multi-platform index this machine runs. */

import { CorralError } from '../../sys/errors.ts';
import type { Descriptor, ImageIndex } from '../oci.ts';

/** An OCI platform, as index entries and image configs describe it. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const OCI_ARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/** The platform of this process, in OCI terms (Node's 'x64' is OCI's 'amd64'). */
export function hostPlatform(): Platform {
  return { os: 'linux', architecture: OCI_ARCH[process.arch] ?? process.arch };
}

/** Picks the entry of an index for `platform`; an index with a single platform-less entry means that entry. */
export function selectManifest(index: ImageIndex, platform: Platform = hostPlatform()): Descriptor {
  const match = index.manifests.find(
    (entry) =>
      entry.platform !== undefined &&
      entry.platform.os === platform.os &&
      entry.platform.architecture === platform.architecture &&
      (platform.variant === undefined || entry.platform.variant === platform.variant),
  );
  if (match !== undefined) return match;
  if (index.manifests.length === 1 && index.manifests[0]!.platform === undefined) return index.manifests[0]!;
  const offered = index.manifests
    .map((entry) => (entry.platform === undefined ? 'unknown' : `${entry.platform.os}/${entry.platform.architecture}`))
    .join(', ');
  const wanted = `${platform.os}/${platform.architecture}${platform.variant === undefined ? '' : `/${platform.variant}`}`;
  throw new CorralError(`no manifest for ${wanted} in the image index (it has: ${offered || 'nothing'})`, {
    code: 'ERR_NO_MATCHING_PLATFORM',
  });
}
