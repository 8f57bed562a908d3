import type { OciStore } from '../../container/oci-container.ts';
import { ociFlags } from './flags.ts';

/** `state ID`: runc's JSON state. */
export function stateCommand(store: OciStore, args: string[]): number {
  process.stdout.write(`${JSON.stringify(store.state(ociFlags(args, {}).id), null, 2)}\n`);
  return 0;
}
