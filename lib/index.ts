/** corral's public API. */
import { Runtime } from './runtime.ts';
import type { Container } from './container/container.ts';
import type { ContainerSpec } from './container/spec.ts';
import type { EncodedRunOptions, RunOptions, RunResult } from './container/run-result.ts';

export { Runtime, type RuntimeConfig, type Images, type Volumes, type Networks } from './runtime.ts';
export type { NetworkInfo, NetworkOptions } from './net/network-store.ts';
export type { PublishedPort } from './net/ports.ts';
export type { ImageInfo, ImageSummary, DiskUsage, ImportOptions, ImageProgress, LayerInfo } from './image/image-store.ts';
export type { ImageFormat } from './image/formats/io.ts';
export type { BuildOptions, BuildProgress, BuildSecret } from './build/builder.ts';
export type { CommitChanges } from './container/image-provider.ts';
export type { PullPolicy } from './container/pull-policy.ts';
export type { RegistriesConfig, RegistrySettings } from './registry/registry-config.ts';
export { Container, type ContainerEvents, type ContainerInfo, type Supervision } from './container/container.ts';
export type { ContainerStatus } from './container/status.ts';
export type { ExecOptions, ExecProcess, SpawnOptions } from './container/exec.ts';
export type { Terminal, TerminalSize } from './container/terminal.ts';
export type { LogEntry, LogOptions } from './container/logs.ts';
export type { AttachOptions, AttachResult } from './container/attach.ts';
export type { StopOptions } from './container/stop.ts';
export type { CommitOptions } from './container/commit.ts';
export type { IdMap, IdRange } from './sys/id-map.ts';
export type { ContainerSpec, NamespaceToggles, StdioMode, NetworkSpec, PortSpec } from './container/spec.ts';
export type { CreateSpec, DetachedSpec } from './container/detached-spec.ts';
export type { DeviceSpec } from './container/devices.ts';
export type { CapabilitySpec } from './container/capabilities.ts';
export type { SeccompSpec, RlimitSpec } from './container/hardening.ts';
export type { SeccompProfile, SeccompRule, SeccompArg, SeccompAction, SeccompOp } from './seccomp/profile.ts';
export type { Limits, IoLimit } from './cgroup/limits.ts';
export type { CgroupStats } from './cgroup/cgroup.ts';
export type { MountSpec, Propagation } from './fs/mounts.ts';
export type { VolumeInfo, VolumeOptions } from './fs/volumes.ts';
export type { ExitInfo, RunOptions, EncodedRunOptions, RunResult } from './container/run-result.ts';
export { CorralError, type ErrorCode, type CorralErrorCode } from './sys/errors.ts';

let defaultRuntime: Runtime | undefined;

/** The runtime behind the module-level run() and create(). */
export function getDefaultRuntime(): Runtime {
  defaultRuntime ??= new Runtime();
  return defaultRuntime;
}

/** Runs a command in a new container and resolves with its exit and output. */
export function run(spec: ContainerSpec, options: EncodedRunOptions): Promise<RunResult<string>>;
export function run(spec: ContainerSpec, options?: RunOptions): Promise<RunResult>;
export function run(spec: ContainerSpec, options?: RunOptions): Promise<RunResult<Buffer | string>> {
  return getDefaultRuntime().run(spec, options);
}

/** Creates a container that waits before exec until start(). */
export function create(spec: ContainerSpec): Promise<Container> {
  return getDefaultRuntime().create(spec);
}
