import { CorralError } from '../sys/errors.ts';
import { launchNow, launchPending, type LaunchSpec } from '../spawn/launch.ts';
import { Container, type ContainerOwner } from './container.ts';
import { abortError, checkRunOptions, collectRun, type RunOptions, type RunResult } from './run-result.ts';
import { cloneFlags, containerSetupOps, envList, searchPath } from './setup.ts';
import { resolveSpec, type ContainerSpec, type ResolvedSpec } from './spec.ts';
import { openStdio, type StdioSet } from './stdio.ts';

/** Settings of a Runtime. */
export interface RuntimeConfig {
  /** Default milliseconds stop() waits between SIGTERM and SIGKILL (10000). */
  stopTimeout?: number;
}

/** Owns a set of containers: creates, runs and tracks them. The module-level run/create use a
 * default one. */
export class Runtime {
  readonly #containers = new Map<string, Container>();
  readonly #owner: ContainerOwner;
  readonly #rootless = process.getuid!() !== 0;

  constructor(config: RuntimeConfig = {}) {
    const stopTimeout = config.stopTimeout ?? 10_000;
    if (!Number.isFinite(stopTimeout) || stopTimeout < 0) {
      throw new CorralError(`stopTimeout must be a non-negative number, got ${stopTimeout}`, { code: 'ERR_INVALID_ARG_VALUE' });
    }
    this.#owner = { stopTimeout, forget: (id) => this.#containers.delete(id) };
  }

  /** Creates a container whose first process is set up and waits before exec until start(). */
  async create(spec: ContainerSpec): Promise<Container> {
    const resolved = this.#resolve(spec);
    const stdio = openStdio(resolved.stdio);
    this.#containers.set(resolved.id, null as unknown as Container);
    try {
      const pending = await launchPending(this.#launchSpec(resolved, stdio));
      stdio.releaseChildEnds();
      const container = new Container(resolved, this.#owner, pending, stdio, false);
      this.#containers.set(resolved.id, container);
      return container;
    } catch (e) {
      this.#containers.delete(resolved.id);
      stdio.destroy();
      throw e;
    }
  }

  /** Runs a container to its end and returns its exit and output; it is removed afterwards. */
  async run(spec: ContainerSpec, options: RunOptions = {}): Promise<RunResult> {
    const resolved = this.#resolve(spec);
    checkRunOptions(options, resolved.stdio === 'pipe');
    if (options.signal?.aborted) throw abortError(options.signal);
    const stdio = openStdio(resolved.stdio);
    const startedAt = performance.now();
    let container: Container;
    try {
      const proc = await launchNow(this.#launchSpec(resolved, stdio));
      stdio.releaseChildEnds();
      container = new Container(resolved, this.#owner, proc, stdio, true);
    } catch (e) {
      stdio.destroy();
      throw e;
    }
    this.#containers.set(resolved.id, container);
    try {
      return await collectRun({
        stdin: container.stdin,
        stdout: container.stdout,
        stderr: container.stderr,
        wait: () => container.wait(),
        kill: (signal) => {
          if (container.status === 'running') container.kill(signal);
        },
      }, options, startedAt);
    } finally {
      await container.remove({ force: true });
    }
  }

  /** The containers this runtime has and has not removed. */
  list(): Container[] {
    return [...this.#containers.values()].filter((c) => c !== null);
  }

  /** A container by id, or undefined. */
  get(id: string): Container | undefined {
    return this.#containers.get(id) ?? undefined;
  }

  #resolve(spec: ContainerSpec): ResolvedSpec {
    const resolved = resolveSpec(spec, this.#rootless);
    if (this.#containers.has(resolved.id)) {
      throw new CorralError(`a container with id ${resolved.id} already exists`, { code: 'ERR_CONTAINER_EXISTS' });
    }
    return resolved;
  }

  #launchSpec(spec: ResolvedSpec, stdio: StdioSet): LaunchSpec {
    return {
      cloneFlags: cloneFlags(spec),
      setup: containerSetupOps(spec),
      command: spec.command,
      env: envList(spec.env),
      searchPath: searchPath(spec.env),
      stdio: stdio.childFds,
    };
  }
}
