/** corral's public API. */
import { Runtime } from './image/runtime.ts';
import type { Container } from './container/container.ts';
import type { ContainerSpec } from './container/spec.ts';
import type { RunOptions, RunResult } from './container/run-result.ts';

export { Runtime } from './image/runtime.ts';
export type { RuntimeConfig } from './container/runtime.ts';
export type { ImageInfo, ImageSummary, DiskUsage, ImportOptions, ImageProgress, LayerInfo } from './image/image-store.ts';
export type { ImageFormat } from './image/formats/io.ts';
export type { CommitChanges } from './container/image-provider.ts';
export { Container, type ContainerStatus, type ExecOptions, type StopOptions, type CommitOptions } from './container/container.ts';
export type { ContainerSpec, NamespaceToggles, StdioMode } from './container/spec.ts';
export type { DeviceSpec } from './container/devices.ts';
export type { ExitInfo, RunOptions, RunResult } from './container/run-result.ts';
export { CorralError } from './sys/errors.ts';

let defaultRuntime: Runtime | undefined;

/** The runtime behind the module-level run() and create(). */
export function getDefaultRuntime(): Runtime {
  defaultRuntime ??= new Runtime();
  return defaultRuntime;
}

/** Runs a command in a new container and resolves with its exit and output. */
export function run(spec: ContainerSpec, options?: RunOptions): Promise<RunResult> {
  return getDefaultRuntime().run(spec, options);
}

/** Creates a container that waits before exec until start(). */
export function create(spec: ContainerSpec): Promise<Container> {
  return getDefaultRuntime().create(spec);
}
