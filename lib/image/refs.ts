import { CorralError } from '../sys/errors.ts';
import { familiarReference, parseReference } from './reference.ts';

/** The one spelling a tag is stored and looked up under: Docker's short form of the normalized
 * reference, so 'busybox', 'busybox:latest' and 'docker.io/library/busybox:latest' name one image
 * ('busybox:latest'), and 'localhost:5000/app' stays 'localhost:5000/app:latest'. */
export function normalizeRef(ref: string): string {
  const parsed = parseReference(ref);
  if (parsed.digest !== undefined) {
    throw new CorralError(`invalid image reference '${ref}': a tag cannot carry a digest`, { code: 'ERR_INVALID_REF' });
  }
  return familiarReference(parsed);
}

/** The digest a reference pins ('name@sha256:…', 'name:tag@sha256:…', 'sha256:…'), or undefined. */
export function pinnedDigest(ref: string): string | undefined {
  if (/^sha256:[a-f0-9]{64}$/.test(ref)) return ref;
  return ref.includes('@') ? parseReference(ref).digest : undefined;
}
