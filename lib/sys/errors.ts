import { constants } from 'node:os';
import type { ErrnoCode } from './errno-code.ts';

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value, name]),
);

/** The name of a positive errno value ('ENOENT'), so errors carry Node-style codes. */
export function errnoName(errno: number): ErrnoCode {
  return (errnoNames.get(errno) ?? `E${errno}`) as ErrnoCode;
}

/** Every code corral's own checks throw (errno names such as 'ENOENT' come from failed system
 * calls besides these), so callers can switch on `error.code` exhaustively. */
export type CorralErrorCode =
  | 'ABORT_ERR'
  | 'ERR_BLOB_NOT_FOUND'
  | 'ERR_BUILD_CONTEXT'
  | 'ERR_BUILD_FAILED'
  | 'ERR_CGROUP_CONTROLLER'
  | 'ERR_CGROUP_UNAVAILABLE'
  | 'ERR_COMMIT_ABORTED'
  | 'ERR_COMMIT_UNSUPPORTED'
  | 'ERR_CONTAINER_AMBIGUOUS'
  | 'ERR_CONTAINER_EXISTS'
  | 'ERR_CONTAINER_NOT_FOUND'
  | 'ERR_CONTAINER_STATE'
  | 'ERR_DIGEST_MISMATCH'
  | 'ERR_DOCKERFILE_SYNTAX'
  | 'ERR_HOOK_FAILED'
  | 'ERR_IMAGE_IN_USE'
  | 'ERR_IMAGE_NOT_FOUND'
  | 'ERR_INVALID_ARCHIVE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_INVALID_DIGEST'
  | 'ERR_INVALID_IMAGE'
  | 'ERR_INVALID_LAYER'
  | 'ERR_INVALID_LIMITS'
  | 'ERR_INVALID_PLAN'
  | 'ERR_INVALID_REF'
  | 'ERR_INVALID_SECCOMP'
  | 'ERR_INVALID_SPEC'
  | 'ERR_LAYER_CHANGED'
  | 'ERR_LAYER_COLLISION'
  | 'ERR_LAYER_READ'
  | 'ERR_LAYER_TOO_LARGE'
  | 'ERR_NATIVE_MISSING'
  | 'ERR_NETWORK_ADDRESS'
  | 'ERR_NETWORK_EXISTS'
  | 'ERR_NETWORK_IN_USE'
  | 'ERR_NETWORK_NOT_FOUND'
  | 'ERR_NETWORK_SETUP'
  | 'ERR_NETWORK_UNAVAILABLE'
  | 'ERR_NO_MATCHING_PLATFORM'
  | 'ERR_PORT_IN_USE'
  | 'ERR_REGISTRY_DENIED'
  | 'ERR_REGISTRY_NOT_FOUND'
  | 'ERR_REGISTRY_PROTOCOL'
  | 'ERR_REGISTRY_REQUEST'
  | 'ERR_REGISTRY_TLS'
  | 'ERR_REGISTRY_TOO_MANY_REQUESTS'
  | 'ERR_REGISTRY_UNAUTHORIZED'
  | 'ERR_REGISTRY_UNAVAILABLE'
  | 'ERR_REGISTRY_UNSUPPORTED_MANIFEST'
  | 'ERR_ROOTLESS_IDS'
  | 'ERR_SECCOMP_UNAVAILABLE'
  | 'ERR_SETUP_FAILED'
  | 'ERR_STATE_CORRUPT'
  | 'ERR_SUPERVISOR_FAILED'
  | 'ERR_STREAM_DESTROYED'
  | 'ERR_TREE_CHANGED'
  | 'ERR_UNKNOWN_IMAGE_FORMAT'
  | 'ERR_UNKNOWN_SIGNAL'
  | 'ERR_UNSAFE_RUNTIME_ROOT'
  | 'ERR_UNSUPPORTED_COMPRESSION'
  | 'ERR_UNSUPPORTED_FILE_NAME'
  | 'ERR_UNSUPPORTED_MEDIA_TYPE'
  | 'ERR_UNSUPPORTED_OVERLAY'
  | 'ERR_VOLUME_EXISTS'
  | 'ERR_VOLUME_IN_USE'
  | 'ERR_VOLUME_NOT_FOUND';

/** A CorralError's code: one of ours, or the errno name of a failed system call ('ENOENT'). */
export type ErrorCode = CorralErrorCode | ErrnoCode;

/** Details a CorralError can carry besides its message. */
export interface CorralErrorDetails {
  code: ErrorCode;
  errno?: number;
  syscall?: string;
  path?: string;
  step?: string;
  cause?: unknown;
}

/** The one error type of corral: `code` is an errno name or an ERR_… code of ours. */
export class CorralError extends Error {
  readonly code: ErrorCode;
  readonly errno?: number;
  readonly syscall?: string;
  readonly path?: string;
  readonly step?: string;

  constructor(message: string, details: CorralErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'CorralError';
    this.code = details.code;
    if (details.errno !== undefined) this.errno = details.errno;
    if (details.syscall !== undefined) this.syscall = details.syscall;
    if (details.path !== undefined) this.path = details.path;
    if (details.step !== undefined) this.step = details.step;
  }
}

/** Builds the error for a failed system call: "syscall path: ENOENT (step)". */
export function syscallError(
  syscall: string,
  errno: number,
  extra: { path?: string; step?: string } = {},
): CorralError {
  const code = errnoName(errno);
  const where = extra.step ?? (extra.path === undefined ? syscall : `${syscall} ${extra.path}`);
  return new CorralError(`${where}: ${code} (errno ${errno})`, { code, errno, syscall, ...extra });
}

/** The one conversion of a Node error (fs, child_process, streams) into a CorralError: keeps its
 * errno code, syscall and path and names the step that failed; a CorralError passes through. */
export function fromNodeError(error: unknown, step: string, path?: string): CorralError {
  if (error instanceof CorralError) return error;
  const e = error as NodeJS.ErrnoException;
  const code: ErrorCode = typeof e?.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) ? (e.code as ErrorCode) : 'ERR_SETUP_FAILED';
  const where = path ?? e?.path;
  const reason = typeof e?.code === 'string' ? e.code : String(e?.message ?? e);
  return new CorralError(`${step}${where === undefined ? '' : ` ${where}`}: ${reason}`, {
    code,
    ...(typeof e?.errno === 'number' ? { errno: Math.abs(e.errno) } : {}),
    ...(e?.syscall !== undefined ? { syscall: e.syscall } : {}),
    ...(where !== undefined ? { path: where } : {}),
    step,
    cause: error,
  });
}

/** The errno code of a Node or corral error ('ENOENT'), or undefined: for "is it missing?" checks. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
