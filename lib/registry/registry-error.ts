/** The error of a failed registry operation: which registry, repository and operation, the HTTP
 * status and the registry's own error code. Never holds credentials. */

import { CorralError, type CorralErrorCode } from '../sys/errors.ts';

/** Where a registry operation ran, for error messages. */
export interface RegistryContext {
  registry: string;
  repository: string;
  /** 'pull manifest 1.0', 'push blob sha256:…', 'authenticate'. */
  operation: string;
}

/** A CorralError with the registry's side of the story. */
export class RegistryError extends CorralError {
  readonly registry: string;
  readonly repository: string;
  readonly operation: string;
  readonly status?: number;
  /** The first code of the registry's error body ('MANIFEST_UNKNOWN', 'DENIED', …). */
  readonly registryCode?: string;

  constructor(message: string, code: CorralErrorCode, context: RegistryContext, extra: { status?: number; registryCode?: string; cause?: unknown } = {}) {
    super(message, { code, step: context.operation, ...(extra.cause === undefined ? {} : { cause: extra.cause }) });
    this.name = 'RegistryError';
    this.registry = context.registry;
    this.repository = context.repository;
    this.operation = context.operation;
    if (extra.status !== undefined) this.status = extra.status;
    if (extra.registryCode !== undefined) this.registryCode = extra.registryCode;
  }
}

const BY_STATUS: Record<number, CorralErrorCode> = {
  401: 'ERR_REGISTRY_UNAUTHORIZED',
  403: 'ERR_REGISTRY_DENIED',
  404: 'ERR_REGISTRY_NOT_FOUND',
  429: 'ERR_REGISTRY_TOO_MANY_REQUESTS',
};

/** The error for an unexpected HTTP response, with the registry's error body read (briefly) for its code. */
export async function responseError(response: Response, context: RegistryContext): Promise<RegistryError> {
  let registryCode: string | undefined;
  let detail = '';
  try {
    const text = (await response.text()).slice(0, 4096);
    const body = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    const first = body.errors?.[0];
    if (typeof first?.code === 'string') registryCode = first.code;
    if (typeof first?.message === 'string') detail = first.message;
  } catch {
    // not a distribution error body
  }
  const code = BY_STATUS[response.status] ?? (response.status >= 500 ? 'ERR_REGISTRY_UNAVAILABLE' : 'ERR_REGISTRY_REQUEST');
  const what = `${registryCode ?? ''}${detail ? `${registryCode ? ': ' : ''}${detail}` : ''}`;
  return new RegistryError(
    `${context.operation} ${context.registry}/${context.repository}: HTTP ${response.status}${what ? ` ${what}` : ''}`,
    code,
    context,
    { status: response.status, ...(registryCode === undefined ? {} : { registryCode }) },
  );
}

/** The error for a response that breaks the protocol (a missing Location, a wrong digest). */
export function protocolError(why: string, context: RegistryContext, code: CorralErrorCode = 'ERR_REGISTRY_PROTOCOL'): RegistryError {
  return new RegistryError(`${context.operation} ${context.registry}/${context.repository}: ${why}`, code, context);
}
