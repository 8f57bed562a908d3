/** Opening a client for a reference: credentials from the caller or from Docker's config.json,
 * and the registry's settings (mirrors are not followed yet: only the registry the ref names). */

import { RegistryClient } from './client.ts';
import { findCredentials, type Credentials } from './credentials.ts';
import type { Reference } from '../image/reference.ts';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.ts';

/** What every registry operation takes besides its reference. */
export interface RegistryOptions {
  /** Credentials for this call; by default those Docker's config.json has for the registry. */
  auth?: Credentials;
  /** Plain HTTP (loopback registries use it unless this is false). */
  insecure?: boolean;
  retry?: Partial<RetryPolicy>;
  signal?: AbortSignal;
}

/** A client for the repository `ref` names, with the credentials that apply. */
export async function connect(ref: Reference, options: RegistryOptions, signal?: AbortSignal): Promise<RegistryClient> {
  const credentials = options.auth ?? (await findCredentials(ref.registry));
  const s = signal ?? options.signal;
  return new RegistryClient({
    registry: ref.registry,
    repository: ref.repository,
    ...(credentials ? { credentials } : {}),
    ...(options.insecure === undefined ? {} : { insecure: options.insecure }),
    retry: { ...DEFAULT_RETRY, ...options.retry },
    ...(s ? { signal: s } : {}),
  });
}
