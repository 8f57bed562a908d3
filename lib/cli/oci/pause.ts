import type { OciStore } from '../../container/oci-container.ts';
import { ociFlags } from './flags.ts';

/** `pause ID`: every process of the container frozen (cgroup.freeze). */
export async function pauseCommand(store: OciStore, args: string[]): Promise<number> {
  await store.setPaused(ociFlags(args, {}).id, true);
  return 0;
}

/** `resume ID`: a paused container thawed. */
export async function resumeCommand(store: OciStore, args: string[]): Promise<number> {
  await store.setPaused(ociFlags(args, {}).id, false);
  return 0;
}
