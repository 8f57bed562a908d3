import { constants } from 'node:os';

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value, name]),
);

/** The name of a positive errno value ('ENOENT'), so errors carry Node-style codes. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** Details a CorralError can carry besides its message. */
export interface CorralErrorDetails {
  code: string;
  errno?: number;
  syscall?: string;
  path?: string;
  step?: string;
  cause?: unknown;
}

/** The one error type of corral: `code` is an errno name or an ERR_… code of ours. */
export class CorralError extends Error {
  readonly code: string;
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
