import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeTree, removeTreeAsync } from '../../lib/fs/remove-tree.ts';
import { treeSize } from '../../lib/fs/tree-size.ts';
import { BUSYBOX } from '../helpers.ts';
import { deepTreeBytes, deepTreeScript } from '../deep-tree.ts';

describe('removeTree and treeSize (fd-relative, iterative)', () => {
  let work: string;
  let outside: string;
  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'corral-test-rmtree-'));
    outside = join(work, 'outside');
    mkdirSync(join(outside, 'dir'), { recursive: true });
    writeFileSync(join(outside, 'precious'), 'keep\n');
    writeFileSync(join(outside, 'dir/inner'), 'keep too\n');
  });
  afterEach(() => removeTree(work));

  /** A 3,003-deep tree at work/deep whose bottom links to outside/precious. */
  const deepTree = (): string => {
    execFileSync(BUSYBOX, ['sh', '-c', deepTreeScript(work, 'deep', 3, join(outside, 'precious'))]);
    return join(work, 'deep');
  };

  it('measures and removes a 3,003-deep tree, leaving the file its bottom links to', async () => {
    const deep = deepTree();
    assert.throws(() => readdirSync(join(deep, 'd/'.repeat(2500))), { code: 'ENAMETOOLONG' }, 'the tree is deeper than a path can name');
    assert.equal(await treeSize(deep), deepTreeBytes(join(outside, 'precious')));
    removeTree(deep);
    assert.deepEqual(readdirSync(work), ['outside']);
    assert.equal(readFileSync(join(outside, 'precious'), 'utf8'), 'keep\n');
  });

  it('defeats a removal that recurses on paths, as it did before (the defence lifted)', async () => {
    const deep = deepTree();
    // Paths past PATH_MAX cannot be named (Node 20's rm fails the same way; Node 24's copes).
    const removeByPaths = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) removeByPaths(path);
        else unlinkSync(path);
      }
      rmdirSync(dir);
    };
    assert.throws(() => removeByPaths(deep), { code: 'ENAMETOOLONG' });
    removeTree(deep);
    assert.deepEqual(readdirSync(work), ['outside']);
  });

  it('removes it in the background too (removeTreeAsync)', async () => {
    const deep = deepTree();
    await removeTreeAsync(deep);
    assert.deepEqual(readdirSync(work), ['outside']);
  });

  it('never follows a symlink: links to a directory and a file outside go, their targets stay', () => {
    const tree = join(work, 'tree');
    mkdirSync(join(tree, 'a/b'), { recursive: true });
    symlinkSync(join(outside, 'dir'), join(tree, 'a/b/dirlink'));
    symlinkSync(join(outside, 'precious'), join(tree, 'a/filelink'));
    symlinkSync(outside, join(work, 'toplink'));
    removeTree(tree);
    removeTree(join(work, 'toplink'));
    assert.deepEqual(readdirSync(work), ['outside']);
    assert.deepEqual(readdirSync(outside).sort(), ['dir', 'precious']);
    assert.equal(readFileSync(join(outside, 'dir/inner'), 'utf8'), 'keep too\n');
  });

  it('gets through directories their owner may not read, enter or write (000, 0500), and names that are not UTF-8', () => {
    const tree = join(work, 'tree');
    mkdirSync(join(tree, 'locked/inner'), { recursive: true });
    writeFileSync(join(tree, 'locked/inner/file'), 'x');
    mkdirSync(join(tree, 'readonly'));
    writeFileSync(join(tree, 'readonly/file'), 'x');
    execFileSync(BUSYBOX, ['sh', '-c', `touch "${tree}/$(printf 'bad\\377name')"`]);
    chmodSync(join(tree, 'locked/inner'), 0);
    chmodSync(join(tree, 'locked'), 0);
    chmodSync(join(tree, 'readonly'), 0o500);
    removeTree(tree);
    assert.deepEqual(readdirSync(work), ['outside']);
  });

  it('does nothing for a missing path, and measures a file or a missing path', async () => {
    removeTree(join(work, 'missing'));
    removeTree(join(work, 'missing/deeper'));
    assert.equal(await treeSize(join(outside, 'precious')), 5);
    assert.equal(await treeSize(join(work, 'missing')), 0);
  });

  it('fails with a CorralError naming the path', () => {
    const below = join(outside, 'precious', 'below');
    assert.throws(() => removeTree(below), { name: 'CorralError', code: 'ENOTDIR', path: below });
    assert.equal(readFileSync(join(outside, 'precious'), 'utf8'), 'keep\n');
  });
});
