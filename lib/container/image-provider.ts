/** What the container layer needs from images (implemented by lib/image, which sits below it). */

import type { PullPolicy } from './pull-policy.ts';
import type { IdMap } from '../sys/id-map.ts';

/** What an image contributes to a container spec. */
export interface ImageDefaults {
  /** Entrypoint + Cmd (the spec's command replaces Cmd). */
  entrypoint: string[];
  cmd: string[];
  env: Record<string, string>;
  cwd: string | undefined;
  user: { uid: number; gid: number; groups: number[] } | undefined;
}

/** An image resolved for running: its defaults and its layer directories. */
export interface ResolvedImage {
  manifestDigest: string;
  defaults: ImageDefaults;
  /** The directory the layer names are relative to. */
  layersDir: string;
  /** Layer directories relative to layersDir, top layer first (overlayfs lowerdir order). */
  lowerNames: string[];
}

/** A container's changes to commit as a new image. */
export interface CommitRequest {
  /** The overlay upper directory holding the changes. */
  upper: string;
  /** The image the container runs, or null for a container on a plain rootfs. */
  baseManifestDigest: string | null;
  /** The user namespace map the upper was written through (its owners are mapped back), or null. */
  idMap: IdMap | null;
  /** The tag; none: an untagged image (a build step). */
  ref?: string;
  /** The history entry's created_by (default 'corral commit'). */
  createdBy?: string;
  message?: string;
  changes?: CommitChanges;
  /** SOURCE_DATE_EPOCH (seconds): the image's created time, and no file of the layer dated later. */
  sourceDateEpoch?: number;
}

/** Config fields a commit can set, as docker commit --change does. */
export interface CommitChanges {
  Cmd?: string[];
  Entrypoint?: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
  Labels?: Record<string, string>;
}

/** Images as a runtime uses them. */
export interface ImageProvider {
  /** The image `ref` names, pulled first as `pull` says. */
  resolve(ref: string, pull: PullPolicy): Promise<ResolvedImage>;
  /** A user 'name[:group]' (or ids) as ids, through /etc/passwd and /etc/group of the root that
   * these directories make (top first). */
  resolveUser(user: string, dirs: string[]): Promise<{ uid: number; gid: number; groups: number[] }>;
  /** owner: the process tag the mark belongs to (a detached container's supervisor), default ours. */
  markUsed(manifestDigest: string, containerId: string, owner?: string): void;
  release(manifestDigest: string, containerId: string, owner?: string): void;
  commit(request: CommitRequest): Promise<{ manifestDigest: string }>;
}
