import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { OciStore } from '../../container/oci-container.ts';
import { checkPreserveFds, consoleSocket, createFlags, ociFlags } from './flags.ts';

/** `create --bundle B --pid-file P [--console-socket S] ID`: the init set up and blocked until `start`. */
export async function createCommand(store: OciStore, args: string[]): Promise<number> {
  const { values, id } = ociFlags(args, createFlags);
  checkPreserveFds(values);
  const pid = await store.create(id, resolve(String(values.bundle ?? '.')), consoleSocket(values));
  if (values['pid-file']) writeFileSync(String(values['pid-file']), String(pid));
  return 0;
}
