import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobStore } from '../../lib/image/blob-store.ts';
import { chainIds, DigestStream, digestStream, parseDigest, sha256Digest } from '../../lib/image/digest.ts';

const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function hex(data: string): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('digest', () => {
  it('parses sha256 digests and refuses anything else', () => {
    assert.deepEqual(parseDigest(EMPTY_SHA256), { algorithm: 'sha256', hex: EMPTY_SHA256.slice(7) });
    for (const bad of [
      EMPTY_SHA256.toUpperCase(),
      `sha512:${'a'.repeat(128)}`,
      `sha256:${'a'.repeat(63)}`,
      `sha256:${'a'.repeat(65)}`,
      'sha256:../../../../etc/passwd',
      EMPTY_SHA256.slice(7),
      '',
    ]) {
      assert.throws(() => parseDigest(bad), { code: 'ERR_INVALID_DIGEST' }, bad);
    }
  });

  it('hashes buffers and streams alike', async () => {
    assert.equal(sha256Digest(''), EMPTY_SHA256);
    assert.equal(sha256Digest(Buffer.from('abc')), `sha256:${hex('abc')}`);
    assert.deepEqual(await digestStream(Readable.from([Buffer.from('a'), Buffer.from('bc')])), {
      digest: `sha256:${hex('abc')}`,
      size: 3,
    });
  });

  it('hashes what passes through a DigestStream, and stops it at maxSize', async () => {
    const passthrough = new DigestStream();
    const seen: Buffer[] = [];
    await pipeline(Readable.from([Buffer.from('ab'), Buffer.from('c')]), passthrough, async (source) => {
      for await (const chunk of source) seen.push(chunk as Buffer);
    });
    assert.equal(Buffer.concat(seen).toString(), 'abc');
    assert.deepEqual(passthrough.result(), { digest: `sha256:${hex('abc')}`, size: 3 });

    const bounded = new DigestStream({ maxSize: 2 });
    await assert.rejects(
      pipeline(Readable.from([Buffer.from('abc')]), bounded, async (source) => {
        for await (const _ of source);
      }),
      { code: 'ERR_DIGEST_MISMATCH' },
    );
  });

  it('computes ChainIDs', () => {
    const d0 = `sha256:${hex('layer 0')}`;
    const d1 = `sha256:${hex('layer 1')}`;
    const d2 = `sha256:${hex('layer 2')}`;
    const c1 = `sha256:${hex(`${d0} ${d1}`)}`;
    const c2 = `sha256:${hex(`${c1} ${d2}`)}`;
    assert.deepEqual(chainIds([]), []);
    assert.deepEqual(chainIds([d0]), [d0]);
    assert.deepEqual(chainIds([d0, d1, d2]), [d0, c1, c2]);
    assert.throws(() => chainIds([d0, 'sha256:nope']), { code: 'ERR_INVALID_DIGEST' });
  });
});

describe('BlobStore', () => {
  let root: string;
  let store: BlobStore;
  const tmpFiles = (): string[] => (existsSync(join(store.dir, '.tmp')) ? readdirSync(join(store.dir, '.tmp')) : []);

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'corral-blobs-'));
    store = new BlobStore(join(root, 'blobs'));
  });

  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('stores buffers and streams under their digest', async () => {
    const data = Buffer.from('{"hello":"world"}');
    const digest = sha256Digest(data);
    assert.equal(store.has(digest), false);
    assert.deepEqual(store.list(), []);

    assert.deepEqual(await store.put(data), { digest, size: data.length });
    assert.equal(store.has(digest), true);
    assert.equal(store.path(digest), join(root, 'blobs', 'sha256', digest.slice(7)));
    assert.deepEqual(await store.read(digest), data);
    assert.deepEqual(await store.readJson(digest), { hello: 'world' });
    assert.deepEqual(store.readJsonSync(digest), { hello: 'world' });
    assert.equal(await store.size(digest), data.length);
    assert.equal(store.sizeSync(digest), data.length);

    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 'x');
    const chunks = [big.subarray(0, 1000), big.subarray(1000, 2_000_000), big.subarray(2_000_000)];
    const stored = await store.put(Readable.from(chunks), { digest: sha256Digest(big), size: big.length });
    assert.deepEqual(stored, { digest: sha256Digest(big), size: big.length });
    const streamed: Buffer[] = [];
    for await (const chunk of store.createReadStream(stored.digest)) streamed.push(chunk as Buffer);
    assert.deepEqual(Buffer.concat(streamed), big);

    assert.deepEqual(store.list().sort(), [digest, stored.digest].sort());
    await store.remove(digest);
    await store.remove(digest);
    assert.deepEqual(store.list(), [stored.digest]);
    assert.deepEqual(tmpFiles(), []);
  });

  it('refuses a blob whose digest or size is not the expected one, and keeps nothing of it', async () => {
    const data = Buffer.from('the real content');
    const claimed = sha256Digest('other content');
    await assert.rejects(store.put(data, { digest: claimed }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ERR_DIGEST_MISMATCH');
      assert.match(error.message, new RegExp(claimed));
      assert.match(error.message, new RegExp(sha256Digest(data)));
      return true;
    });
    await assert.rejects(store.put(data, { digest: sha256Digest(data), size: data.length + 1 }), {
      code: 'ERR_DIGEST_MISMATCH',
    });
    await assert.rejects(store.put(Readable.from([data, data, data]), { size: data.length }), {
      code: 'ERR_DIGEST_MISMATCH',
      message: new RegExp(`more than ${data.length} bytes`),
    });
    await assert.rejects(store.put(data, { digest: 'sha256:nothex' }), { code: 'ERR_INVALID_DIGEST' });
    assert.deepEqual(store.list(), []);
    assert.deepEqual(tmpFiles(), []);
  });

  it('keeps nothing when the source fails half way', async () => {
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(1024));
        this.destroy(new Error('connection reset'));
      },
    });
    await assert.rejects(store.put(failing), /connection reset/);
    assert.deepEqual(store.list(), []);
    assert.deepEqual(tmpFiles(), []);
  });

  it('stores a blob once when many writers put it at the same time', async () => {
    const data = Buffer.alloc(256 * 1024, 'z');
    const digest = sha256Digest(data);
    const slowly = (): Readable =>
      Readable.from(
        (async function* () {
          for (let offset = 0; offset < data.length; offset += 16 * 1024) {
            yield data.subarray(offset, offset + 16 * 1024);
            await new Promise((resolve) => setImmediate(resolve));
          }
        })(),
      );
    const results = await Promise.all(Array.from({ length: 12 }, () => store.put(slowly(), { digest })));
    assert.ok(results.every((result) => result.digest === digest && result.size === data.length));
    assert.deepEqual(store.list(), [digest]);
    assert.deepEqual(await store.read(digest), data);
    assert.deepEqual(tmpFiles(), []);
  });

  it('notices a corrupt or missing blob', async () => {
    const { digest } = await store.put(Buffer.from('{"a":1}'));
    writeFileSync(store.path(digest), '{"a":2}');
    await assert.rejects(store.read(digest), { code: 'ERR_DIGEST_MISMATCH' });
    assert.throws(() => store.readJsonSync(digest), { code: 'ERR_DIGEST_MISMATCH' });
    const absent = sha256Digest('absent');
    await assert.rejects(store.read(absent), { code: 'ERR_BLOB_NOT_FOUND' });
    await assert.rejects(store.size(absent), { code: 'ERR_BLOB_NOT_FOUND' });
    assert.throws(() => store.createReadStream(absent), { code: 'ERR_BLOB_NOT_FOUND' });
    assert.throws(() => store.path('sha256:../../x'), { code: 'ERR_INVALID_DIGEST' });
  });

  it('sweeps staging debris older than the given age', async () => {
    assert.equal(await store.sweepTemp(0), 0);
    const tmp = join(store.dir, '.tmp');
    mkdirSync(tmp, { recursive: true });
    writeFileSync(join(tmp, 'crashed-writer'), 'partial');
    writeFileSync(join(tmp, 'live-writer'), 'partial');
    const hourAgo = new Date(Date.now() - 3600_000);
    utimesSync(join(tmp, 'crashed-writer'), hourAgo, hourAgo);
    assert.equal(await store.sweepTemp(60_000), 1);
    assert.deepEqual(readdirSync(tmp), ['live-writer']);
  });
});
