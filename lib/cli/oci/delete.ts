import type { OciStore } from '../../container/oci-container.ts';
import { ociFlags } from './flags.ts';

/** `delete [--force] ID`: nothing of the container is left (processes, cgroup, state). */
export async function deleteCommand(store: OciStore, args: string[]): Promise<number> {
  const { values, id } = ociFlags(args, { force: { type: 'boolean', short: 'f' } });
  await store.delete(id, values.force === true);
  return 0;
}
