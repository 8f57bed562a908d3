import type { OciStore } from '../../container/oci-container.ts';
import { ociFlags } from './flags.ts';

/** `start ID`: the created container's init execs its process. */
export async function startCommand(store: OciStore, args: string[]): Promise<number> {
  await store.start(ociFlags(args, {}).id);
  return 0;
}
