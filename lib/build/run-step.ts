/** A RUN step: an ordinary (hardened) corral container on the step's parent image, its output
 * streamed, its upper directory committed through the same diff as `commit` when it succeeds;
 * the container is removed in every case. */

import type { Container } from '../container/container.ts';
import type { ContainerSpec } from '../container/spec.ts';
import type { MountSpec } from '../fs/mounts.ts';

/** How a RUN step runs. */
export interface RunStep {
  /** The parent image (manifest digest). */
  image: string;
  command: string[];
  /** Build args in scope (the image's Env wins over them). */
  env: Record<string, string>;
  network: 'none' | 'host';
  /** RUN --mount's mounts, and the mount points they make that the layer leaves out when empty. */
  mounts: MountSpec[];
  mountStubs: string[];
  /** The history entry's created_by. */
  createdBy: string;
  /** SOURCE_DATE_EPOCH (seconds), when the build has one. */
  sourceDateEpoch?: number;
  onOutput: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

/** The result of a RUN: the committed image, or the exit that failed it and the output's end. */
export type RunStepResult = { manifestDigest: string } | { exitCode: number | null; signal: string | null; tail: string };

const TAIL_BYTES = 4096;

/** Runs the step's container and commits its changes when it exits 0. */
export async function runStep(create: (spec: ContainerSpec) => Promise<Container>, step: RunStep): Promise<RunStepResult> {
  const container = await create({ image: step.image, command: step.command, env: step.env, network: step.network, mounts: step.mounts, stdio: 'pipe' });
  let tail = Buffer.alloc(0);
  const collect = (chunk: Buffer): void => {
    step.onOutput(chunk);
    tail = Buffer.concat([tail, chunk]).subarray(-TAIL_BYTES);
  };
  // Killed when it runs; one aborted before or while it starts is killed once started.
  const abort = (): void => {
    if (container.status !== 'running') return;
    try {
      container.kill('SIGKILL');
    } catch {
      // it ended meanwhile
    }
  };
  try {
    container.stdin?.end();
    const streams = [container.stdout, container.stderr].map((s) => new Promise<void>((resolve) => {
      if (!s) return resolve();
      s.on('data', collect).on('end', resolve).on('close', resolve).on('error', () => resolve());
    }));
    step.signal?.addEventListener('abort', abort, { once: true });
    step.signal?.throwIfAborted();
    await container.start();
    if (step.signal?.aborted) abort();
    const exit = await container.wait();
    await Promise.all(streams);
    step.signal?.throwIfAborted();
    if (exit.exitCode !== 0) return { exitCode: exit.exitCode, signal: exit.signal ?? null, tail: tail.toString('utf8') };
    return await container.commit({ createdBy: step.createdBy, mountStubs: step.mountStubs, ...(step.sourceDateEpoch === undefined ? {} : { sourceDateEpoch: step.sourceDateEpoch }) });
  } finally {
    step.signal?.removeEventListener('abort', abort);
    await container.remove({ force: true });
  }
}
