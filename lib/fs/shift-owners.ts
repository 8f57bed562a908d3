import type { IdMap } from '../sys/id-map.ts';
import { op, slot, type PlanOp } from '../spawn/ops.ts';
import { runInUserNamespace } from '../spawn/in-user-namespace.ts';

/** An entry of a directory and its owner inside the user namespace; mode: set again after
 * the chown (which clears set-id bits), null for a symlink. */
export interface OwnerToShift {
  rel: string;
  uid: number;
  gid: number;
  mode: number | null;
}

/** Plan ops per job: the executor's plan stays small. */
const BATCH = 4096;
const LAYER = slot(0);

/** Gives the entries of a directory (an unpacked layer, a volume) their owners as root of a user
 * namespace with the map (so an owner 100 becomes the host id the map gives 100); every path is
 * resolved inside the directory without following any symlink. */
export async function shiftOwners(dir: string, owners: readonly OwnerToShift[], map: IdMap): Promise<void> {
  for (let i = 0; i < owners.length; i += BATCH) {
    const setup: PlanOp[] = [
      op.openInRoot({ step: `open the directory ${dir}`, path: dir, root: null, inRoot: dir, into: LAYER, create: 'none' }),
      ...owners.slice(i, i + BATCH).map((o) => op.chownInRoot({
        step: `give ${o.rel} the owner ${o.uid}:${o.gid}`, path: o.rel, root: LAYER, inRoot: o.rel, uid: o.uid, gid: o.gid, mode: o.mode,
      })),
    ];
    await runInUserNamespace(map, { what: `shift the owners of ${dir}`, setup, command: ['true'] });
  }
}
