import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.ts';
import { busyboxLayout, contextOf } from '../image-fixtures.ts';
import { rootless } from '../helpers.ts';
import { buildHelpers } from '../build-helpers.ts';
import { storedBlobs } from '../image-store-contents.ts';

/** Every file of every layer blob of an image, as text (to look for a secret in it). */
function layerText(root: string): string {
  const blobs = join(root, 'images/blobs/sha256');
  return existsSync(blobs) ? readdirSync(blobs).map((b) => readFileSync(join(blobs, b)).toString('latin1')).join('\n') : '';
}

describe(`build RUN --mount (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(120_000);
  let work: string;
  let root: string;
  let rt: Runtime;
  let n = 0;
  const fresh = (files: Record<string, string>): string => contextOf(join(work, `ctx-${++n}`), files);
  const { build, out, ran } = buildHelpers(() => rt);

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'corral-test-build-mounts-'));
    root = join(work, 'state');
    rt = new Runtime({ root, cgroupParent: false });
    await rt.images.import(busyboxLayout(work));
  });
  after(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('type=cache keeps its directory between builds and out of the image; prune({ buildCache }) empties it', async () => {
    const dockerfile = (tag: string): string => `FROM base\nRUN --mount=type=cache,target=/var/cache/app echo ${tag} >> /var/cache/app/log && cat /var/cache/app/log > /seen\n`;
    const first = await build(fresh({ Dockerfile: dockerfile('one') }));
    assert.equal(await out(first.manifestDigest, 'cat /seen; ls -A /var/cache 2>&1 || true'), 'one\nls: /var/cache: No such file or directory\n');
    const second = await build(fresh({ Dockerfile: dockerfile('two') }));
    assert.equal(await out(second.manifestDigest, 'cat /seen'), 'one\ntwo\n');
    const other = await build(fresh({ Dockerfile: 'FROM base\nRUN --mount=type=cache,id=other,target=/var/cache/app ls -A /var/cache/app > /seen\n' }));
    assert.equal(await out(other.manifestDigest, 'cat /seen'), '', 'another id is another directory');
    const relative = await build(fresh({ Dockerfile: 'FROM base\nWORKDIR /var\nRUN --mount=type=cache,id=/var/cache/app,target=cache/app,sharing=locked cat cache/app/log > /seen\n' }));
    assert.equal(await out(relative.manifestDigest, 'cat /seen'), 'one\ntwo\n', 'a relative target is under the WORKDIR; the id (default: the target) names the directory');
    await rt.images.prune({ buildCache: true });
    assert.deepEqual(readdirSync(join(root, 'build/cache-mounts')), []);
    const after = await build(fresh({ Dockerfile: dockerfile('three') }));
    assert.equal(await out(after.manifestDigest, 'cat /seen'), 'three\n');
  });

  it('type=cache sharing: shared is one directory for steps at once, private gives a busy one\'s user another, locked takes turns', async () => {
    // two stages at once, each marks the cache and waits up to 2 s for the other's mark
    const race = (sharing: string): string => {
      const step = (me: string, other: string): string => `RUN --mount=type=cache,id=race-${sharing},sharing=${sharing},target=/c touch /c/${me} && i=0 && while [ ! -e /c/${other} ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done; ls /c > /seen`;
      return `FROM base AS a\n${step('a', 'b')}\nFROM base AS b\n${step('b', 'a')}\nFROM base\nCOPY --from=a /seen /a\nCOPY --from=b /seen /b\n`;
    };
    const seen = async (sharing: string): Promise<string> => out((await build(fresh({ Dockerfile: race(sharing) }), { noCache: true })).manifestDigest, 'echo $(cat /a) / $(cat /b)');
    assert.equal(await seen('shared'), 'a b / a b\n');
    assert.equal(await seen('private'), 'a / b\n');
    assert.ok(['a / a b\n', 'a b / b\n'].includes(await seen('locked')), 'one ran after the other and saw its mark');
  });

  it('type=bind mounts the context (read-only, no .dockerignore\'d file, writes with rw thrown away) or a stage', async () => {
    const ctx = fresh({
      'Dockerfile': [
        'FROM base AS tools',
        'RUN mkdir /out && echo from-stage > /out/tool',
        'FROM base',
        'RUN --mount=type=bind,target=/src cat /src/src/a.txt > /a && ls -A /src > /listing && (touch /src/x 2>/dev/null && echo writable || echo read-only) > /ro',
        'RUN --mount=type=bind,source=src,target=/m,rw echo changed > /m/a.txt && cat /m/a.txt > /rw',
        'RUN --mount=type=bind,from=tools,source=/out,target=/t cat /t/tool > /tool',
        'RUN --mount=type=bind,source=src/a.txt,target=/one.txt cat /one.txt > /file',
      ].join('\n'),
      '.dockerignore': 'ignored.txt\n',
      'ignored.txt': 'never read',
      'src/a.txt': 'a\n',
    });
    const { manifestDigest } = await build(ctx);
    assert.equal(await out(manifestDigest, 'cat /a /listing /ro /rw /tool /file'), 'a\n.dockerignore\nDockerfile\nsrc\nread-only\nchanged\nfrom-stage\na\n');
    assert.equal(readFileSync(join(ctx, 'src/a.txt'), 'utf8'), 'a\n', 'the rw write did not reach the context');
    assert.equal(await out(manifestDigest, 'ls -d /src /m /t /one.txt 2>&1 | wc -l; ls / | grep -c -e "^src$" -e "^m$" -e "^t$" -e "^one.txt$" || true'), '4\n0\n', 'the mount points are not in the image');
    writeFileSync(join(ctx, 'src/a.txt'), 'b\n');
    const again = await build(ctx);
    assert.deepEqual(ran(again.events), [
      'RUN --mount=type=bind,target=/src cat /src/src/a.txt > /a && ls -A /src > /listing && (touch /src/x 2>/dev/null && echo writable || echo read-only) > /ro',
      'RUN --mount=type=bind,source=src,target=/m,rw echo changed > /m/a.txt && cat /m/a.txt > /rw',
      'RUN --mount=type=bind,from=tools,source=/out,target=/t cat /t/tool > /tool',
      'RUN --mount=type=bind,source=src/a.txt,target=/one.txt cat /one.txt > /file',
    ], 'a bound file\'s content is in the key');
  });

  it('type=tmpfs is an empty tmpfs, gone after the step', async () => {
    const { manifestDigest } = await build(fresh({ Dockerfile: 'FROM base\nRUN --mount=type=tmpfs,target=/scratch,size=1m grep " /scratch " /proc/mounts | cut -d" " -f3 > /fs && echo x > /scratch/f\n' }));
    assert.equal(await out(manifestDigest, 'cat /fs; ls /scratch 2>&1 || true'), 'tmpfs\nls: /scratch: No such file or directory\n');
    const linked = await build(fresh({ Dockerfile: 'FROM base\nRUN mkdir /real && ln -s real /linked\nRUN --mount=type=tmpfs,target=/linked/sub/m touch /linked/sub/m/x\n' }));
    assert.equal(await out(linked.manifestDigest, 'readlink /linked; ls -A /real'), 'real\n', 'the mount points made through an image symlink are left out too');
  });

  it('type=secret is readable in its step and in no layer, history or cache key; a missing required one fails', async () => {
    const secretFile = join(work, 'token');
    const SECRET = 'sEcReT-VaLuE-4242';
    writeFileSync(secretFile, SECRET);
    const blobsBefore = storedBlobs(root).length;
    const ctx = fresh({ Dockerfile: 'FROM base\nRUN --mount=type=secret,id=token grep -q "^sEcReT-" /run/secrets/token && stat -c %a /run/secrets/token > /mode\nRUN --mount=type=secret,id=token,target=/etc/tok,required cat /etc/tok | wc -c > /len\n' });
    const { manifestDigest } = await build(ctx, { secrets: { token: { src: secretFile } }, tag: 'secret:1' });
    assert.equal(await out(manifestDigest, 'cat /mode /len; ls -A /run /etc/tok 2>&1 || true'), `400\n${SECRET.length}\nls: /run: No such file or directory\nls: /etc/tok: No such file or directory\n`);
    assert.ok(storedBlobs(root).length > blobsBefore);
    assert.ok(!layerText(root).includes(SECRET), 'the secret is in no blob (layer, config, history)');
    assert.ok(!readFileSync(join(root, 'build/cache.json'), 'utf8').includes(SECRET));
    writeFileSync(secretFile, 'another value');
    assert.deepEqual(ran((await build(ctx, { secrets: { token: { src: secretFile } } })).events), [], 'a secret\'s value is not in the cache key');
    const optional = await build(fresh({ Dockerfile: 'FROM base\nRUN --mount=type=secret,id=nothere ls /run/secrets/nothere > /o 2>&1 || echo absent > /o\n' }));
    assert.equal(await out(optional.manifestDigest, 'cat /o'), 'absent\n');
    await assert.rejects(build(fresh({ Dockerfile: 'FROM base\nRUN --mount=type=secret,id=nothere,required=true true\n' })),
      (e: { code: string; message: string }) => e.code === 'ERR_BUILD_CONTEXT' && /Dockerfile:2: .*secret 'nothere' is required/.test(e.message));
    await assert.rejects(build(fresh({ Dockerfile: 'FROM base\nRUN --mount=type=ssh true\n' })), (e: { code: string; message: string }) => e.code === 'ERR_DOCKERFILE_SYNTAX' && /type=ssh is not supported/.test(e.message));
    await assert.rejects(build(fresh({ Dockerfile: 'FROM base\nRUN --mount=type=secret,id=token --mount=type=bind,target=/c exit 3\n' }), { secrets: { token: { value: SECRET } } }));
    assert.deepEqual(readdirSync(join(root, 'build')).filter((name) => name.startsWith('step-')), [], 'no secret copy or bind source left behind, after a failed step too');
  });

  it('corral build --secret id=ID,src=FILE and id=ID (the environment variable)', () => {
    const file = join(work, 'cli-secret');
    writeFileSync(file, 'from-file');
    const ctx = fresh({ Dockerfile: 'FROM base\nRUN --mount=type=secret,id=a --mount=type=secret,id=B cat /run/secrets/a /run/secrets/B > /both\n' });
    const digest = execFileSync(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', 'build', '--root', root, '--secret', `id=a,src=${file}`, '--secret', 'id=B', ctx], { encoding: 'utf8', env: { ...process.env, B: 'from-env' }, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    assert.match(digest, /^sha256:/);
    return out(digest, 'cat /both').then((got) => assert.equal(got, 'from-filefrom-env'));
  });
});
