/** The registry operations a runtime's `images` offers: pull, push, login, logout. */

import type { ImageInfo, ImageStore } from '../image/image-store.ts';
import { eraseCredentials, storeCredentials, type Credentials } from './credentials.ts';
import { pull, type PullOptions } from './pull.ts';
import { push, type PushOptions, type PushResult } from './push.ts';
import type { RegistriesConfig } from './registry-config.ts';
import { DOCKER_HUB, parseReference } from '../image/reference.ts';

/** Pull, push, login and logout over one image store. */
export interface RegistryImages {
  /** Pulls an image (an index resolved to `platform`) into the store. */
  pull(ref: string, options?: PullOptions): Promise<ImageInfo>;
  /** Pushes a stored image to `destRef` (default: its own name). */
  push(ref: string, destRef?: string, options?: PushOptions): Promise<PushResult>;
  /** Stores credentials for a registry in Docker's config.json (or its credential helper). */
  login(registry: string, credentials: Credentials): Promise<void>;
  /** Forgets a registry's credentials; true when there were any. */
  logout(registry: string): Promise<boolean>;
}

/** The registry operations over `store`, with the runtime's registry settings. */
export function registryImages(store: ImageStore, registries: RegistriesConfig = {}): RegistryImages {
  return {
    pull: (ref, options) => pull(store, ref, { registries, ...options }),
    push: (ref, destRef, options) => push(store, ref, destRef, { registries, ...options }),
    login: (registry, credentials) => storeCredentials(registryName(registry), credentials),
    logout: (registry) => eraseCredentials(registryName(registry)),
  };
}

/** A registry as login takes it ('localhost:5000', 'https://index.docker.io/v1/') → its name in references. */
function registryName(registry: string): string {
  const host = registry.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (host === '' || host === 'index.docker.io' || host === 'registry-1.docker.io') return DOCKER_HUB;
  parseReference(`${host}/x`); // refuses what is no host name
  return host;
}
