// Issue 16: SOURCE_DATE_EPOCH makes builds reproducible: every image and history entry is dated
// then and no file of a layer later (RUN's and COPY's), so the same context built twice in two
// stores gives the same digests. Without it the same builds differ (the dates), so the check can fail.
import assert from 'node:assert/strict';
import { mkdtempSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.ts';
import { busyboxLayout, contextOf } from '../image-fixtures.ts';
import { removeWork, rootless } from '../helpers.ts';

const EPOCH = 1_700_000_000;

describe(`build with SOURCE_DATE_EPOCH (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(120_000);
  let work: string;
  let layout: string;
  let context: string;
  let stores = 0;
  /** A runtime on a store of its own (no build cache shared), with the base image imported. */
  const freshRuntime = async (): Promise<Runtime> => {
    const rt = new Runtime({ root: join(work, `state-${++stores}`), cgroupParent: false });
    await rt.images.import(layout, { tag: 'base' });
    return rt;
  };

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'corral-test-build-epoch-'));
    layout = busyboxLayout(work);
    context = contextOf(join(work, 'ctx'), {
      Dockerfile: 'FROM base\nCOPY future.txt /future.txt\nRUN echo made > /made && mkdir -p /dir/sub\nENV A=1\n',
      'future.txt': 'from 2030\n',
    });
    const in2030 = new Date('2030-01-01T00:00:00Z');
    utimesSync(join(context, 'future.txt'), in2030, in2030);
  });
  after(() => removeWork(work));

  it('gives the same digest twice, dates the image and its new history then, and no file later', async () => {
    const [a, b] = [await freshRuntime(), await freshRuntime()];
    const first = await a.images.build({ context, sourceDateEpoch: EPOCH });
    const second = await b.images.build({ context, args: { SOURCE_DATE_EPOCH: String(EPOCH) } });
    assert.equal(second.manifestDigest, first.manifestDigest);
    const info = await a.images.inspect(first.manifestDigest);
    const iso = new Date(EPOCH * 1000).toISOString();
    assert.equal(info.config.created, iso);
    const own = info.config.history!.slice(-3);
    assert.deepEqual(own.map((h) => h.created), [iso, iso, iso], JSON.stringify(own));
    const r = await a.run({ image: first.manifestDigest, command: ['/bin/sh', '-c', 'stat -c %Y /future.txt /made /dir /dir/sub'] });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.deepEqual(r.stdout.toString().trim().split('\n').map(Number), [EPOCH, EPOCH, EPOCH, EPOCH]);
  });

  it('twin: without it the same builds differ', async () => {
    const [a, b] = [await freshRuntime(), await freshRuntime()];
    const first = await a.images.build({ context });
    const second = await b.images.build({ context });
    assert.notEqual(second.manifestDigest, first.manifestDigest);
    const r = await a.run({ image: first.manifestDigest, command: ['/bin/sh', '-c', 'stat -c %Y /future.txt'] });
    assert.equal(Number(r.stdout.toString()), Date.parse('2030-01-01T00:00:00Z') / 1000);
  });

  it('is refused unless whole seconds since 1970, naming where it came from', async () => {
    const rt = await freshRuntime();
    await assert.rejects(rt.images.build({ context, sourceDateEpoch: -1 }), (e: { code?: string; message: string }) => e.code === 'ERR_INVALID_ARG_VALUE' && /sourceDateEpoch/.test(e.message));
    await assert.rejects(rt.images.build({ context, args: { SOURCE_DATE_EPOCH: 'soon' } }), (e: { code?: string; message: string }) => e.code === 'ERR_INVALID_ARG_VALUE' && /build arg SOURCE_DATE_EPOCH/.test(e.message));
  });
});
