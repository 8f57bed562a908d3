/** RuntimeConfig.registries: per registry its mirrors (tried in order before it), whether it is
 * insecure (unverified TLS, then plain HTTP: registries.conf's `insecure`), and a CA bundle; where
 * none is named, the CA files of a --cert-dir or of Docker's and podman's certs.d directories. */

import { readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { errorCode, CorralError } from '../sys/errors.ts';

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

/** How endpoints() is asked: the settings, and what the call itself says. */
export interface EndpointOptions {
  config?: RegistriesConfig;
  /** The call's own insecure (it wins over the registry's). */
  insecure?: boolean;
  /** A directory of CA files (*.crt) for every registry without a `ca`, as podman's --cert-dir. */
  certDir?: string;
  /** A pull tries the mirrors; a push goes to the registry only. */
  withMirrors?: boolean;
}

/** Where a pull of `registry` goes, in order: its mirrors, then itself (a push: itself only). */
export function endpoints(registry: string, options: EndpointOptions = {}): Endpoint[] {
  const config = options.config ?? {};
  const own = config[registry] ?? {};
  const origin = endpoint(registry, undefined, options.insecure ?? own.insecure, own.ca, options.certDir);
  if (options.withMirrors === false) return [origin];
  const mirrors = (own.mirrors ?? []).map((m) => {
    const match = /^(?:(https?):\/\/)?([^/]+)\/?$/.exec(m);
    if (!match) throw new CorralError(`registries.${registry}.mirrors: '${m}' is not a host or an http(s) URL`, { code: 'ERR_INVALID_ARG_VALUE' });
    const host = match[2]!;
    const settings = config[host] ?? {};
    return endpoint(host, match[1] as 'http' | 'https' | undefined, settings.insecure ?? (match[1] === 'http' ? true : undefined), settings.ca, options.certDir);
  });
  return [...mirrors, origin];
}

function endpoint(registry: string, scheme: 'http' | 'https' | undefined, insecure: boolean | undefined, ca: string | undefined, certDir: string | undefined): Endpoint {
  let pem: string | undefined;
  if (ca !== undefined) {
    try {
      pem = readFileSync(ca, 'utf8');
    } catch (cause) {
      throw new CorralError(`registries.${registry}.ca: cannot read ${ca}: ${(cause as Error).message}`, { code: 'ERR_INVALID_ARG_VALUE', path: ca, cause });
    }
  } else if (certDir !== undefined) {
    pem = caFiles(certDir, true);
  } else {
    for (const dir of certsDirs()) {
      pem = caFiles(join(dir, registry), false);
      if (pem !== undefined) break;
    }
  }
  return { registry, ...(scheme ? { scheme } : {}), ...(insecure === undefined ? {} : { insecure }), ...(pem === undefined ? {} : { ca: pem }) };
}

/** Where podman and Docker look for a registry's CA files, `<dir>/<registry>/*.crt`, in their
 * order: the user's own (not as root), then /etc/containers/certs.d, then /etc/docker/certs.d. */
function certsDirs(): string[] {
  const own = process.getuid?.() === 0 ? [] : [join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'containers/certs.d')];
  return [...own, '/etc/containers/certs.d', '/etc/docker/certs.d'];
}

/** The PEM text of the *.crt files in dir (sorted), or undefined when it has none; a directory
 * that was asked for (`required`) must exist and be readable, a default one need not. */
function caFiles(dir: string, required: boolean): string | undefined {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.crt')).sort();
  } catch (cause) {
    if (!required && ['ENOENT', 'ENOTDIR', 'EACCES'].includes(errorCode(cause) ?? '')) return undefined;
    throw new CorralError(`cert dir ${dir}: ${(cause as Error).message}`, { code: 'ERR_INVALID_ARG_VALUE', path: dir, cause });
  }
  if (names.length === 0) {
    if (required) throw new CorralError(`cert dir ${dir} holds no CA file (*.crt)`, { code: 'ERR_INVALID_ARG_VALUE', path: dir });
    return undefined;
  }
  return names.map((n) => readFileSync(join(dir, n), 'utf8')).join('\n');
}
