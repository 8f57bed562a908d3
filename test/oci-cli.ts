// Running runc or corral-oci on bundles made from `runc spec`, for the corral-oci tests.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBusyboxRoot, rmRoot } from './helpers.ts';

// The command as installed: the native front end (start, state, kill, delete), which execs Node on
// dist/corral-oci.js for the rest; 'node' is dist/cli/oci/main.js alone, without the front end.
const front = fileURLToPath(new URL('../bindings/build/corral-oci', import.meta.url));
const cli = fileURLToPath(new URL('../dist/cli/oci/main.js', import.meta.url));

/** What a runtime command gave: its exit status and output. */
export type Result = { status: number | null; stdout: string; stderr: string };

/** Runs `NAME --root ROOT ARGS...` to its end, with more fds given as 3, 4, … (--preserve-fds). */
export function runtimeWithFds(fds: readonly number[], name: 'runc' | 'corral-oci' | 'node', root: string, ...args: string[]): Result {
  const [bin, pre] = name === 'runc' ? ['runc', []] : name === 'node' ? [process.execPath, [cli]] : [front, []];
  // Files, not pipes: a created init keeps the caller's stdio, so a pipe would never reach EOF.
  const out = join(tmpdir(), `oci-out-${process.pid}`);
  const err = join(tmpdir(), `oci-err-${process.pid}`);
  const std = [openSync(out, 'w'), openSync(err, 'w')];
  const r = spawnSync(bin, [...pre, '--root', root, ...args], { stdio: ['ignore', std[0]!, std[1]!, ...fds] });
  std.forEach((fd) => closeSync(fd));
  return { status: r.status, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') };
}

/** Runs `NAME --root ROOT ARGS...` to its end. */
export function runtime(name: 'runc' | 'corral-oci' | 'node', root: string, ...args: string[]): Result {
  return runtimeWithFds([], name, root, ...args);
}

/** Removes the output files runtime() leaves. */
export function removeRuntimeOutput(): void {
  for (const f of ['out', 'err']) rmRoot(join(tmpdir(), `oci-${f}-${process.pid}`));
}

/** A bundle: `runc spec`'s config without a terminal, running args. */
export function bundle(dir: string, args: string[], edit: (c: any) => void = () => {}): string {
  const b = mkdtempSync(join(dir, 'bundle-'));
  assert.equal(spawnSync('runc', ['spec', '--bundle', b]).status, 0);
  const config = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'));
  config.process.terminal = false;
  config.process.args = args;
  edit(config);
  writeFileSync(join(b, 'config.json'), JSON.stringify(config));
  return b;
}

/** A temp dir and a busybox root for a describe block's bundles (made before, removed after):
 * make(args, edit) is a bundle of them; dir() and rootfs() the paths. */
export function useBundles(prefix: string): { dir: () => string; rootfs: () => string; make: (args: string[], edit?: (c: any) => void) => string } {
  let dir = '';
  let rootfs = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    rootfs = makeBusyboxRoot();
  });
  after(() => {
    if (dir) rmRoot(dir);
    removeRuntimeOutput();
    if (rootfs) rmRoot(rootfs);
  });
  return {
    dir: () => dir,
    rootfs: () => rootfs,
    make: (args, edit = () => {}) => bundle(dir, args, (c) => {
      c.root.path = rootfs;
      edit(c);
    }),
  };
}
