import { constants } from 'node:os';
import { CorralError } from '../../sys/errors.ts';
import type { OciStore } from '../../container/oci-container.ts';
import { ociFlags } from './flags.ts';

/** A signal by number, or by name with or without SIG. */
export function signalNumber(raw: string): number {
  if (/^\d+$/.test(raw)) return Number(raw);
  const name = (raw.toUpperCase().startsWith('SIG') ? raw.toUpperCase() : `SIG${raw.toUpperCase()}`) as keyof typeof constants.signals;
  const n = constants.signals[name];
  if (n === undefined) throw new CorralError(`unknown signal "${raw}"`, { code: 'ERR_UNKNOWN_SIGNAL' });
  return n;
}

/** `kill [--all] ID [SIGNAL]` (default SIGTERM). */
export function killCommand(store: OciStore, args: string[]): number {
  const { values, id, rest } = ociFlags(args, { all: { type: 'boolean', short: 'a' } });
  store.kill(id, signalNumber(rest[0] ?? 'TERM'), values.all === true);
  return 0;
}
