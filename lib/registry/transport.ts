/** How requests reach a registry, as Docker and podman do it: HTTPS verified against Node's roots
 * and the registry's CA bundle; for an insecure registry (named so, or a loopback one without a CA
 * bundle, as Docker's default 127.0.0.0/8) HTTPS without verification, then plain HTTP when it does
 * not speak TLS; a mirror's URL scheme as written. A TLS failure is refused at once, never retried. */

import { tlsDispatcher } from './tls-dispatcher.ts';

/** One way to reach the registry. */
export interface Transport {
  scheme: 'http' | 'https';
  /** Whether the certificate is verified (https only). */
  verify: boolean;
  /** For fetch's `dispatcher`: the TLS settings, or undefined for Node's default. */
  dispatcher: object | undefined;
}

/** What decides the transports: the registry's settings. */
export interface TransportSettings {
  registry: string;
  scheme?: 'http' | 'https';
  insecure?: boolean;
  /** The CA bundle's PEM text. */
  ca?: string;
}

const LOOPBACK = /^(localhost|127(?:\.\d+){3}|\[::1\])(?::\d+)?$/;

/** The transports to try, in order: the first that answers is kept for the client's requests. */
export function transports(settings: TransportSettings): Transport[] {
  const insecure = settings.insecure ?? (settings.ca === undefined && LOOPBACK.test(settings.registry));
  const plain: Transport = { scheme: 'http', verify: false, dispatcher: undefined };
  if (settings.scheme === 'http') return [plain];
  const https: Transport = { scheme: 'https', verify: !insecure, dispatcher: tlsDispatcher(settings.ca, !insecure) };
  return settings.scheme === 'https' || !insecure ? [https] : [https, plain];
}

/** What a failed fetch says about TLS: the certificate was not trusted ('untrusted'), the server
 * does not speak TLS ('not-tls'), or nothing about TLS (undefined); with the cause's code. */
export function tlsFailure(error: unknown): { kind: 'untrusted' | 'not-tls'; code: string; message: string } | undefined {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } })?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : '';
  const message = typeof cause?.message === 'string' ? cause.message : code;
  if (/CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY|DECRYPT|DECODE)|ALTNAME/.test(code)) return { kind: 'untrusted', code, message };
  if (/^ERR_SSL_|^EPROTO$/.test(code)) return { kind: 'not-tls', code, message };
  return undefined;
}
