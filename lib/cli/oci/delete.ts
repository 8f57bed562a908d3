import type { OciStore } from '../../container/oci-container.ts';
import { ociFlags } from './flags.ts';
import { logWarning, type OciLog } from './log.ts';

/** `delete [--force] ID`: nothing of the container is left (processes, cgroup, state); a failed
 * poststop hook is logged as a warning. */
export async function deleteCommand(store: OciStore, args: string[], log: OciLog): Promise<number> {
  const { values, id } = ociFlags(args, { force: { type: 'boolean', short: 'f' } });
  for (const warning of await store.delete(id, values.force === true)) logWarning(log, warning);
  return 0;
}
