import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { OciStore } from '../../container/oci-container.ts';
import { ociFlags } from './flags.ts';

/** `create --bundle B --pid-file P ID`: the init set up and blocked until `start`. */
export async function createCommand(store: OciStore, args: string[]): Promise<number> {
  const { values, id } = ociFlags(args, { bundle: { type: 'string', short: 'b' }, 'pid-file': { type: 'string' }, 'no-pivot': { type: 'boolean' }, 'no-new-keyring': { type: 'boolean' }, 'console-socket': { type: 'string' }, 'preserve-fds': { type: 'string' } });
  if (values['console-socket'] !== undefined) throw new Error('--console-socket is not supported yet (process.terminal)');
  if (values['preserve-fds'] !== undefined && values['preserve-fds'] !== '0') throw new Error('--preserve-fds is not supported yet');
  const pid = await store.create(id, resolve(String(values.bundle ?? '.')));
  if (values['pid-file']) writeFileSync(String(values['pid-file']), String(pid));
  return 0;
}
