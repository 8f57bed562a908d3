/** A fetch dispatcher for a registry's own TLS settings (a CA bundle, or no verification), one per
 * setting for the whole process, so connections are kept alive across clients. */

import { rootCertificates } from 'node:tls';

/** undici's Agent, as Node's fetch has it (Node ships undici but does not export it). */
type Agent = new (options: { connect: { ca?: string[]; rejectUnauthorized?: boolean } }) => object;

const dispatchers = new Map<string, object>();

/** The dispatcher for a CA bundle (trusted besides Node's roots, as Docker adds certs.d to the
 * system pool) or unverified TLS, or undefined for Node's default. */
export function tlsDispatcher(ca: string | undefined, verify: boolean): object | undefined {
  if (ca === undefined && verify) return undefined;
  const id = `${verify}\n${ca ?? ''}`;
  let dispatcher = dispatchers.get(id);
  if (dispatcher === undefined) {
    const key = Symbol.for('undici.globalDispatcher.1');
    if (!(globalThis as Record<symbol, unknown>)[key]) void fetch('data:,').catch(() => undefined); // makes Node load undici
    const AgentClass = ((globalThis as Record<symbol, unknown>)[key] as { constructor: Agent }).constructor;
    dispatcher = new AgentClass({ connect: { ...(ca === undefined ? {} : { ca: [...rootCertificates, ca] }), rejectUnauthorized: verify } });
    dispatchers.set(id, dispatcher);
  }
  return dispatcher;
}
