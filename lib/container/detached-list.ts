import { Cgroup } from '../cgroup/cgroup.ts';
import { CorralError } from '../sys/errors.ts';
import { commandLine } from './command-line.ts';
import type { ExitInfo } from './run-result.ts';
import { StateStore } from './state-store.ts';
import type { ContainerStatus } from './status.ts';
import { detachedStatus, supervisedStatus } from './supervisor-client.ts';

/** A detached container as `corral ps` shows it. */
export interface DetachedSummary {
  id: string;
  name: string | null;
  status: ContainerStatus;
  exit: ExitInfo | null;
  createdAt: string;
  command: string[];
}

/** The detached containers of a root (all: of every status, else the running and paused ones),
 * from their state files alone: no Runtime, no spec resolved, no handle made, so `corral ps` loads
 * only these few modules and lists hundreds quickly (Runtime.list gives handles). A state file that
 * cannot be read goes to onError (ERR_STATE_CORRUPT naming it) and the others are listed. */
export function listDetached(root: string, all: boolean, onError: (error: CorralError) => void): DetachedSummary[] {
  const store = new StateStore(root);
  const found: DetachedSummary[] = [];
  for (const id of store.ids()) {
    try {
      const state = store.read(id);
      const supervised = supervisedStatus(store, id, state.supervisor);
      const cgroup = supervised.exit || state.host.cgroup === null ? null : Cgroup.open(state.host.cgroup);
      const status = detachedStatus(supervised, cgroup);
      if (all || status === 'running' || status === 'paused') {
        found.push({ id, name: state.name, status, exit: supervised.exit, createdAt: state.createdAt, command: commandLine(state.spec, state.image?.defaults ?? null) });
      }
    } catch (e) {
      if (e instanceof CorralError && e.code === 'ERR_CONTAINER_NOT_FOUND') continue;
      if (e instanceof CorralError) onError(e);
      else throw e;
    }
  }
  return found;
}
