/** A fetch dispatcher for a registry's own TLS settings (a CA bundle, or no verification). */

/** undici's Agent, as Node's fetch has it (Node ships undici but does not export it). */
type Agent = new (options: { connect: { ca?: string; rejectUnauthorized?: boolean } }) => object;

/** The dispatcher for a CA bundle or unverified TLS, or undefined for Node's default. */
export function tlsDispatcher(ca: string | undefined, verify: boolean): object | undefined {
  if (ca === undefined && verify) return undefined;
  const key = Symbol.for('undici.globalDispatcher.1');
  if (!(globalThis as Record<symbol, unknown>)[key]) void fetch('data:,').catch(() => undefined); // makes Node load undici
  const AgentClass = ((globalThis as Record<symbol, unknown>)[key] as { constructor: Agent }).constructor;
  return new AgentClass({ connect: { ...(ca === undefined ? {} : { ca }), rejectUnauthorized: verify } });
}
