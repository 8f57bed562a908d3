// Shared by the hostile-container tests (test/security/*.test.ts, one file per attack): a busybox
// root with the escape probe (test/fixtures/probe.c) in /bin, and runners that return its output.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import { Runtime, type ContainerSpec, type RunResult } from '../../lib/index.ts';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';

const probeSource = fileURLToPath(new URL('../fixtures/probe.c', import.meta.url));
let probeBinary: string | undefined;

/** The probe, compiled statically once per process (removed when the process exits). */
function compiledProbe(): string {
  if (probeBinary) return probeBinary;
  const dir = mkdtempSync(join(tmpdir(), 'corral-test-probe-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  execFileSync('cc', ['-static', '-O2', '-o', join(dir, 'probe'), probeSource]);
  probeBinary = join(dir, 'probe');
  return probeBinary;
}

/** The runtime the hostile tests use: no cgroup of its own, so it runs as root and as uid 65534. */
export const rt = new Runtime({ cgroupParent: false });

/** A hostile container's root: call in a describe; root is set by its before hook. */
export interface Hostile {
  root: string;
  /** Runs the probe with default settings plus extra, checks it exited 0, returns what it printed. */
  probe(args: string[], extra?: Partial<ContainerSpec>): Promise<string>;
  /** Runs a shell script in the root with default settings plus extra. */
  sh(script: string, extra?: Partial<ContainerSpec>): Promise<RunResult>;
}

/** Registers before/after hooks that make a busybox root with /bin/probe and a setuid-root copy
 * /bin/probe-suid, and returns the handle to run in it. */
export function hostileRoot(): Hostile {
  const h: Hostile = {
    root: '',
    async probe(args, extra = {}) {
      const r = await rt.run({ command: ['/bin/probe', ...args], rootfs: h.root, ...extra });
      assert.equal(r.exitCode, 0, `probe ${args.join(' ')}: ${r.stderr.toString()}`);
      return r.stdout.toString().trim();
    },
    sh: (script, extra = {}) => rt.run({ command: ['sh', '-c', script], rootfs: h.root, ...extra }),
  };
  before(function () {
    this.timeout(60_000);
    h.root = makeBusyboxRoot();
    copyFileSync(compiledProbe(), join(h.root, 'bin/probe'));
    chmodSync(join(h.root, 'bin/probe'), 0o755);
    copyFileSync(compiledProbe(), join(h.root, 'bin/probe-suid'));
    chmodSync(join(h.root, 'bin/probe-suid'), 0o4755);
  });
  after(() => rmRoot(h.root));
  return h;
}

/** "root" or "rootless", for test titles. */
export const mode = rootless ? 'rootless' : 'root';

const libc = koffi.load('libc.so.6');
const openNoCloexec = libc.func('int open(const char *path, int flags)');
const closeFd = libc.func('int close(int fd)');
const O_DIRECTORY = 0o200000;

/** Opens a directory the way a careless host library would: without O_CLOEXEC, so every child
 * this process starts inherits it. Returns the fd and a function that closes it. */
export function leakDirectoryFd(path: string): { fd: number; close(): void } {
  const fd = openNoCloexec(path, O_DIRECTORY) as number;
  assert.ok(fd >= 0, `open ${path} failed`);
  return { fd, close: () => closeFd(fd) };
}
