/** Opening clients for a reference: credentials from the caller or from Docker's config.json, and
 * the registry's settings (RuntimeConfig.registries): its mirrors first for a pull, then itself. */

import { RegistryClient } from './client.ts';
import { findCredentials, type Credentials } from './credentials.ts';
import type { Reference } from '../image/reference.ts';
import { endpoints, type RegistriesConfig } from './registry-config.ts';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.ts';

/** What every registry operation takes besides its reference. */
export interface RegistryOptions {
  /** Credentials for this call; by default those Docker's config.json has for the registry. */
  auth?: Credentials;
  /** Unverified TLS, then plain HTTP (loopback registries without a CA are insecure unless this is false). */
  insecure?: boolean;
  retry?: Partial<RetryPolicy>;
  signal?: AbortSignal;
  /** Per-registry mirrors, insecure and CA (the runtime's RuntimeConfig.registries). */
  registries?: RegistriesConfig;
  /** A directory of CA files (*.crt) for the registries without a `ca` (podman's --cert-dir);
   * by default their certs.d directories (~/.config/containers, /etc/containers, /etc/docker). */
  certDir?: string;
}

/** A client for the repository `ref` names on its own registry, with the credentials that apply. */
export async function connect(ref: Reference, options: RegistryOptions, signal?: AbortSignal): Promise<RegistryClient> {
  return (await connectAll(ref, options, signal, false))[0]!;
}

/** Clients for `ref`'s repository on each mirror of its registry, in order, then on the registry. */
export async function connectAll(ref: Reference, options: RegistryOptions, signal?: AbortSignal, withMirrors = true): Promise<RegistryClient[]> {
  const s = signal ?? options.signal;
  const where = endpoints(ref.registry, {
    withMirrors,
    ...(options.registries ? { config: options.registries } : {}),
    ...(options.insecure === undefined ? {} : { insecure: options.insecure }),
    ...(options.certDir === undefined ? {} : { certDir: options.certDir }),
  });
  return Promise.all(where.map(async (endpoint) => {
    const credentials = options.auth ?? (await findCredentials(endpoint.registry));
    return new RegistryClient({
      ...endpoint,
      repository: ref.repository,
      ...(credentials ? { credentials } : {}),
      retry: { ...DEFAULT_RETRY, ...options.retry },
      ...(s ? { signal: s } : {}),
    });
  }));
}
