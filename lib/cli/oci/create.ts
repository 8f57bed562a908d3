import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { OciStore } from '../../container/oci-container.ts';
import { consoleSocket, preserveFds, createFlags, ociFlags } from './flags.ts';

/** `create --bundle B --pid-file P [--console-socket S] [--preserve-fds N] ID`: the init set up and blocked until `start`. */
export async function createCommand(store: OciStore, args: string[]): Promise<number> {
  const { values, id } = ociFlags(args, createFlags);
  const pid = await store.create(id, resolve(String(values.bundle ?? '.')), { ...consoleSocket(values), ...preserveFds(values) });
  if (values['pid-file']) writeFileSync(String(values['pid-file']), String(pid));
  return 0;
}
