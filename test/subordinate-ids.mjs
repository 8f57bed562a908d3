// Gives a user a subordinate uid and gid range in /etc/subuid and /etc/subgid for the rootless
// pass (CI runs as root on a fresh machine), and takes it out again afterwards.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const FILES = ['/etc/subuid', '/etc/subgid'];
/** Far from the ranges useradd hands out (100000 + 65536 n), 65536 ids as podman's default. */
const START = 1_000_000_000;
const COUNT = 65536;

/** Adds "uid:START:COUNT" to both files unless the user has a range; returns the undo. */
export function grantSubordinateIds(uid) {
  const before = FILES.map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : null));
  const has = before.every((text) => text?.split('\n').some((l) => l.split(':')[0] === String(uid)));
  if (has) return () => {};
  for (const [i, file] of FILES.entries()) {
    const text = before[i] ?? '';
    writeFileSync(file, `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${uid}:${START}:${COUNT}\n`);
  }
  return () => FILES.forEach((file, i) => (before[i] === null ? writeFileSync(file, '') : writeFileSync(file, before[i])));
}
