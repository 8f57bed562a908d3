import { CorralError } from '../sys/errors.ts';

/** An image reference as users write it: 'name', 'name:tag', 'registry/ns/name:tag'. */
const REF = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?$/;

/** 'name' → 'name:latest'; checks the syntax docker uses for references. */
export function normalizeRef(ref: string): string {
  if (typeof ref !== 'string' || !REF.test(ref)) {
    throw new CorralError(`invalid image reference '${String(ref)}' (expected name[:tag], lower case)`, { code: 'ERR_INVALID_REF' });
  }
  const lastSlash = ref.lastIndexOf('/');
  return ref.slice(lastSlash + 1).includes(':') ? ref : `${ref}:latest`;
}
