import { close, openRaw, OPEN_FLAGS } from '../sys/libc.ts';
import { CLONE } from '../sys/constants.ts';
import type { IdMap } from '../sys/id-map.ts';
import { exitWatcher } from './exit-watcher.ts';
import { launchPending } from './launch.ts';

/** The user namespaces made so far, one per map, as fds this process holds until it exits. */
const held = new Map<string, Promise<number>>();

/** An fd of a user namespace with this map, made once per process (podman's pause process idea,
 * without a process: an open nsfs fd keeps the namespace alive, and so does every container
 * created in it, so nothing outlives the last of them). Containers join it (LaunchSpec.
 * userNamespaceFd) instead of running newuidmap and newgidmap at each start. */
export function sharedUserNamespace(map: IdMap): Promise<number> {
  const key = JSON.stringify(map);
  let fd = held.get(key);
  if (!fd) {
    fd = makeUserNamespace(map);
    held.set(key, fd);
    fd.catch(() => held.delete(key));
  }
  return fd;
}

/** A child in a new user namespace, mapped through the newuidmap handshake and held before exec,
 * whose namespace is opened through /proc (it is our unreaped child: the pid cannot be reused),
 * then let go: it exits when its start pipe closes unwritten. */
async function makeUserNamespace(map: IdMap): Promise<number> {
  const devNull = openRaw('/dev/null', OPEN_FLAGS.O_RDWR);
  try {
    const child = await launchPending({
      cloneFlags: CLONE.NEWUSER, setup: [], command: ['true'], env: [], searchPath: '/usr/bin:/bin',
      stdio: [devNull, devNull, devNull], idMap: map,
    });
    try {
      return openRaw(`/proc/${child.pid}/ns/user`, 0);
    } finally {
      await child.abandon();
      await new Promise<void>((resolve) => exitWatcher.watch(child.pidfd, () => { close(child.pidfd); resolve(); }));
    }
  } finally {
    close(devNull);
  }
}
