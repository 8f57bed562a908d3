import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Runtime } from '../../lib/index.ts';
import { busyboxLayout, contextOf, tarOf } from '../image-fixtures.ts';
import { rootless } from '../helpers.ts';
import { buildHelpers } from '../build-helpers.ts';

describe(`build ADD of archives and URLs (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(120_000);
  let work: string;
  let rt: Runtime;
  let n = 0;
  let server: Server;
  let base: string;
  const served = new Map<string, { body: Buffer; headers?: Record<string, string> }>();
  const fresh = (files: Record<string, string | Buffer>): string => {
    const dir = contextOf(join(work, `ctx-${++n}`), Object.fromEntries(Object.entries(files).filter(([, v]) => typeof v === 'string')) as Record<string, string>);
    for (const [name, v] of Object.entries(files)) if (Buffer.isBuffer(v)) writeFileSync(join(dir, name), v);
    return dir;
  };
  const { build, out, ran } = buildHelpers(() => rt);
  const CODE = (e: { code: string; message: string }, re: RegExp): boolean => e.code === 'ERR_BUILD_CONTEXT' && re.test(e.message);

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'corral-test-build-add-'));
    rt = new Runtime({ root: join(work, 'state'), cgroupParent: false });
    await rt.images.import(busyboxLayout(work));
    server = createServer((req, res) => {
      const file = served.get(req.url!);
      if (!file) return res.writeHead(404).end('not here');
      res.writeHead(200, { 'content-length': file.body.length, ...file.headers }).end(file.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(work, { recursive: true, force: true });
  });

  it('unpacks a local plain, gzip or zstd tar into the destination (told by content, not name); copies other files as they are', async () => {
    const tar = await tarOf([
      { name: './', type: 'directory', mode: 0o711 }, // the archive's root: the destination's mode, as buildah gives it
      { name: 'top/', type: 'directory', mode: 0o750 },
      { name: 'top/a.txt', content: 'a\n', mode: 0o640 },
      { name: 'top/link', type: 'symlink', linkname: 'a.txt' },
      { name: 'top/hard', type: 'link', linkname: 'top/a.txt' },
      { name: 'loose/deep/b.txt', content: 'b\n' }, // no directory entries: the parents are made
    ]);
    const zst = execFileSync('zstd', ['-q', '-c'], { input: tar });
    const ctx = fresh({
      'Dockerfile': 'FROM base\nADD plain.bin /plain/\nADD app.tgz /gz\nADD app.tar.zst /zst/\nADD fake.tar.gz /fake/\nADD text.txt /text.txt\nCOPY app.tgz /copied/\n',
      'plain.bin': tar, 'app.tgz': gzipSync(tar), 'app.tar.zst': zst, 'fake.tar.gz': 'not an archive', 'text.txt': 'text',
    });
    const { manifestDigest } = await build(ctx);
    for (const dir of ['/plain', '/gz', '/zst']) {
      assert.equal(await out(manifestDigest, `cd ${dir} && find . | sort && stat -c '%n %a' . top top/a.txt && cat top/link top/hard loose/deep/b.txt && stat -c %h top/a.txt`),
        '.\n./loose\n./loose/deep\n./loose/deep/b.txt\n./top\n./top/a.txt\n./top/hard\n./top/link\n. 711\ntop 750\ntop/a.txt 640\na\na\nb\n2\n', dir);
    }
    assert.equal(await out(manifestDigest, 'cat /fake/fake.tar.gz /text.txt; ls /copied'), 'not an archivetextapp.tgz\n', 'a non-tar file, and COPY, copy as is');
  });

  it('unpacks xz and bzip2 archives through the system\'s xz and bzip2; a truncated xz archive fails naming it', async () => {
    const tar = await tarOf([{ name: 'x', content: 'x' }, { name: 'big', content: randomBytes(256 * 1024).toString('base64') }]);
    for (const [tool, name] of [['xz', 'a.tar.xz'], ['bzip2', 'a.tar.bz2']] as const) {
      const packed = execFileSync(tool, ['-c'], { input: tar, maxBuffer: 16 << 20 });
      const { manifestDigest } = await build(fresh({ Dockerfile: `FROM base\nADD ${name} /x/\n`, [name]: packed }));
      assert.equal(await out(manifestDigest, 'cat /x/x; wc -c < /x/big'), `x${Math.ceil(256 * 1024 / 3) * 4}\n`, tool);
      // half of a bzip2 file ends inside its first block, which decodes to nothing: not a tar, so
      // it is copied as a file (Docker's test is the same); half of an xz file starts a tar
      const cut = await build(fresh({ Dockerfile: `FROM base\nADD ${name} /x/\n`, [name]: packed.subarray(0, packed.length >> 1) })).then(() => 'built', (e: { code: string; message: string }) => (CODE(e, new RegExp(`Dockerfile:2: ADD ${name} /x/: .*(truncated|corrupt)`)) ? 'refused' : e.message));
      assert.equal(cut, tool === 'xz' ? 'refused' : 'built', tool);
    }
  });

  it('downloads an http URL (0600, named after the URL, Last-Modified as mtime), keyed by its content, --checksum checked', async () => {
    served.set('/files/tool.sh', { body: Buffer.from('echo tool\n'), headers: { 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' } });
    served.set('/files/app.tgz', { body: gzipSync(await tarOf([{ name: 'inner', content: 'packed' }])) });
    const digest = `sha256:${createHash('sha256').update('echo tool\n').digest('hex')}`;
    const ctx = fresh({ Dockerfile: `FROM base\nADD ${base}/files/tool.sh /opt/\nADD --checksum=${digest} ${base}/files/tool.sh /named\nADD ${base}/files/app.tgz /pkg/\n` });
    const first = await build(ctx);
    assert.equal(await out(first.manifestDigest, 'stat -c "%n %a %Y" /opt/tool.sh /named; ls /pkg'), '/opt/tool.sh 600 1445412480\n/named 600 1445412480\napp.tgz\n', 'a downloaded archive is not unpacked');
    const again = await build(ctx);
    assert.deepEqual(ran(again.events), [], 'the same content: every step cached');
    assert.equal(again.manifestDigest, first.manifestDigest);
    served.set('/files/tool.sh', { body: Buffer.from('echo changed\n') });
    await assert.rejects(build(ctx), (e: { code: string; message: string }) => CODE(e, /Dockerfile:3: ADD --checksum=.*: the download's digest is sha256:[0-9a-f]{64}, not the --checksum/));
    const unchecked = await build(fresh({ Dockerfile: `FROM base\nADD ${base}/files/tool.sh /opt/\n` }));
    assert.equal(ran(unchecked.events).length, 1, 'changed content: the step runs again');
    assert.equal(await out(unchecked.manifestDigest, 'cat /opt/tool.sh'), 'echo changed\n');
    await assert.rejects(build(fresh({ Dockerfile: `FROM base\nADD ${base}/missing /m\n` })), (e: { code: string; message: string }) => CODE(e, /Dockerfile:2: .*\/missing: the server answered 404/));
    await assert.rejects(build(fresh({ Dockerfile: 'FROM base\nADD ftp://127.0.0.1/x /m\n' })), (e: { code: string; message: string }) => CODE(e, /ADD downloads http and https URLs only/));
    await assert.rejects(build(fresh({ Dockerfile: `FROM base\nADD ${base}/repo.git /src\n` })), (e: { code: string; message: string }) => CODE(e, /ADD of a git repository is not supported/));
    await assert.rejects(build(fresh({ Dockerfile: 'FROM base\nADD --checksum=sha256:00 a /a\n', a: 'a' })), (e: { code: string; message: string }) => CODE(e, /--checksum is for URL sources only/));
    assert.deepEqual(readdirSync(join(work, 'state/build')).filter((name) => /^(add|step)-/.test(name)), [], 'no download scratch left behind');
  });
});
