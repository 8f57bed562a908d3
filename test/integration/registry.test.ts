import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../../lib/index.ts';
import { busyboxLayout, deriveImage, umoci } from '../image-fixtures.ts';
import { eventually, removeWork, rootless } from '../helpers.ts';
import { zstdCompressAvailable } from '../../lib/image/layer/zstd.ts';
import { freePort, htpasswdAuth, skopeoArgs, startFaultProxy, startRegistry, startTokenServer, type FaultProxy, type TestRegistry, type TokenServer } from '../registry-fixtures.ts';

const skopeo = (...args: string[]): string => execFileSync('skopeo', skopeoArgs(args), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const skopeoDigest = (ref: string, ...flags: string[]): string => skopeo('inspect', '--tls-verify=false', ...flags, '--format', '{{.Digest}}', `docker://${ref}`).trim();
/** skopeo without blocking the event loop: for the token server, which runs in this process. */
const skopeoAsync = async (...args: string[]): Promise<string> => (await promisify(execFile)('skopeo', skopeoArgs(args), { encoding: 'utf8' })).stdout;
const sh = (script: string): string[] => ['/bin/sh', '-c', script];
const cli = join(dirname(dirname(dirname(fileURLToPath(import.meta.url)))), 'dist/cli/main.js');
const FAST = { attempts: 3, baseDelayMs: 10, maxDelayMs: 3000 };

describe(`registry pull and push (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(120_000);
  let work: string;
  let layout: string;
  let registry: TestRegistry;
  let rt: Runtime;
  const savedDockerConfig = process.env.DOCKER_CONFIG;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'corral-test-registry-'));
    process.env.DOCKER_CONFIG = join(work, 'docker-config');
    layout = busyboxLayout(work);
    deriveImage(work, layout, 'base', 'derived', { 'data/big': Buffer.alloc(3 * 1024 * 1024, 7), 'etc/motd': 'derived\n' }, ['etc/doomed']);
    registry = await startRegistry(join(work, 'registry'));
    rt = new Runtime({ root: join(work, 'state'), cgroupParent: false });
  });
  after(async () => {
    await registry?.stop();
    if (savedDockerConfig === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = savedDockerConfig;
    await removeWork(work);
  });

  it('pulls an OCI image skopeo pushed, with the same digest, and runs it; a second pull downloads nothing', async () => {
    const ref = `${registry.host}/corral/base:1`;
    skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:base`, `docker://${ref}`);
    const events: { phase: string; totalBytes: number }[] = [];
    const image = await rt.images.pull(ref, { onProgress: (p) => events.push(p) });
    assert.equal(image.manifestDigest, skopeoDigest(ref));
    assert.deepEqual(image.tags, [ref]);
    assert.ok(events.some((e) => e.phase === 'download') && events.at(-1)!.phase === 'done');
    const r = await rt.run({ image: ref });
    assert.equal(r.stdout.toString(), 'hi from image\n', r.stderr.toString());
    const again: { bytes: number }[] = [];
    await rt.images.pull(ref, { onProgress: (p) => again.push(p) });
    assert.equal(again.at(-1)!.bytes, 0, 'every layer was there');
  });

  it('pulls a Docker schema2 image (skopeo --format v2s2) and runs it', async () => {
    const ref = `${registry.host}/corral/v2s2:1`;
    skopeo('copy', '--dest-tls-verify=false', '--format', 'v2s2', `oci:${layout}:derived`, `docker://${ref}`);
    const image = await rt.images.pull(ref);
    assert.equal(image.manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(image.manifestDigest, skopeoDigest(ref));
    const r = await rt.run({ image: ref, command: sh('cat /etc/motd; test -e /etc/doomed || echo doomed-gone') });
    assert.equal(r.stdout.toString(), 'derived\ndoomed-gone\n', r.stderr.toString());
  });

  it('pushes an image that skopeo copies back with identical digests and verified blobs', async () => {
    await rt.images.import(layout);
    const local = await rt.images.inspect('base:latest');
    const dest = `${registry.host}/pushed/base:1`;
    const result = await rt.images.push('base:latest', dest);
    assert.equal(result.manifestDigest, local.manifestDigest);
    assert.equal(skopeoDigest(dest), local.manifestDigest);
    const out = join(work, 'skopeo-out');
    skopeo('copy', '--src-tls-verify=false', `docker://${dest}`, `oci:${out}:x`);
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(index.manifests[0]!.digest, local.manifestDigest);
    // reading every blob into a dir: checks each digest
    skopeo('copy', `oci:${out}:x`, `dir:${join(work, 'skopeo-dir')}`);
  });

  it("uploads only a derived image's new layer, mounts within one registry, and chunks large blobs", async () => {
    const base = await rt.images.inspect('base:latest');
    const derived = await rt.images.inspect('derived:latest');
    const newLayer = derived.layers.at(-1)!.digest;
    const repo = `${registry.host}/pushed/app`;
    await rt.images.push('base:latest', `${repo}:base`);
    const before = registry.requests().length;
    const chunkSize = 1024;
    const result = await rt.images.push('derived:latest', `${repo}:derived`, { chunkSize });
    assert.deepEqual(result.existing, [base.layers[0]!.digest], 'HEAD finds the base layer');
    assert.deepEqual(result.uploaded.sort(), [newLayer, derived.configDigest].sort());
    const log = registry.requests().slice(before);
    const uploads = log.filter((l) => l.includes('/v2/pushed/app/blobs/uploads/'));
    assert.equal(uploads.filter((l) => l.includes(base.layers[0]!.digest.slice(7))).length, 0, 'the base layer is not uploaded');
    const patches = uploads.filter((l) => l.includes('"PATCH '));
    const size = derived.layers.at(-1)!.size;
    assert.ok(size > 2 * chunkSize);
    assert.equal(patches.length, Math.ceil(size / chunkSize), `a ${size}-byte layer in ${chunkSize}-byte chunks`);
    assert.equal(skopeoDigest(`${repo}:derived`), derived.manifestDigest);
    skopeo('copy', '--src-tls-verify=false', `docker://${repo}:derived`, `dir:${join(work, 'derived-dir')}`);
    // pushed again: everything is there already, nothing is uploaded
    const again = registry.requests().length;
    const second = await rt.images.push('derived:latest', `${repo}:derived2`);
    assert.deepEqual(second.uploaded, []);
    assert.equal(registry.requests().slice(again).filter((l) => l.includes('/blobs/uploads/')).length, 0);
    // within one registry, from a repository that has the blobs: mounted, not uploaded
    await rt.images.tag('derived:latest', `${repo}:derived`);
    const mountLog = registry.requests().length;
    const moved = await rt.images.push(`${repo}:derived`, `${registry.host}/elsewhere/app:1`);
    assert.deepEqual(moved.uploaded, []);
    assert.deepEqual(moved.mounted.sort(), [...derived.layers.map((l) => l.digest), derived.configDigest].sort());
    assert.ok(registry.requests().slice(mountLog).some((l) => /"POST \/v2\/elsewhere\/app\/blobs\/uploads\/\?mount=sha256%3A[a-f0-9]+&from=pushed%2Fapp HTTP\/1.1" 201/.test(l)));
    assert.equal(skopeoDigest(`${registry.host}/elsewhere/app:1`), derived.manifestDigest);
  });

  it('picks the platform from a multi-arch index', async () => {
    umoci('tag', '--image', `${layout}:base`, 'arm');
    umoci('config', '--image', `${layout}:arm`, '--architecture', 'arm64', '--config.env', 'ARCH=arm64');
    const repo = `${registry.host}/corral/multi`;
    skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:base`, `docker://${repo}:amd64`);
    skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:arm`, `docker://${repo}:arm64`);
    const entry = async (tag: string, architecture: string): Promise<object> => {
      const res = await fetch(`http://${repo.replace(/\/corral\/multi$/, '')}/v2/corral/multi/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      const bytes = Buffer.from(await res.arrayBuffer());
      return { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: res.headers.get('docker-content-digest'), size: bytes.length, platform: { os: 'linux', architecture } };
    };
    const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [await entry('arm64', 'arm64'), await entry('amd64', 'amd64')] };
    const put = await fetch(`http://${registry.host}/v2/corral/multi/manifests/1`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' }, body: JSON.stringify(index) });
    assert.equal(put.status, 201);
    const arm = await rt.images.pull(`${repo}:1`, { platform: 'linux/arm64' });
    assert.equal(arm.config.architecture, 'arm64');
    const host = await rt.images.pull(`${repo}:1`);
    assert.equal(host.config.architecture, 'amd64');
    assert.equal(host.manifestDigest, skopeoDigest(`${repo}:amd64`));
    await assert.rejects(rt.images.pull(`${repo}:1`, { platform: 'linux/s390x' }), { code: 'ERR_NO_MATCHING_PLATFORM' });
  });

  it('names registry, repository, operation, status and the registry code when a manifest is unknown', async () => {
    const before = rt.images.list().length;
    await assert.rejects(rt.images.pull(`${registry.host}/corral/base:nope`), (e: Error & Record<string, unknown>) => {
      assert.equal(e.code, 'ERR_REGISTRY_NOT_FOUND');
      assert.equal(e.status, 404);
      assert.equal(e.registryCode, 'MANIFEST_UNKNOWN');
      assert.equal(e.repository, 'corral/base');
      assert.match(e.message, new RegExp(`pull manifest nope ${registry.host}/corral/base: HTTP 404 MANIFEST_UNKNOWN`));
      return true;
    });
    assert.equal(rt.images.list().length, before);
  });

  describe('through a proxy that breaks responses', () => {
    let proxy: FaultProxy;
    let ref: string;
    let layer: string;
    let fresh: () => Runtime;
    before(async () => {
      proxy = await startFaultProxy(registry.host);
      skopeo('copy', '--dest-tls-verify=false', '--format', 'v2s2', `oci:${layout}:derived`, `docker://${registry.host}/corral/v2s2:1`);
      ref = `${proxy.host}/corral/v2s2:1`;
      const manifest = JSON.parse(skopeo('inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/corral/v2s2:1`)) as { layers: { digest: string; size: number }[] };
      layer = manifest.layers.reduce((a, b) => (a.size > b.size ? a : b)).digest;
      let n = 0;
      fresh = () => new Runtime({ root: join(work, `proxy-state-${n++}`), cgroupParent: false });
    });
    after(async () => proxy?.stop());
    afterEach(() => {
      proxy.fault = () => undefined;
    });

    const isLayerGet = (url: string | undefined): boolean => url === `/v2/corral/v2s2/blobs/${layer}`;

    it('refuses a corrupted layer and stores nothing of it', async () => {
      const r = fresh();
      proxy.fault = (req) => (isLayerGet(req.url) ? 'corrupt' : undefined);
      await assert.rejects(r.images.pull(ref, { retry: FAST }), (e: Error & Record<string, unknown>) => {
        assert.equal(e.code, 'ERR_DIGEST_MISMATCH');
        assert.match(e.message, new RegExp(`pull blob ${proxy.host}/corral/v2s2: refused, .* expected ${layer}`));
        return true;
      });
      assert.deepEqual(r.images.list(), []);
      assert.equal(existsSync(join(r.root, 'images/blobs/sha256', layer.slice(7))), false);
      assert.deepEqual(readdirSync(join(r.root, 'images/blobs/.tmp')), []);
    });

    it('retries 500s and honours 429 Retry-After', async () => {
      let failures = 0;
      proxy.fault = (req) => (isLayerGet(req.url) && failures++ < 2 ? { status: 500 } : undefined);
      await fresh().images.pull(ref, { retry: FAST });
      assert.equal(failures, 3);
      let limited = 0;
      proxy.fault = (req) => (req.url?.includes('/manifests/') && limited++ === 0 ? { status: 429, headers: { 'retry-after': '1' } } : undefined);
      const start = Date.now();
      await fresh().images.pull(ref, { retry: FAST });
      assert.ok(Date.now() - start >= 1000, 'waited for Retry-After');
    });

    it('gives up after bounded attempts with a clear error', async () => {
      proxy.fault = (req) => (isLayerGet(req.url) ? { status: 503 } : undefined);
      const r = fresh();
      await assert.rejects(r.images.pull(ref, { retry: { attempts: 2, baseDelayMs: 10 } }), (e: Error & Record<string, unknown>) => {
        assert.equal(e.code, 'ERR_REGISTRY_UNAVAILABLE');
        assert.equal(e.status, 503);
        assert.match(e.message, /HTTP 503 .*\(after 2 attempts\)/);
        return true;
      });
      assert.deepEqual(r.images.list(), []);
    });

    it('resumes a truncated download with a Range request', async () => {
      let cut = 0;
      proxy.fault = (req) => (isLayerGet(req.url) && cut++ === 0 ? 'truncate' : undefined);
      proxy.seen.length = 0;
      const image = await fresh().images.pull(ref, { retry: FAST });
      assert.equal(image.manifestDigest, skopeoDigest(`${registry.host}/corral/v2s2:1`));
      assert.ok(proxy.seen.some((s) => s.startsWith(`GET /v2/corral/v2s2/blobs/${layer} range=bytes=`)), proxy.seen.join('\n'));
    });

    it('an aborted pull leaves the store as it was', async () => {
      const r = fresh();
      const controller = new AbortController();
      await assert.rejects(r.images.pull(ref, {
        signal: controller.signal,
        onProgress: (p) => p.phase === 'unpack' && controller.abort(),
      }), { code: 'ABORT_ERR' });
      assert.deepEqual(r.images.list(), []);
      assert.deepEqual(readdirSync(join(r.root, 'images/blobs/sha256')), []);
      assert.deepEqual(readdirSync(join(r.root, 'images/layers')).filter((n) => !n.startsWith('.')), []);
    });

    it('a pull killed midway is resumed from the verified blobs it left', async () => {
      const root = join(work, 'state-killed');
      const script = fileURLToPath(new URL('../fixtures/pull-then-die.ts', import.meta.url));
      // spawned, not spawnSync: the proxy it pulls through runs in this process
      const child = spawn(process.execPath, ['--import', 'tsx', script, root, ref], { stdio: ['ignore', 'ignore', 'inherit'] });
      const [, signal] = (await once(child, 'exit')) as [number | null, string | null];
      assert.equal(signal, 'SIGKILL');
      const r = new Runtime({ root, cgroupParent: false });
      assert.deepEqual(r.images.list(), []);
      proxy.seen.length = 0;
      const image = await r.images.pull(ref);
      const layerGets = proxy.seen.filter((s) => image.layers.some((l) => s.startsWith(`GET /v2/corral/v2s2/blobs/${l.digest}`)));
      assert.ok(layerGets.length < image.layers.length, `fetched again: ${layerGets.join(', ')}`);
      const run = await r.run({ image: ref, command: ['cat', '/etc/motd'] });
      assert.equal(run.stdout.toString(), 'derived\n');
    });

    it('a chunked push survives a PATCH that failed on the way and one whose answer was lost', async () => {
      await rt.images.import(layout);
      const derived = await rt.images.inspect('derived:latest');
      let patches = 0;
      proxy.fault = (req) => {
        if (req.method !== 'PATCH') return undefined;
        patches += 1;
        return patches === 2 ? 'swallow' : patches === 4 ? { status: 500 } : undefined;
      };
      proxy.seen.length = 0;
      await rt.images.push('derived:latest', `${proxy.host}/proxied/app:1`, { chunkSize: 64 << 10, retry: FAST });
      assert.ok(patches > 4);
      assert.ok(proxy.seen.some((s) => s.startsWith('GET /v2/proxied/app/blobs/uploads/')), 'asked the registry how much it has');
      assert.equal(skopeoDigest(`${registry.host}/proxied/app:1`), derived.manifestDigest);
      skopeo('copy', '--src-tls-verify=false', `docker://${registry.host}/proxied/app:1`, `dir:${join(work, 'proxied-dir')}`);
    });

    it('a monolithic PUT that failed is sent again, streamed anew from the store, one whose answer was lost is found stored; a push that gives up leaves no file open', async () => {
      await rt.images.import(layout);
      const derived = await rt.images.inspect('derived:latest');
      const isBlobPut = (req: { method?: string | undefined; url?: string | undefined }): boolean => req.method === 'PUT' && /\/blobs\/uploads\/.*digest=/.test(req.url ?? '');
      let puts = 0;
      proxy.fault = (req) => (isBlobPut(req) && ++puts === 1 ? { status: 500 } : undefined);
      const pushed = await rt.images.push('derived:latest', `${proxy.host}/proxied/retried:1`, { retry: FAST });
      assert.equal(puts, pushed.uploaded.length + 1, 'one PUT failed and was sent again');
      skopeo('copy', '--src-tls-verify=false', `docker://${registry.host}/proxied/retried:1`, `dir:${join(work, 'retried-dir')}`); // skopeo checks every digest
      assert.equal(skopeoDigest(`${registry.host}/proxied/retried:1`), derived.manifestDigest);
      // A PUT the registry stored whose answer was lost: the retry finds the upload gone, the blob there.
      puts = 0;
      proxy.fault = (req) => (isBlobPut(req) && ++puts === 1 ? 'swallow' : undefined);
      const lost = await rt.images.push('derived:latest', `${proxy.host}/proxied/lost:1`, { retry: FAST });
      assert.equal(lost.uploaded.length, pushed.uploaded.length);
      assert.equal(skopeoDigest(`${registry.host}/proxied/lost:1`), derived.manifestDigest);
      proxy.fault = (req) => (isBlobPut(req) ? { status: 503 } : undefined);
      // Files of the store this process has open (connections kept alive are not the push's to close).
      const blobs = join(work, 'state', 'images');
      const storeFiles = (): string[] => readdirSync('/proc/self/fd').map((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          return '';
        }
      }).filter((path) => path.startsWith(blobs));
      await assert.rejects(rt.images.push('derived:latest', `${proxy.host}/proxied/refused:1`, { retry: FAST }), { code: 'ERR_REGISTRY_UNAVAILABLE', status: 503 });
      await eventually(() => storeFiles().length === 0, 2000);
      assert.deepEqual(storeFiles(), []);
    });

    it('refuses a schema 1 manifest', async () => {
      proxy.fault = (req) => (req.url?.includes('/manifests/') ? { status: 200, headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' }, body: '{"schemaVersion":1,"name":"corral/v2s2","tag":"1","fsLayers":[]}' } : undefined);
      await assert.rejects(fresh().images.pull(ref), { code: 'ERR_REGISTRY_UNSUPPORTED_MANIFEST' });
    });
  });

  describe('with htpasswd', () => {
    let secured: TestRegistry;
    const password = 's3cret-Pa55';
    before(async () => {
      const dir = join(work, 'registry-htpasswd');
      secured = await startRegistry(dir, htpasswdAuth(dir, 'alice', password));
      skopeo('copy', '--dest-tls-verify=false', '--dest-creds', `alice:${password}`, `oci:${layout}:base`, `docker://${secured.host}/team/base:1`);
    });
    after(async () => secured?.stop());

    it('refuses anonymous and wrong credentials without showing them, pulls with auth, login and logout', async () => {
      const ref = `${secured.host}/team/base:1`;
      const r = new Runtime({ root: join(work, 'state-htpasswd'), cgroupParent: false });
      await assert.rejects(r.images.pull(ref), { code: 'ERR_REGISTRY_UNAUTHORIZED' });
      await assert.rejects(r.images.pull(ref, { auth: { username: 'alice', password: 'wrong-secret' } }), (e: Error & Record<string, unknown>) => {
        assert.equal(e.code, 'ERR_REGISTRY_UNAUTHORIZED');
        assert.equal(e.message.includes('wrong-secret'), false);
        return true;
      });
      const image = await r.images.pull(ref, { auth: { username: 'alice', password } });
      assert.equal(image.manifestDigest, skopeoDigest(ref, '--creds', `alice:${password}`));
      await r.images.login(secured.host, { username: 'alice', password });
      const config = JSON.parse(readFileSync(join(process.env.DOCKER_CONFIG!, 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }> };
      assert.equal(Buffer.from(config.auths[secured.host]!.auth, 'base64').toString(), `alice:${password}`);
      await r.images.push(ref, `${secured.host}/team/copy:1`);
      assert.equal(skopeoDigest(`${secured.host}/team/copy:1`, '--creds', `alice:${password}`), image.manifestDigest);
      assert.equal(await r.images.logout(secured.host), true);
      await assert.rejects(r.images.pull(ref), { code: 'ERR_REGISTRY_UNAUTHORIZED' });
    });

    it('corral login, pull, push and logout on the command line', () => {
      const root = join(work, 'state-cli');
      const corral = (args: string[], input?: string) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', ...(input === undefined ? {} : { input }) });
      const ref = `${secured.host}/team/base:1`;
      const denied = corral(['pull', ref, '--root', root]);
      assert.equal(denied.status, 125);
      assert.match(denied.stderr, /HTTP 401 UNAUTHORIZED/);
      const login = corral(['login', secured.host, '-u', 'alice', '--password-stdin'], `${password}\n`);
      assert.equal(login.status, 0, login.stderr);
      const pulled = corral(['pull', ref, '--root', root]);
      assert.equal(pulled.status, 0, pulled.stderr);
      assert.match(pulled.stdout, new RegExp(`^sha256:[a-f0-9]{64} ${ref}\n$`));
      assert.match(pulled.stderr, /pull .* MB \(.* MB\/s\)/);
      const pushed = corral(['push', ref, `${secured.host}/team/cli:1`, '--root', root]);
      assert.equal(pushed.status, 0, pushed.stderr);
      assert.equal(pushed.stdout.split(' ')[0], pulled.stdout.split(' ')[0]);
      assert.equal(corral(['logout', secured.host]).status, 0);
      assert.equal(corral(['pull', ref, '--root', root]).status, 125);
    });

    it('takes credentials from a docker-credential helper', async () => {
      const bin = join(work, 'helper-bin');
      mkdirSync(bin, { recursive: true });
      const helper = join(bin, 'docker-credential-corraltest');
      writeFileSync(helper, `#!/bin/sh\nread server\n[ "$1" = get ] && [ "$server" = "${secured.host}" ] && echo '{"Username":"alice","Secret":"${password}"}' && exit 0\necho "credentials not found in native keychain"; exit 1\n`);
      chmodSync(helper, 0o755);
      writeFileSync(join(process.env.DOCKER_CONFIG!, 'config.json'), JSON.stringify({ credHelpers: { [secured.host]: 'corraltest' } }));
      const path = process.env.PATH;
      process.env.PATH = `${bin}:${path}`;
      try {
        const r = new Runtime({ root: join(work, 'state-helper'), cgroupParent: false });
        const image = await r.images.pull(`${secured.host}/team/base:1`);
        assert.equal(image.tags[0], `${secured.host}/team/base:1`);
      } finally {
        process.env.PATH = path;
      }
    });
  });

  describe('with token auth (Docker Hub flow)', () => {
    let secured: TestRegistry;
    let tokens: TokenServer;
    const password = 't0ken-Pa55';
    before(async () => {
      const dir = join(work, 'registry-token');
      tokens = await startTokenServer(dir, 'bob', password);
      secured = await startRegistry(dir, tokens.auth);
      await skopeoAsync('copy', '--dest-tls-verify=false', '--dest-creds', `bob:${password}`, `oci:${layout}:derived`, `docker://${secured.host}/bob/derived:1`);
    });
    after(async () => {
      await secured?.stop();
      await tokens?.stop();
    });

    it('gets a bearer token per scope, cached for the whole pull, and pushes with push scope', async () => {
      const r = new Runtime({ root: join(work, 'state-token'), cgroupParent: false });
      const ref = `${secured.host}/bob/derived:1`;
      await assert.rejects(r.images.pull(ref, { auth: { username: 'bob', password: 'nope-nope' } }), (e: Error) => {
        assert.equal((e as Error & { code: string }).code, 'ERR_REGISTRY_UNAUTHORIZED');
        assert.equal(e.message.includes('nope-nope'), false);
        return true;
      });
      tokens.issued.length = 0;
      const image = await r.images.pull(ref, { auth: { username: 'bob', password } });
      assert.deepEqual(tokens.issued, [['repository:bob/derived:pull']], 'one token for manifest, config and layers');
      const run = await r.run({ image: ref, command: ['cat', '/etc/motd'] });
      assert.equal(run.stdout.toString(), 'derived\n');
      tokens.issued.length = 0;
      await r.images.push(ref, `${secured.host}/bob/again:1`, { auth: { username: 'bob', password } });
      assert.ok(tokens.issued.some((s) => s.includes('repository:bob/again:pull,push')), JSON.stringify(tokens.issued));
      assert.equal((await skopeoAsync('inspect', '--tls-verify=false', '--creds', `bob:${password}`, '--format', '{{.Digest}}', `docker://${secured.host}/bob/again:1`)).trim(), image.manifestDigest);
    });
  });

  describe('pull on demand, mirrors, zstd push, images/rmi', () => {
    it("runs an image not in the store by pulling it ('missing'); 'never' leaves it not found; 'always' pulls again", async () => {
      const ref = `${registry.host}/corral/ondemand:1`;
      skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:base`, `docker://${ref}`);
      const fresh = new Runtime({ root: join(work, 'state-ondemand'), cgroupParent: false });
      await assert.rejects(fresh.run({ image: ref, pull: 'never' }), { code: 'ERR_IMAGE_NOT_FOUND' });
      const r = await fresh.run({ image: ref });
      assert.equal(r.stdout.toString(), 'hi from image\n', r.stderr.toString());
      assert.deepEqual(fresh.images.list().map((i) => i.tags).flat(), [ref]);
      const before = registry.requests().filter((l) => l.includes('/manifests/1')).length;
      await fresh.run({ image: ref }, { pull: 'always' });
      assert.ok(registry.requests().filter((l) => l.includes('/manifests/1')).length > before);
      await assert.rejects(fresh.run({ image: `${registry.host}/corral/absent:1` }), (e: { code?: string; message: string }) => e.code === 'ERR_IMAGE_NOT_FOUND' && /pulling it failed/.test(e.message));
      await assert.rejects(fresh.run({ image: ref, pull: 'sometimes' as 'never' }), { code: 'ERR_INVALID_SPEC' });
    });

    it('pulls through a mirror when the registry is down, and from the registry when the mirror is down', async () => {
      const down = `127.0.0.1:${await freePort()}`;
      const mirror = await startRegistry(join(work, 'mirror'));
      try {
        skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:base`, `docker://${mirror.host}/corral/mirrored:1`);
        const viaMirror = new Runtime({ root: join(work, 'state-mirror'), cgroupParent: false, registries: { [down]: { mirrors: [mirror.host] } } });
        const image = await viaMirror.images.pull(`${down}/corral/mirrored:1`, { retry: FAST });
        assert.deepEqual(image.tags, [`${down}/corral/mirrored:1`]);
        skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:base`, `docker://${registry.host}/corral/origin:1`);
        const viaOrigin = new Runtime({ root: join(work, 'state-origin'), cgroupParent: false, registries: { [registry.host]: { mirrors: [`http://${down}`] } } });
        const pulled = await viaOrigin.images.pull(`${registry.host}/corral/origin:1`, { retry: FAST });
        assert.equal(pulled.manifestDigest, skopeoDigest(`${registry.host}/corral/origin:1`));
        await assert.rejects(viaMirror.images.pull(`${down}/corral/nowhere:1`, { retry: FAST }), { code: 'ERR_REGISTRY_UNAVAILABLE' });
      } finally {
        await mirror.stop();
      }
    });

    it("pushes zstd layers (an OCI manifest skopeo reads and a fresh store runs), leaving the store as it was; refused with the Node that can, where node:zlib cannot compress zstd", async () => {
      skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:base`, `docker://${registry.host}/corral/zstd-src:1`);
      await rt.images.pull(`${registry.host}/corral/zstd-src:1`);
      const dest = `${registry.host}/corral/zstd:1`;
      const push = rt.images.push(`${registry.host}/corral/zstd-src:1`, dest, { compression: 'zstd' });
      if (!zstdCompressAvailable()) {
        await assert.rejects(push, (e: { code?: string; message: string }) => e.code === 'ERR_UNSUPPORTED_COMPRESSION' && /Node 22\.15/.test(e.message));
        return;
      }
      const blobsBefore = readdirSync(join(work, 'state', 'images', 'blobs', 'sha256')).sort();
      const pushed = await push;
      assert.deepEqual(readdirSync(join(work, 'state', 'images', 'blobs', 'sha256')).sort(), blobsBefore);
      const manifest = JSON.parse(skopeo('inspect', '--raw', '--tls-verify=false', `docker://${dest}`)) as { mediaType: string; layers: { mediaType: string }[] };
      assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
      assert.ok(manifest.layers.length > 0 && manifest.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+zstd'), JSON.stringify(manifest));
      assert.equal(skopeoDigest(dest), pushed.manifestDigest);
      skopeo('copy', '--src-tls-verify=false', `docker://${dest}`, `oci:${join(work, 'zstd-copy')}:z`); // skopeo checks every digest
      const fresh = new Runtime({ root: join(work, 'state-zstd'), cgroupParent: false });
      const r = await fresh.run({ image: dest });
      assert.equal(r.stdout.toString(), 'hi from image\n', r.stderr.toString());
    });

    it('corral images lists short ids and human sizes, and only the tag pulled into a fresh store; corral rmi removes', () => {
      const root = join(work, 'state-cli-images');
      const corral = (...args: string[]) => spawnSync(process.execPath, [cli, ...args, '--root', root], { encoding: 'utf8' });
      const ref = `${registry.host}/corral/cli-images:1`;
      skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:base`, `docker://${ref}`);
      const pulled = corral('pull', ref);
      assert.equal(pulled.status, 0, pulled.stderr);
      const listed = corral('images');
      assert.equal(listed.status, 0, listed.stderr);
      assert.match(pulled.stdout, new RegExp(`^sha256:[a-f0-9]{64} ${ref}\n$`));
      // The same manifest is in other repositories and registries of this test (corral/base:1,
      // team/base:1, ...): a fresh store knows it by the pulled name only.
      const shortId = pulled.stdout.slice(7, 19);
      const rows = listed.stdout.trim().split('\n').slice(1).map((l) => l.split('\t'));
      assert.equal(rows.length, 1, listed.stdout);
      const row = rows[0]!;
      assert.deepEqual(row.slice(0, 2), [ref, shortId], listed.stdout);
      assert.match(row[1]!, /^[0-9a-f]{12}$/);
      assert.match(row[3]!, /^\d+(\.\d+)?(B|kB|MB|GB)$/);
      // A second name for the same image: pull prints the name pulled, REF lists both.
      const twin = `${registry.host}/corral/cli-images-twin:1`;
      skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:base`, `docker://${twin}`);
      const again = corral('pull', twin);
      assert.equal(again.stdout, `${pulled.stdout.split(' ')[0]} ${twin}\n`, again.stderr);
      assert.equal(corral('images').stdout.trim().split('\n')[1]!.split('\t')[0], [ref, twin].sort().join(','));
      const never = corral('run', '--pull', 'never', `${registry.host}/corral/not-here:1`);
      assert.notEqual(never.status, 0);
      assert.match(never.stderr, /no image/);
      assert.equal(corral('run', '--pull', 'often', ref).status, 125);
      const rmi = corral('rmi', ref);
      assert.equal(rmi.status, 0, rmi.stderr);
      assert.ok(!corral('images').stdout.includes(ref));
    });
  });
});
