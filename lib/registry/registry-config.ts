/** RuntimeConfig.registries: per registry its mirrors (tried in order before it), whether it is
 * insecure (unverified TLS, then plain HTTP: registries.conf's `insecure`), and a CA bundle. */

import { readFileSync } from 'node:fs';
import { CorralError } from '../sys/errors.ts';

/** Settings of one registry, keyed by its name in references ('docker.io', 'localhost:5000'). */
export interface RegistrySettings {
  /** Hosts ('mirror:5000', 'https://mirror.example') pulls try in order before the registry itself. */
  mirrors?: string[];
  /** TLS without verification, and plain HTTP when the registry does not speak TLS (an https://
   * mirror: TLS only). Loopback registries without `ca` default to insecure, as in Docker. */
  insecure?: boolean;
  /** Path of a PEM CA bundle the registry's certificate is verified with (besides Node's roots). */
  ca?: string;
}

/** Registry settings by registry name. */
export type RegistriesConfig = Record<string, RegistrySettings>;

/** One place a pull can go: the registry itself or one of its mirrors. */
export interface Endpoint {
  /** The host (with port) requests go to, also what errors name. */
  registry: string;
  scheme?: 'http' | 'https';
  insecure?: boolean;
  /** The CA bundle's PEM text. */
  ca?: string;
}

/** Where a pull of `registry` goes, in order: its mirrors, then itself (a push: itself only). */
export function endpoints(registry: string, config: RegistriesConfig = {}, insecure?: boolean, withMirrors = true): Endpoint[] {
  const own = config[registry] ?? {};
  const origin = endpoint(registry, undefined, insecure ?? own.insecure, own.ca);
  if (!withMirrors) return [origin];
  const mirrors = (own.mirrors ?? []).map((m) => {
    const match = /^(?:(https?):\/\/)?([^/]+)\/?$/.exec(m);
    if (!match) throw new CorralError(`registries.${registry}.mirrors: '${m}' is not a host or an http(s) URL`, { code: 'ERR_INVALID_ARG_VALUE' });
    const host = match[2]!;
    const settings = config[host] ?? {};
    return endpoint(host, match[1] as 'http' | 'https' | undefined, settings.insecure ?? (match[1] === 'http' ? true : undefined), settings.ca);
  });
  return [...mirrors, origin];
}

function endpoint(registry: string, scheme: 'http' | 'https' | undefined, insecure: boolean | undefined, ca: string | undefined): Endpoint {
  let pem: string | undefined;
  if (ca !== undefined) {
    try {
      pem = readFileSync(ca, 'utf8');
    } catch (cause) {
      throw new CorralError(`registries.${registry}.ca: cannot read ${ca}: ${(cause as Error).message}`, { code: 'ERR_INVALID_ARG_VALUE', path: ca, cause });
    }
  }
  return { registry, ...(scheme ? { scheme } : {}), ...(insecure === undefined ? {} : { insecure }), ...(pem === undefined ? {} : { ca: pem }) };
}
