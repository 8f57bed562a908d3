import type { OciStore } from '../../container/oci-container.ts';
import { ociFlags } from './flags.ts';

/** `start ID`: the created container's init execs its process. */
export function startCommand(store: OciStore, args: string[]): number {
  store.start(ociFlags(args, {}).id);
  return 0;
}
