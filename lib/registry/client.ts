/** The distribution API over HTTP for one repository: every request with `Accept` where it
 * matters, over the registry's transport (transport.ts), authenticated on a 401, retried on 5xx,
 * 429 and dropped connections. */

import type { Readable } from 'node:stream';
import { CorralError } from '../sys/errors.ts';
import { Authenticator } from './auth.ts';
import type { Credentials } from './credentials.ts';
import { registryHost } from '../image/reference.ts';
import { RegistryError, responseError, type RegistryContext } from './registry-error.ts';
import { tlsFailure, transports, type Transport } from './transport.ts';
import { DEFAULT_RETRY, retryableError, retryableStatus, retryDelay, sleep, type RetryPolicy } from './retry.ts';

/** How to reach a registry. */
export interface ClientOptions {
  /** As the reference names it ('localhost:5000', 'docker.io'). */
  registry: string;
  repository: string;
  credentials?: Credentials;
  /** TLS unverified, and plain HTTP when the registry does not speak TLS. Loopback registries
   * without a CA bundle default to insecure (as Docker's 127.0.0.0/8); false verifies them too. */
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
  /** A body in memory, or one streamed from what `body()` opens (anew for each attempt, so a
   * retry can send it again; give its content-length). */
  body?: Buffer | (() => Readable);
  /** Statuses that are success (default 200). */
  ok?: number[];
  /** 'push' asks for push and pull rights; `extraScopes` for a mount's source repository. */
  access?: 'pull' | 'push';
  extraScopes?: string[];
  /** Sent once: the caller recovers itself (a PATCH whose chunk may have arrived). */
  once?: boolean;
}

/** A streamed body: its stream opened only when fetch starts reading it, and closed by close()
 * once the request has its answer (a registry that answers before reading everything, or a
 * request that fails before sending, leaves no open file behind). */
function streamed(open: () => Readable): { body: AsyncIterable<Buffer>; close(): void } {
  let stream: Readable | undefined;
  let closed = false;
  return {
    body: (async function* () {
      if (closed) return;
      stream = open();
      try {
        yield* stream as AsyncIterable<Buffer>;
      } finally {
        stream.destroy();
      }
    })(),
    close: () => {
      closed = true;
      stream?.destroy();
    },
  };
}

/** The transports a client and its copies share: the one in use, and whether it has answered. */
interface TransportChoice {
  list: Transport[];
  index: number;
  settled: boolean;
}

/** A client for one repository of one registry; keeps its tokens for the requests that follow. */
export class RegistryClient {
  readonly registry: string;
  readonly repository: string;
  readonly #host: string;
  #choice: TransportChoice;
  readonly #auth: Authenticator;
  readonly #options: ClientOptions;
  /** How requests (and blob downloads) are retried. */
  readonly retry: RetryPolicy;
  /** Aborts every request of this client. */
  readonly signal: AbortSignal | undefined;

  constructor(options: ClientOptions) {
    this.#options = options;
    this.registry = options.registry;
    this.repository = options.repository;
    this.#host = registryHost(options.registry);
    this.#choice = { list: transports(options), index: 0, settled: false };
    this.#auth = new Authenticator(options.credentials, () => this.#transport.dispatcher);
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.signal = options.signal;
  }

  /** The same registry and repository, with requests aborted by `signal` instead. */
  withSignal(signal: AbortSignal): RegistryClient {
    const copy = new RegistryClient({ ...this.#options, signal });
    copy.#choice = this.#choice;
    return copy;
  }

  get #transport(): Transport {
    return this.#choice.list[this.#choice.index]!;
  }

  get #origin(): string {
    return `${this.#transport.scheme}://${this.#host}`;
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
    const scopes = [`repository:${this.repository}:${init.access === 'push' ? 'pull,push' : 'pull'}`, ...(init.extraScopes ?? [])];
    const ok = init.ok ?? [200];
    let challenged = false;
    const attempts = init.once ? 1 : this.retry.attempts;
    for (let attempt = 1; ; attempt++) {
      this.#checkAborted(context);
      const url = typeof target === 'string' ? this.url(target) : new URL(target);
      url.protocol = `${this.#transport.scheme}:`; // a URL made before the transport changed
      const transport = this.#choice.index;
      const headers: Record<string, string> = { ...init.headers };
      const authorization = this.#auth.header(scopes);
      if (authorization) headers.authorization = authorization;
      let response: Response;
      const stream = typeof init.body === 'function' ? streamed(init.body) : undefined;
      try {
        response = await fetch(url, {
          method: init.method ?? 'GET',
          headers,
          ...(stream ? { body: stream.body, duplex: 'half' } : init.body ? { body: init.body } : {}),
          redirect: 'follow',
          ...(this.signal ? { signal: this.signal } : {}),
          ...(this.#transport.dispatcher ? { dispatcher: this.#transport.dispatcher } : {}),
        } as RequestInit & globalThis.RequestInit);
        this.#choice.settled = true;
      } catch (error) {
        this.#checkAborted(context);
        if (this.#fallBack(transport)) {
          attempt--;
          continue;
        }
        const tls = this.#choice.list[transport]!.verify ? tlsFailure(error) : undefined;
        if (tls) throw this.#tlsError(tls, context, error);
        if (retryableError(error) && attempt < attempts) {
          await sleep(retryDelay(attempt, this.retry), this.signal);
          continue;
        }
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        throw new RegistryError(`${init.operation} ${this.registry}/${this.repository}: ${cause?.code ?? cause?.message ?? (error as Error).message}${attempt > 1 ? ` (after ${attempt} attempts)` : ''}`, 'ERR_REGISTRY_UNAVAILABLE', context, { cause: error });
      } finally {
        stream?.close();
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

  /** After a failed fetch over transport `tried`: whether to go on with the next one (an insecure
   * registry that does not answer HTTPS gets plain HTTP, Docker's fallback). */
  #fallBack(tried: number): boolean {
    const choice = this.#choice;
    if (choice.index !== tried) return true; // a concurrent request moved on already
    if (choice.settled || tried + 1 >= choice.list.length) return false;
    choice.index = tried + 1;
    return true;
  }

  /** A certificate that is not trusted, or a registry that does not speak TLS: no retry helps. */
  #tlsError(tls: NonNullable<ReturnType<typeof tlsFailure>>, context: RegistryContext, cause: unknown): RegistryError {
    const why = tls.kind === 'untrusted'
      ? `the registry's TLS certificate is not trusted (${tls.code}: ${tls.message}); give its CA bundle as registries['${this.registry}'].ca, or mark it insecure`
      : `the registry does not speak TLS (${tls.code}); mark it insecure to use plain HTTP`;
    return new RegistryError(`${context.operation} ${this.registry}/${this.repository}: ${why}`, 'ERR_REGISTRY_TLS', context, { cause });
  }

  #checkAborted(context: RegistryContext): void {
    if (this.signal?.aborted) {
      throw new CorralError(`${context.operation} ${this.registry}/${this.repository}: aborted`, { code: 'ABORT_ERR', cause: this.signal.reason });
    }
  }
}
