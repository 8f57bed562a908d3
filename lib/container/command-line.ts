import type { ImageDefaults } from './image-provider.ts';
import type { ContainerSpec } from './spec.ts';

/** The command line a spec runs, as Docker composes it: the spec's entrypoint and command, or the
 * image's Entrypoint and Cmd where the spec leaves them out. Unchecked: resolveSpec checks it, and
 * the listing of detached containers (detached-list.ts) shows it without resolving the spec. */
export function commandLine(spec: ContainerSpec, image: ImageDefaults | null): string[] {
  return image
    ? spec.entrypoint ? [...spec.entrypoint, ...(spec.command ?? [])] : [...image.entrypoint, ...(spec.command ?? image.cmd)]
    : [...(spec.entrypoint ?? []), ...(spec.command ?? [])];
}
