/** Image references parsed and normalized as Docker does: `busybox` → `docker.io/library/busybox:latest`. */

import { CorralError } from '../sys/errors.ts';

/** The registry an unqualified name belongs to, and the host that serves it. */
export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_HOST = 'registry-1.docker.io';
const LEGACY_HUB = 'index.docker.io';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\[[a-fA-F0-9:]+\](?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const MAX_NAME = 255;

/** A parsed reference: where the image lives and which version of it. */
export interface Reference {
  /** As users name it: 'docker.io', 'localhost:5000', 'ghcr.io'. */
  registry: string;
  /** 'library/busybox', 'team/app'. */
  repository: string;
  /** Absent when only a digest is given. */
  tag?: string;
  digest?: string;
}

/** Parses a reference the way Docker does; a missing tag is 'latest' unless a digest is given. */
export function parseReference(ref: string): Reference {
  const invalid = (why: string): CorralError =>
    new CorralError(`invalid image reference ${JSON.stringify(ref)}: ${why}`, { code: 'ERR_INVALID_REF' });
  if (typeof ref !== 'string' || ref === '') throw invalid('empty');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid('the digest must be sha256:<64 lowercase hex>');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid('a tag is up to 128 letters, digits, _ . and -, not starting with . or -');
  }
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  let registry: string;
  let path: string;
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())) {
    registry = first;
    path = rest.slice(slash + 1);
    if (!DOMAIN.test(registry)) throw invalid(`bad registry host ${JSON.stringify(registry)}`);
  } else {
    registry = DOCKER_HUB;
    path = rest;
  }
  if (registry === LEGACY_HUB) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  if (path === '' || !path.split('/').every((c) => COMPONENT.test(c))) {
    throw invalid('a repository is lower-case components (a-z 0-9 and single . _ or runs of -) separated by /');
  }
  if (registry.length + 1 + path.length > MAX_NAME) throw invalid(`the name is longer than ${MAX_NAME} characters`);
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository: path, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) };
}

/** The canonical text of a reference: 'docker.io/library/busybox:latest', 'host:5000/a/b@sha256:…'. */
export function formatReference(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

/** Normalizes any accepted spelling to the canonical one ('busybox' → 'docker.io/library/busybox:latest'). */
export function normalizeReference(ref: string): string {
  return formatReference(parseReference(ref));
}

/** The short form Docker prints: 'busybox:latest' for 'docker.io/library/busybox:latest'. */
export function familiarReference(ref: Reference): string {
  const full = formatReference(ref);
  if (ref.registry !== DOCKER_HUB) return full;
  return full.slice(`${DOCKER_HUB}/`.length).replace(/^library\/(?=[^/]+$|[^/]+[:@])/, '');
}

/** The host:port requests go to: Docker Hub's API is served by registry-1.docker.io. */
export function registryHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_HOST : registry;
}
