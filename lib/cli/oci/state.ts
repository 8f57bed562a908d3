import { ociStateJson, type OciStore } from '../../container/oci-container.ts';
import { ociFlags } from './flags.ts';

/** `state ID`: runc's JSON state. */
export function stateCommand(store: OciStore, args: string[]): number {
  process.stdout.write(ociStateJson(store.state(ociFlags(args, {}).id)));
  return 0;
}
