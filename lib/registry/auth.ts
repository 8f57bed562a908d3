/** Authentication to one registry: anonymous, basic, or bearer tokens obtained from the realm a
 * 401's WWW-Authenticate names (Docker Hub's flow), cached per scope and renewed on expiry or 401. */

import { parseChallenges } from './auth-challenge.ts';
import type { Credentials } from './credentials.ts';
import { RegistryError, responseError, type RegistryContext } from './registry-error.ts';

interface CachedToken {
  header: string;
  /** ms since the epoch, with a margin. */
  expires: number;
}

/** Tokens live 60 s unless the token server says otherwise (the distribution spec's default). */
const DEFAULT_TOKEN_SECONDS = 60;
const MARGIN_MS = 5_000;

/** The Authorization headers for one registry and the state behind them. */
export class Authenticator {
  readonly #credentials: Credentials | undefined;
  readonly #tokens = new Map<string, CachedToken>();
  /** Token requests in flight, so concurrent 401s share one. */
  readonly #pending = new Map<string, Promise<CachedToken>>();
  #basic: string | undefined;
  /** The registry's TLS settings, which the token server is reached with too (as Docker does). */
  readonly #dispatcher: () => object | undefined;

  constructor(credentials?: Credentials, dispatcher: () => object | undefined = () => undefined) {
    this.#credentials = credentials;
    this.#dispatcher = dispatcher;
  }

  /** The header to send for a request needing `scopes`, or undefined (anonymous until challenged). */
  header(scopes: string[]): string | undefined {
    if (this.#basic !== undefined) return this.#basic;
    const token = this.#tokens.get(scopeKey(scopes));
    if (token && token.expires > Date.now()) return token.header;
    return undefined;
  }

  /** Answers a 401 to a request sent with `sent` (its Authorization, if any): fetches a token for
   * `scopes` (or takes basic credentials) so the request can be sent again; a concurrent request
   * that already did so is reused. Throws ERR_REGISTRY_UNAUTHORIZED when there is nothing more to try. */
  async challenge(response: Response, scopes: string[], sent: string | undefined, context: RegistryContext, signal?: AbortSignal): Promise<void> {
    const challenges = parseChallenges(response.headers.get('www-authenticate'));
    await response.body?.cancel();
    const key = scopeKey(scopes);
    const current = this.header(scopes);
    if (current !== undefined && current !== sent) return;
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer?.params.realm) {
      let pending = this.#pending.get(key);
      if (pending === undefined) {
        const scope = new Set(scopes);
        if (bearer.params.scope) for (const s of bearer.params.scope.split(' ')) scope.add(s);
        pending = this.#fetchToken(bearer.params.realm, bearer.params.service, [...scope], context, signal);
        this.#pending.set(key, pending);
        void pending.finally(() => this.#pending.delete(key)).catch(() => undefined);
      }
      this.#tokens.set(key, await pending);
      return;
    }
    if (challenges.some((c) => c.scheme === 'basic') && this.#credentials && sent === undefined) {
      this.#basic = `Basic ${Buffer.from(`${this.#credentials.username}:${this.#credentials.password}`).toString('base64')}`;
      return;
    }
    throw new RegistryError(
      `${context.operation} ${context.registry}/${context.repository}: HTTP 401 UNAUTHORIZED (${this.#credentials ? 'the credentials were refused' : 'no credentials for this registry: log in first'})`,
      'ERR_REGISTRY_UNAUTHORIZED',
      context,
      { status: 401, registryCode: 'UNAUTHORIZED' },
    );
  }

  async #fetchToken(realm: string, service: string | undefined, scopes: string[], context: RegistryContext, signal?: AbortSignal): Promise<CachedToken> {
    const url = new URL(realm);
    if (service) url.searchParams.set('service', service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#credentials) headers.authorization = `Basic ${Buffer.from(`${this.#credentials.username}:${this.#credentials.password}`).toString('base64')}`;
    const tokenContext = { ...context, operation: `${context.operation}: get a token from ${url.host}` };
    const dispatcher = this.#dispatcher();
    const response = await fetch(url, { headers, ...(signal ? { signal } : {}), ...(dispatcher ? { dispatcher } : {}) } as globalThis.RequestInit);
    if (!response.ok) throw await responseError(response, tokenContext);
    const body = (await response.json()) as { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError(`${tokenContext.operation}: the token server sent no token`, 'ERR_REGISTRY_PROTOCOL', tokenContext);
    const issued = body.issued_at ? Date.parse(body.issued_at) : Date.now();
    const lifetime = (body.expires_in ?? DEFAULT_TOKEN_SECONDS) * 1000;
    return { header: `Bearer ${token}`, expires: (Number.isFinite(issued) ? issued : Date.now()) + lifetime - MARGIN_MS };
  }
}

function scopeKey(scopes: string[]): string {
  return [...scopes].sort().join(' ');
}
