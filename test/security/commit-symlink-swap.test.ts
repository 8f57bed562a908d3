// Issue 10 item 6: a running container swaps a directory of its upper layer for a symlink to a host
// directory while commit walks it; a caller-only host file must not end up in the layer.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { diffLayer, type DiffLayerOptions } from '../../lib/image/layer/diff.ts';
import { rootless } from '../helpers.ts';

const SECRET = 'TOP-SECRET-HOST-DATA';

describe('security: a directory swapped for a symlink during commit', () => {
  let work: string;
  let upper: string;
  let host: string;
  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'corral-sec-commit-swap-'));
    host = join(work, 'host');
    mkdirSync(join(host, 'b'), { recursive: true, mode: 0o700 });
    writeFileSync(join(host, 'secret'), SECRET, { mode: 0o600 });
    writeFileSync(join(host, 'b', 'secret'), SECRET, { mode: 0o600 });
    upper = join(work, 'upper');
    mkdirSync(join(upper, 'a', 'b'), { recursive: true });
    writeFileSync(join(upper, 'a', 'b', 'mine'), 'container data');
  });
  afterEach(() => rmSync(work, { recursive: true, force: true }));

  /** Diffs the upper into memory, running `swap` when the walk reaches `at`. */
  async function diffSwapping(at: string, swap: () => void): Promise<{ data: Buffer; error: unknown }> {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const options: DiffLayerOptions = { rootless, onDirectory: (rel) => { if (rel === at) swap(); } };
    const error = await diffLayer(upper, out, options).then(() => null, (e: unknown) => e);
    return { data: Buffer.concat(chunks), error };
  }

  it('a directory swapped just before the walk opens it: refused as changed, nothing of the host read', async () => {
    const { data, error } = await diffSwapping('a', () => {
      rmSync(join(upper, 'a'), { recursive: true });
      symlinkSync(host, join(upper, 'a'));
    });
    assert.equal((error as { code?: string } | null)?.code, 'ERR_LAYER_CHANGED');
    assert.ok(!data.includes(SECRET));
  });

  it('a parent swapped while the walk is inside it: the walk stays in the directory it opened', async () => {
    const { data, error } = await diffSwapping('a/b', () => {
      renameSync(join(upper, 'a'), join(work, 'moved-away'));
      symlinkSync(host, join(upper, 'a'));
    });
    assert.equal(error, null);
    assert.ok(data.includes('container data'), 'the original directory was archived');
    assert.ok(!data.includes(SECRET));
  });

  it('(defence lifted) a walk by path after the same swap reads the host file', () => {
    renameSync(join(upper, 'a'), join(work, 'moved-away'));
    symlinkSync(host, join(upper, 'a'));
    const rel = 'a/b';
    assert.ok(readdirSync(join(upper, rel)).includes('secret'));
    assert.equal(readFileSync(join(upper, rel, 'secret'), 'utf8'), SECRET);
  });
});
