// Gives a user a subordinate uid and gid range in /etc/subuid and /etc/subgid for the rootless
// pass with a range (CI runs as root on a fresh machine), or takes the user's ranges out for the
// single-id pass; each returns the undo, which puts the files back as they were.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const FILES = ['/etc/subuid', '/etc/subgid'];
/** Far from the ranges useradd hands out (100000 + 65536 n), 65536 ids as podman's default. */
const START = 1_000_000_000;
const COUNT = 65536;

/** Adds "uid:START:COUNT" to both files unless the user has a range; returns the undo. */
export function grantSubordinateIds(uid) {
  const before = FILES.map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : null));
  const owns = lineOwnedBy(uid);
  if (before.every((text) => text?.split('\n').some(owns))) return () => {};
  for (const [i, file] of FILES.entries()) {
    const text = before[i] ?? '';
    writeFileSync(file, `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${uid}:${START}:${COUNT}\n`);
  }
  return restore(before);
}

/** Takes the user's lines (by number or name) out of both files; returns the undo. */
export function withoutSubordinateIds(uid) {
  const before = FILES.map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : null));
  const owns = lineOwnedBy(uid);
  if (before.every((text) => !text?.split('\n').some(owns))) return () => {};
  for (const [i, file] of FILES.entries()) {
    if (before[i] !== null) writeFileSync(file, before[i].split('\n').filter((l) => !owns(l)).join('\n'));
  }
  return restore(before);
}

/** Whether a subuid/subgid line is the user's: by number or by its login name in /etc/passwd. */
function lineOwnedBy(uid) {
  const name = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.split(':')[2] === String(uid))?.split(':')[0];
  return (line) => {
    const who = line.split(':')[0];
    return who === String(uid) || (name !== undefined && name !== '' && who === name);
  };
}

/** Writes the files back as they were (empty where there was none). */
function restore(before) {
  return () => FILES.forEach((file, i) => writeFileSync(file, before[i] ?? ''));
}
