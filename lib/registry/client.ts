/** The distribution API over HTTP for one repository: every request with `Accept` where it
 * matters, authenticated on a 401, retried on 5xx, 429 and dropped connections. */

import { CorralError } from '../sys/errors.ts';
import { Authenticator } from './auth.ts';
import type { Credentials } from './credentials.ts';
import { registryHost } from '../image/reference.ts';
import { RegistryError, responseError, type RegistryContext } from './registry-error.ts';
import { tlsDispatcher } from './tls-dispatcher.ts';
import { DEFAULT_RETRY, retryableError, retryableStatus, retryDelay, sleep, type RetryPolicy } from './retry.ts';

/** How to reach a registry. */
export interface ClientOptions {
  /** As the reference names it ('localhost:5000', 'docker.io'). */
  registry: string;
  repository: string;
  credentials?: Credentials;
  /** Plain HTTP (with scheme 'https': TLS unverified). Loopback registries default to plain HTTP, everything else to HTTPS. */
  insecure?: boolean;
  /** The scheme, when the configuration names one (a mirror's URL). */
  scheme?: 'http' | 'https';
  /** A PEM CA bundle the registry's certificate is verified with. */
  ca?: string;
  retry?: RetryPolicy;
  signal?: AbortSignal;
}

/** One request: what it is for (messages), and what counts as success. */
export interface RequestInit {
  operation: string;
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH';
  headers?: Record<string, string>;
  /** A body in memory, so it can be sent again on a retry. */
  body?: Buffer;
  /** Statuses that are success (default 200). */
  ok?: number[];
  /** 'push' asks for push and pull rights; `extraScopes` for a mount's source repository. */
  access?: 'pull' | 'push';
  extraScopes?: string[];
  /** Sent once: the caller recovers itself (a PATCH whose chunk may have arrived). */
  once?: boolean;
}

const LOOPBACK = /^(localhost|127(?:\.\d+){3}|\[::1\])(?::\d+)?$/;

/** A client for one repository of one registry; keeps its tokens for the requests that follow. */
export class RegistryClient {
  readonly registry: string;
  readonly repository: string;
  readonly #origin: string;
  readonly #auth: Authenticator;
  readonly #dispatcher: object | undefined;
  readonly #options: ClientOptions;
  /** How requests (and blob downloads) are retried. */
  readonly retry: RetryPolicy;
  /** Aborts every request of this client. */
  readonly signal: AbortSignal | undefined;

  constructor(options: ClientOptions) {
    this.#options = options;
    this.registry = options.registry;
    this.repository = options.repository;
    const plain = options.insecure ?? LOOPBACK.test(options.registry);
    const scheme = options.scheme ?? (plain ? 'http' : 'https');
    this.#origin = `${scheme}://${registryHost(options.registry)}`;
    this.#dispatcher = tlsDispatcher(options.ca, !(scheme === 'https' && options.insecure === true));
    this.#auth = new Authenticator(options.credentials);
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.signal = options.signal;
  }

  /** The same registry and repository, with requests aborted by `signal` instead. */
  withSignal(signal: AbortSignal): RegistryClient {
    return new RegistryClient({ ...this.#options, signal });
  }

  /** The context of an operation, for errors. */
  context(operation: string): RegistryContext {
    return { registry: this.registry, repository: this.repository, operation };
  }

  /** The URL of a path under /v2/<repository>/, or of a Location the registry sent (which must stay on this registry). */
  url(pathOrLocation: string): URL {
    if (!/^https?:\/\//.test(pathOrLocation) && !pathOrLocation.startsWith('/')) return new URL(`/v2/${this.repository}/${pathOrLocation}`, this.#origin);
    const url = new URL(pathOrLocation, this.#origin);
    if (url.origin !== this.#origin) {
      throw new RegistryError(`${this.registry}/${this.repository}: the registry sent a Location on another host (${url.host}); not followed`, 'ERR_REGISTRY_PROTOCOL', this.context('follow Location'));
    }
    return url;
  }

  /** Sends a request, answering a 401 once with credentials or a token, retrying what can be
   * retried; resolves with a successful response (its body unread), else throws a RegistryError. */
  async request(target: string | URL, init: RequestInit): Promise<Response> {
    const context = this.context(init.operation);
    const url = typeof target === 'string' ? this.url(target) : target;
    const scopes = [`repository:${this.repository}:${init.access === 'push' ? 'pull,push' : 'pull'}`, ...(init.extraScopes ?? [])];
    const ok = init.ok ?? [200];
    let challenged = false;
    const attempts = init.once ? 1 : this.retry.attempts;
    for (let attempt = 1; ; attempt++) {
      this.#checkAborted(context);
      const headers: Record<string, string> = { ...init.headers };
      const authorization = this.#auth.header(scopes);
      if (authorization) headers.authorization = authorization;
      let response: Response;
      try {
        response = await fetch(url, {
          method: init.method ?? 'GET',
          headers,
          ...(init.body ? { body: init.body } : {}),
          redirect: 'follow',
          ...(this.signal ? { signal: this.signal } : {}),
          ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
        } as RequestInit & globalThis.RequestInit);
      } catch (error) {
        this.#checkAborted(context);
        if (retryableError(error) && attempt < attempts) {
          await sleep(retryDelay(attempt, this.retry), this.signal);
          continue;
        }
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        throw new RegistryError(`${init.operation} ${this.registry}/${this.repository}: ${cause?.code ?? cause?.message ?? (error as Error).message}${attempt > 1 ? ` (after ${attempt} attempts)` : ''}`, 'ERR_REGISTRY_UNAVAILABLE', context, { cause: error });
      }
      if (ok.includes(response.status)) return response;
      if (response.status === 401 && !challenged) {
        challenged = true;
        await this.#auth.challenge(response, scopes, authorization, context, this.signal);
        attempt--;
        continue;
      }
      if (retryableStatus(response.status) && attempt < attempts) {
        await response.body?.cancel();
        await sleep(retryDelay(attempt, this.retry, response.headers.get('retry-after')), this.signal);
        continue;
      }
      const error = await responseError(response, context);
      if (attempt > 1) error.message += ` (after ${attempt} attempts)`;
      throw error;
    }
  }

  #checkAborted(context: RegistryContext): void {
    if (this.signal?.aborted) {
      throw new CorralError(`${context.operation} ${this.registry}/${this.repository}: aborted`, { code: 'ABORT_ERR', cause: this.signal.reason });
    }
  }
}
