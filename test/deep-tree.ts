// A directory tree deeper than PATH_MAX allows to name, built with busybox sh (on the host or inside
// a container) in chunks of 1,000 levels that are moved under one another, so no path used is long.

/** Levels per chunk: 'd/' x 1000 is 2,000 bytes, under PATH_MAX. */
const CHUNK = 1000;

/** Bytes the tree holds: the file 'f' ("bottom\n") and the symlink 'out' (to outside) at the bottom. */
export function deepTreeBytes(outside: string): number {
  return 'bottom\n'.length + outside.length;
}

/** A busybox sh script that makes parent/name, chunks x 1,001 directories deep, with at the bottom
 * a file and a symlink 'out' to outside (which must survive the tree's removal). */
export function deepTreeScript(parent: string, name: string, chunks: number, outside: string): string {
  const steps = [`cd '${parent}' || exit 1`, `p=d; i=1; while [ $i -lt ${CHUNK} ]; do p=$p/d; i=$((i+1)); done`];
  steps.push(`mkdir -p t0/$p && echo bottom > t0/$p/f && ln -s '${outside}' t0/$p/out || exit 1`);
  for (let k = 1; k < chunks; k++) steps.push(`mkdir -p t${k}/$p && mv t${k - 1} t${k}/$p/ || exit 1`);
  steps.push(`mv t${chunks - 1} '${name}'`);
  return steps.join('\n');
}
