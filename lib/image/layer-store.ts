import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { CorralError } from '../sys/errors.ts';
import { removeTree } from '../fs/remove-tree.ts';
import { removeTreeMapped } from '../fs/remove-mapped.ts';
import type { IdMap } from '../sys/id-map.ts';
import { treeSize } from '../fs/tree-size.ts';
import { applyLayer } from './layer/apply.ts';
import { shiftOwners } from '../fs/shift-owners.ts';

/** Directory names are the first 12 hex digits of the ChainID, so 200 lowerdirs fit in the one
 * page overlayfs takes its options in (mounted from inside the layers directory). */
const SHORT = 12;

/** Unpacked layers, one directory per ChainID, shared by every image and container above them:
 * <dir>/<short>/fs is the overlayfs lowerdir, <short>/chain the full ChainID, <short>/size its bytes.
 * A layer appears by an atomic rename once completely unpacked and verified. */
export class LayerStore {
  readonly dir: string;
  readonly #rootless: boolean;
  readonly #maxLayerBytes: number;
  readonly #idMap: IdMap | null;

  /** maxLayerBytes bounds each layer's uncompressed tar (ERR_LAYER_TOO_LARGE past it); idMap:
   * rootless, the map image owners are shifted into (ApplyLayerOptions.idMap). */
  constructor(dir: string, rootless: boolean, maxLayerBytes: number, idMap: IdMap | null = null) {
    this.dir = dir;
    this.#rootless = rootless;
    this.#maxLayerBytes = maxLayerBytes;
    this.#idMap = idMap;
  }

  /** The name of a layer's directory inside dir. */
  name(chainId: string): string {
    return chainId.replace(/^sha256:/, '').slice(0, SHORT);
  }

  /** The layer's contents (an overlayfs lowerdir). */
  contents(chainId: string): string {
    return join(this.dir, this.name(chainId), 'fs');
  }

  /** True when the layer is unpacked (and is the one asked for, not a short-name twin). */
  has(chainId: string): boolean {
    try {
      return readFileSync(join(this.dir, this.name(chainId), 'chain'), 'utf8') === chainId;
    } catch {
      return false;
    }
  }

  /** Unpacked bytes of a layer. */
  size(chainId: string): number {
    return Number(readFileSync(join(this.dir, this.name(chainId), 'size'), 'utf8'));
  }

  /** Unpacks a layer unless it is there: verifies its DiffID, then renames it into place (a
   * concurrent import of the same layer wins or loses the rename; either way one copy stays).
   * True when this call put it there. */
  async ensure(chainId: string, diffId: string, open: () => Promise<Readable>, lowerChainIds: string[]): Promise<boolean> {
    if (this.has(chainId)) return false;
    const final = join(this.dir, this.name(chainId));
    if (existsSync(final)) {
      throw new CorralError(`layer directory ${final} belongs to another ChainID than ${chainId}`, { code: 'ERR_LAYER_COLLISION', path: final });
    }
    mkdirSync(this.dir, { recursive: true });
    const tmp = join(this.dir, `.tmp-${randomBytes(6).toString('hex')}`);
    mkdirSync(join(tmp, 'fs'), { recursive: true });
    try {
      const result = await applyLayer(await open(), join(tmp, 'fs'), {
        rootless: this.#rootless,
        lowerDirs: lowerChainIds.map((c) => this.contents(c)),
        maxBytes: this.#maxLayerBytes,
        idMap: this.#idMap,
      });
      if (result.diffId !== diffId) {
        throw new CorralError(`layer ${chainId} unpacks to DiffID ${result.diffId}, but the image config says ${diffId}`, { code: 'ERR_DIGEST_MISMATCH', step: 'unpack a layer' });
      }
      writeFileSync(join(tmp, 'size'), String(await treeSize(join(tmp, 'fs'))));
      if (this.#idMap && result.ownersToShift.length > 0) await shiftOwners(join(tmp, 'fs'), result.ownersToShift, this.#idMap);
      writeFileSync(join(tmp, 'chain'), chainId);
      try {
        renameSync(tmp, final);
        return true;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if ((code !== 'EEXIST' && code !== 'ENOTEMPTY') || !this.has(chainId)) throw e;
        rmSync(tmp, { recursive: true, force: true });
        return false;
      }
    } catch (e) {
      await removeTreeMapped(tmp, this.#idMap);
      throw e;
    }
  }

  /** The ChainIDs of every unpacked layer. */
  list(): string[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((n) => !n.startsWith('.'))
      .flatMap((n) => {
        try {
          return [readFileSync(join(this.dir, n, 'chain'), 'utf8')];
        } catch {
          return [];
        }
      });
  }

  /** Deletes a layer's directory (through the user namespace map where its owners are shifted). */
  async remove(chainId: string): Promise<void> {
    await removeTreeMapped(join(this.dir, this.name(chainId)), this.#idMap);
  }

  /** Deletes what interrupted unpacks left; returns how many. */
  sweepTemp(): number {
    if (!existsSync(this.dir)) return 0;
    const debris = readdirSync(this.dir).filter((n) => n.startsWith('.tmp-'));
    for (const n of debris) removeTree(join(this.dir, n));
    return debris.length;
  }
}
