import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { DetachKeyFilter, parseDetachKeys } from '../../lib/container/detach-keys.ts';

/** What passes a filter for the keys when chunks are typed one after another, and whether it detached. */
async function typed(keys: string, chunks: string[]): Promise<{ passed: string; detached: boolean }> {
  const filter = new DetachKeyFilter(parseDetachKeys(keys));
  const out = new PassThrough();
  let passed = '';
  out.on('data', (d: Buffer) => { passed += d.toString('latin1'); });
  let detached = false;
  filter.once('detach', () => { detached = true; });
  filter.pipe(out);
  for (const c of chunks) filter.write(Buffer.from(c, 'latin1'));
  await new Promise((r) => setImmediate(r));
  return { passed, detached };
}

describe('detach keys', () => {
  it("reads Docker's notation: characters and ctrl-X, comma-separated", () => {
    assert.deepEqual([...parseDetachKeys('ctrl-p,ctrl-q')], [16, 17]);
    assert.deepEqual([...parseDetachKeys('a,ctrl-[,ctrl-@,ctrl-_,CTRL-A')], [97, 27, 0, 31, 1]);
    assert.deepEqual([...parseDetachKeys('')], []);
    for (const bad of ['ctrl-1', 'ab', 'ctrl-', ',']) assert.throws(() => parseDetachKeys(bad), { code: 'ERR_INVALID_ARG_VALUE' }, bad);
  });

  it('passes input through, holds a partial match until it is decided, detaches on the whole sequence and passes nothing after', async () => {
    assert.deepEqual(await typed('ctrl-p,ctrl-q', ['ab', 'c']), { passed: 'abc', detached: false });
    // ^P then x: not the sequence, both pass; ^P ^P ^Q: the first ^P passes, the rest detaches.
    assert.deepEqual(await typed('ctrl-p,ctrl-q', ['\x10', 'x', '\x10\x10', '\x11', 'after']), { passed: '\x10x\x10', detached: true });
    assert.deepEqual(await typed('ctrl-p,ctrl-q', ['before\x10']), { passed: 'before', detached: false });
    assert.deepEqual(await typed('', ['\x10\x11']), { passed: '\x10\x11', detached: false });
    assert.deepEqual(await typed('ctrl-a,d', ['x\x01d']), { passed: 'x', detached: true });
  });
});
