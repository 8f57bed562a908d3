import { closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { CorralError, syscallError } from '../sys/errors.ts';
import { availableControllers } from './hierarchy.ts';
import type { CgroupWrites } from './limits.ts';

/** Resource usage of a container; a part whose controller is missing is null. */
export interface CgroupStats {
  memory: { current: number; peak: number | null; limit: number | null } | null;
  cpu: { usageUsec: number; userUsec: number; systemUsec: number; throttledUsec: number | null };
  pids: { current: number; limit: number | null } | null;
  io: { readBytes: number; writeBytes: number } | null;
}

function fsError(e: unknown, syscall: string, path: string, step: string): CorralError {
  const err = e as NodeJS.ErrnoException;
  return syscallError(syscall, -(err.errno ?? 0) || 5, { path, step });
}

function readKeyed(path: string): Map<string, number> {
  const out = new Map<string, number>();
  if (!existsSync(path)) return out;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v !== undefined) out.set(k, Number(v));
  }
  return out;
}

function readNumber(path: string): number | null {
  if (!existsSync(path)) return null;
  const text = readFileSync(path, 'utf8').trim();
  return text === 'max' ? null : Number(text);
}

/** Enables controllers for the children of each group from the hierarchy's root down to dir, so a
 * group made in dir can use them; names the controller and the reason when one cannot be had. */
export function enableControllers(mount: string, dir: string, controllers: Set<string>): void {
  if (controllers.size === 0) return;
  const chain: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    chain.unshift(d);
    if (d === mount || !relative(mount, d) || relative(mount, d).startsWith('..')) break;
  }
  for (const group of chain) {
    const offered = availableControllers(group);
    const enabled = new Set(readFileSync(join(group, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/));
    for (const controller of controllers) {
      if (enabled.has(controller)) continue;
      if (!offered.has(controller)) {
        throw new CorralError(
          `cgroup controller '${controller}' is not available in ${group} (it offers: ${[...offered].join(' ') || 'none'}); ` +
          `on a hybrid host it is bound to cgroup v1, in a delegated subtree it was not delegated`,
          { code: 'ERR_CGROUP_CONTROLLER', path: group, step: `enable the ${controller} controller` },
        );
      }
      try {
        writeFileSync(join(group, 'cgroup.subtree_control'), `+${controller}`);
      } catch (e) {
        const err = fsError(e, 'write', join(group, 'cgroup.subtree_control'), `enable the ${controller} controller in ${group}`);
        if (err.code === 'EBUSY') {
          throw new CorralError(`cannot enable cgroup controller '${controller}' in ${group}: it holds processes (cgroup v2 allows controllers only for groups without processes of their own); set Runtime cgroupParent to an empty group`, { code: 'ERR_CGROUP_CONTROLLER', errno: 16, syscall: 'write', path: group, step: err.step! });
        }
        throw err;
      }
    }
  }
}

/** One container's cgroup v2 group: made before the clone (the child is born in it through
 * CLONE_INTO_CGROUP), removed after the container. */
export class Cgroup {
  /** Absolute path of the group's directory. */
  readonly path: string;
  #fd: number;
  #removed = false;
  /** False while the memory controller is not enabled for the group: it has no memory.events, so
   * oomKills() reads nothing (on hybrid hosts, every container's exit read a file that is not there). */
  #memory: boolean;

  /** fd -1: opened when first asked for (a group an earlier process made). */
  private constructor(path: string, fd: number, memory: boolean) {
    this.path = path;
    this.#fd = fd;
    this.#memory = memory;
  }

  /** An fd of the directory, for clone3's CLONE_INTO_CGROUP; kept until remove(). */
  get fd(): number {
    if (this.#fd < 0) {
      try {
        this.#fd = openSync(this.path, constants.O_RDONLY | constants.O_DIRECTORY);
      } catch (e) {
        throw fsError(e, 'open', this.path, 'open the container cgroup');
      }
    }
    return this.#fd;
  }

  /** Makes the group in parent (which its callers have made: no mkdir of it on the start path),
   * writes its limits and attaches the device filter (attachDeviceFilter of device-program.ts
   * bound to the rules, or null: none; passed in so a process that only looks at groups loads no
   * BPF); undone on failure. memory: the memory controller is enabled for groups in parent. */
  static create(parent: string, name: string, writes: CgroupWrites, attachFilter: ((groupFd: number, path: string) => void) | null, memory: boolean): Cgroup {
    const path = join(parent, name);
    try {
      mkdirSync(path);
    } catch (e) {
      throw fsError(e, 'mkdir', path, 'create the container cgroup');
    }
    let fd = -1;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
      const group = new Cgroup(path, fd, memory || writes.controllers.has('memory'));
      for (const [file, value] of writes.files) group.write(file, value, `set ${file} to ${value}`);
      // test/security/device-*.test.ts: only allowed devices can be opened in the group.
      attachFilter?.(fd, path);
      return group;
    } catch (e) {
      if (fd >= 0) closeSync(fd);
      rmdirSync(path);
      throw e;
    }
  }

  /** The group an earlier process made (a detached container's), or null when it is gone; its
   * fd is opened only when needed, so handles that only look hold none. */
  static open(path: string): Cgroup | null {
    return existsSync(path) ? new Cgroup(path, -1, true) : null;
  }

  /** Writes one control file; errors name the file and the value. */
  write(file: string, value: string, step = `write ${file}`): void {
    try {
      writeFileSync(join(this.path, file), value);
    } catch (e) {
      throw fsError(e, 'write', join(this.path, file), step);
    }
  }

  /** Reads one control file. */
  read(file: string): string {
    return readFileSync(join(this.path, file), 'utf8');
  }

  /** Changes limits of a live group (whose controllers its caller has enabled). */
  apply(writes: CgroupWrites): void {
    if (writes.controllers.has('memory')) this.#memory = true;
    for (const [file, value] of writes.files) this.write(file, value, `set ${file} to ${value}`);
  }

  /** Usage now. */
  stats(): CgroupStats {
    const p = (f: string): string => join(this.path, f);
    const cpu = readKeyed(p('cpu.stat'));
    const io = existsSync(p('io.stat')) ? this.#ioTotals() : null;
    return {
      memory: existsSync(p('memory.current'))
        ? { current: readNumber(p('memory.current'))!, peak: readNumber(p('memory.peak')), limit: readNumber(p('memory.max')) }
        : null,
      cpu: {
        usageUsec: cpu.get('usage_usec') ?? 0,
        userUsec: cpu.get('user_usec') ?? 0,
        systemUsec: cpu.get('system_usec') ?? 0,
        throttledUsec: cpu.get('throttled_usec') ?? null,
      },
      pids: existsSync(p('pids.current')) ? { current: readNumber(p('pids.current'))!, limit: readNumber(p('pids.max')) } : null,
      io,
    };
  }

  /** How many times the OOM killer killed in this group. */
  oomKills(): number {
    if (!this.#memory) return 0;
    return readKeyed(join(this.path, 'memory.events')).get('oom_kill') ?? 0;
  }

  /** A value of cgroup.events ('populated', 'frozen'). */
  event(key: 'populated' | 'frozen'): number {
    return readKeyed(join(this.path, 'cgroup.events')).get(key) ?? 0;
  }

  /** Freezes or thaws every process of the group; resolves once cgroup.events says so. */
  async setFrozen(frozen: boolean, timeoutMs = 10_000): Promise<void> {
    this.write('cgroup.freeze', frozen ? '1' : '0', frozen ? 'freeze the cgroup' : 'thaw the cgroup');
    await this.#until(() => this.event('frozen') === (frozen ? 1 : 0) || this.event('populated') === 0, timeoutMs, frozen ? 'freeze' : 'thaw');
  }

  /** SIGKILLs every process of the group, including ones that left the process group or session. */
  killAll(): void {
    this.write('cgroup.kill', '1', 'kill every process of the cgroup');
  }

  /** Removes the group, killing what is left in it first; safe to call twice. */
  async remove(): Promise<void> {
    if (this.#removed) return;
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#removed = true;
    // The usual case: the container's processes are gone and the group is empty.
    if (this.#rmdir()) return;
    this.killAll();
    await this.#until(() => this.event('populated') === 0, 10_000, 'empty');
    if (!this.#rmdir()) throw syscallError('rmdir', 16, { path: this.path, step: 'remove the container cgroup' });
  }

  /** rmdir; false while the group still holds processes (EBUSY). */
  #rmdir(): boolean {
    try {
      rmdirSync(this.path);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return true;
      if (code === 'EBUSY') return false;
      throw fsError(e, 'rmdir', this.path, 'remove the container cgroup');
    }
  }

  #ioTotals(): { readBytes: number; writeBytes: number } {
    let readBytes = 0;
    let writeBytes = 0;
    for (const line of this.read('io.stat').split('\n')) {
      readBytes += Number(/rbytes=(\d+)/.exec(line)?.[1] ?? 0);
      writeBytes += Number(/wbytes=(\d+)/.exec(line)?.[1] ?? 0);
    }
    return { readBytes, writeBytes };
  }

  async #until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (let wait = 1; !check(); wait = Math.min(wait * 2, 50)) {
      if (Date.now() > end) throw new CorralError(`cgroup ${this.path} did not ${what} within ${timeoutMs} ms`, { code: 'ETIMEDOUT', path: this.path, step: what });
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
