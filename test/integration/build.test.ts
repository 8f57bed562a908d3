import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.ts';
import { busyboxLayout, contextOf } from '../image-fixtures.ts';
import { startRegistry } from '../registry-fixtures.ts';
import { removeWork, rootless, singleIdRootless } from '../helpers.ts';
import { buildHelpers } from '../build-helpers.ts';
import { layerHeaders, storedBlobs, storedLayers } from '../image-store-contents.ts';

const DEMO = `# syntax=docker/dockerfile:1
ARG BASE=base
FROM \${BASE}
ARG GREETING=hello
ENV APP=/app \\
    # a comment inside the continuation

    MODE="two words"
WORKDIR $APP
COPY --chown=1000:1000 --chmod=0750 run.sh ./
COPY src/ lib/
COPY <<EOF notes.txt
greeting=\${GREETING}
EOF
RUN echo "$GREETING from run in $(pwd)" > made.txt
RUN ["/bin/sh", "-c", "echo exec form >> made.txt"]
RUN <<EOF
echo heredoc >> made.txt
EOF
LABEL org.example.name="demo app" version=1
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --retries=3 CMD ["/app/run.sh"]
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo child
ENTRYPOINT ["/bin/sh", "/app/run.sh"]
CMD ["arg1"]
ARG RUNAS
USER $RUNAS
`;

// Rootless with one id mapped (the caller, to 0) an image cannot run as another user; with a
// subordinate range it can, as root can.
const runAs = singleIdRootless ? '0' : 'app';

describe(`build (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(120_000);
  let work: string;
  let rt: Runtime;
  let layout: string;
  let n = 0;
  const fresh = (files: Record<string, string>): string => contextOf(join(work, `ctx-${++n}`), files);
  const { build, out, ran } = buildHelpers(() => rt);

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'corral-test-build-'));
    rt = new Runtime({ root: join(work, 'state'), cgroupParent: false });
    layout = busyboxLayout(work);
    await rt.images.import(layout);
  });
  after(async () => {
    await removeWork(work);
  });

  it('builds ARG, ENV, WORKDIR, COPY (--chown, --chmod, heredoc), RUN (shell, exec, heredoc) and the config fields', async () => {
    const ctx = fresh({ 'Dockerfile': DEMO, 'run.sh': 'if [ "$1" = /bin/sh ]; then exec "$@"; fi\necho "run.sh $APP $MODE $1"\n', 'src/a.txt': 'a\n', 'src/deep/b.txt': 'b\n' });
    const { manifestDigest } = await build(ctx, { tag: 'demo:1', args: { GREETING: 'hi', RUNAS: runAs } });
    const info = await rt.images.inspect('demo:1');
    assert.deepEqual((await rt.images.inspect(manifestDigest)).tags, ['demo:1']);
    const c = info.config.config!;
    assert.deepEqual(c.Entrypoint, ['/bin/sh', '/app/run.sh']);
    assert.deepEqual(c.Cmd, ['arg1']);
    assert.equal(c.WorkingDir, '/app');
    assert.equal(c.User, runAs);
    assert.ok(c.Env!.includes('APP=/app') && c.Env!.includes('MODE=two words'), String(c.Env));
    assert.ok(!c.Env!.some((e) => e.startsWith('GREETING')), 'a build arg is not in the config');
    assert.deepEqual(c.Labels, { 'org.example.name': 'demo app', version: '1' });
    assert.deepEqual(c.ExposedPorts, { '8080/tcp': {}, '53/udp': {} });
    assert.deepEqual(c.Volumes, { '/data': {} });
    assert.equal(c.StopSignal, 'SIGINT');
    assert.deepEqual(c.Healthcheck, { Test: ['CMD', '/app/run.sh'], Interval: 30e9, Retries: 3 });
    assert.deepEqual(c.Shell, ['/bin/sh', '-ec']);
    assert.deepEqual(c.OnBuild, ['RUN echo child']);
    const history = info.config.history!;
    assert.ok(history.some((h) => h.created_by === 'COPY src/ lib/' && !h.empty_layer));
    assert.ok(history.some((h) => h.created_by === 'EXPOSE 8080 53/udp' && h.empty_layer));
    const r = await rt.run({ image: 'demo:1' });
    assert.equal(r.stdout.toString(), 'run.sh /app two words arg1\n', r.stderr.toString());
    assert.equal(await out('demo:1', 'cat made.txt notes.txt lib/a.txt lib/deep/b.txt'), 'hi from run in /app\nexec form\nheredoc\ngreeting=hi\na\nb\n');
    // Every layer the build wrote says what the Dockerfile meant, whoever built it: root's files
    // 0:0 (a rootless build with a range once wrote 65534 and then its host uid for /app), run.sh
    // 1000:1000 (--chown).
    const layers = (await rt.images.inspect('demo:1')).manifest.layers.slice(1);
    for (const { digest } of layers) {
      for (const [name, owner] of await layerHeaders(join(work, 'state/images/blobs/sha256', digest.slice('sha256:'.length)))) {
        assert.equal(owner.split(' ')[0], name === 'app/run.sh' ? '1000:1000' : '0:0', `${name} in the layer ${digest}`);
      }
    }
    // --chown keeps its owner wherever ids other than root exist; rootless with one id it is root's.
    assert.equal(await out('demo:1', 'stat -c "%u:%g %a" run.sh'), singleIdRootless ? '0:0 750\n' : '1000:1000 750\n');
  });

  it('reuses every step of an unchanged build (no container runs, same digest) and rebuilds from a changed COPY', async () => {
    const ctx = fresh({
      'Dockerfile': 'FROM base\nARG V=1\nRUN echo one > /one\nCOPY data.txt /data.txt\nRUN cat /data.txt > /two\n',
      'data.txt': 'first\n',
    });
    const first = await build(ctx);
    assert.deepEqual(ran(first.events), ['ARG V=1', 'RUN echo one > /one', 'COPY data.txt /data.txt', 'RUN cat /data.txt > /two']);
    const again = await build(ctx);
    assert.equal(again.manifestDigest, first.manifestDigest);
    assert.deepEqual(ran(again.events), ['ARG V=1']); // an ARG is no step to cache: it runs nothing
    utimesSync(join(ctx, 'data.txt'), new Date(), new Date(2001, 1, 1)); // mtime only: still cached
    assert.equal((await build(ctx)).manifestDigest, first.manifestDigest);
    writeFileSync(join(ctx, 'data.txt'), 'second\n');
    const changed = await build(ctx);
    assert.deepEqual(ran(changed.events), ['ARG V=1', 'COPY data.txt /data.txt', 'RUN cat /data.txt > /two']);
    assert.equal(await out(changed.manifestDigest, 'cat /one /two'), 'one\nsecond\n');
    const arg = await build(ctx, { args: { V: '2' } });
    assert.deepEqual(ran(arg.events), ['ARG V=1', 'RUN echo one > /one', 'COPY data.txt /data.txt', 'RUN cat /data.txt > /two']);
    const noCache = await build(ctx, { noCache: true });
    assert.equal(ran(noCache.events).filter((i) => !i.startsWith('ARG')).length, 3);
  });

  it('builds multi-stage: COPY --from a stage or an image, --target, stages the target does not need are skipped', async () => {
    const ctx = fresh({
      'Dockerfile': 'FROM base AS builder\nRUN mkdir -p /out && echo built > /out/bin\n\nFROM base AS unused\nRUN exit 3\n\nFROM scratch AS final\nCOPY --from=builder /out/bin /bin/tool\nCOPY --from=base /bin/busybox /bin/busybox\nCMD ["/bin/busybox", "cat", "/bin/tool"]\n',
    });
    const { manifestDigest } = await build(ctx, { tag: 'multi:1' });
    const r = await rt.run({ image: manifestDigest });
    assert.equal(r.stdout.toString(), 'built\n', r.stderr.toString());
    assert.equal((await rt.images.inspect('multi:1')).layers.length, 2);
    await assert.rejects(build(ctx, { target: 'unused' }), (e: { code: string; message: string }) => e.code === 'ERR_BUILD_FAILED' && /Dockerfile:5: RUN exit 3: the command exited with 3/.test(e.message));
    const builder = await build(ctx, { target: 'builder' });
    assert.equal(await out(builder.manifestDigest, 'cat /out/bin'), 'built\n');
  });

  it('builds independent stages at once (each waits for the other\'s mark); the first failure stops the rest', async () => {
    const id = `sync-${Date.now()}`;
    const waitFor = (mine: string, theirs: string): string => `RUN --mount=type=cache,id=${id},target=/s touch /s/${mine} && i=0 && while [ ! -e /s/${theirs} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done && cp /s/${theirs} /saw-${theirs}`;
    const ctx = fresh({ 'Dockerfile': `FROM base AS a\n${waitFor('a', 'b')}\nFROM base AS b\n${waitFor('b', 'a')}\nFROM base\nCOPY --from=a /saw-b /\nCOPY --from=b /saw-a /\n` });
    const { manifestDigest } = await build(ctx, { noCache: true });
    assert.equal(await out(manifestDigest, 'ls /saw-a /saw-b'), '/saw-a\n/saw-b\n', 'each stage saw the other\'s mark while it ran');
    const root = join(work, 'state');
    const [images, blobs, layers] = [rt.images.list(), storedBlobs(root), storedLayers(root)];
    const failing = fresh({ 'Dockerfile': 'FROM base AS slow\nRUN sleep 30\nFROM base AS broken\nRUN exit 9\nFROM base\nCOPY --from=slow /etc/passwd /a\nCOPY --from=broken /etc/passwd /b\n' });
    await assert.rejects(build(failing, { noCache: true }), (e: { code: string; message: string }) => e.code === 'ERR_BUILD_FAILED' && /Dockerfile:4: RUN exit 9: the command exited with 9/.test(e.message));
    assert.deepEqual([rt.images.list(), storedBlobs(root), storedLayers(root), rt.list()], [images, blobs, layers, []]);
  });

  it('honours .dockerignore with ** and ! exceptions, last match wins', async () => {
    const ctx = fresh({
      'Dockerfile': 'FROM base\nCOPY . /ctx/\n',
      '.dockerignore': '**/*.log\n!keep/*.log\nsecret\nkeep/drop.log\n',
      'a.log': 'x', 'sub/b.log': 'x', 'keep/c.log': 'kept', 'keep/drop.log': 'x', 'secret/key': 'x', 'ok.txt': 'ok',
    });
    const { manifestDigest } = await build(ctx);
    assert.equal(await out(manifestDigest, 'cd /ctx && find . -type f | sort'), './.dockerignore\n./Dockerfile\n./keep/c.log\n./ok.txt\n');
  });

  it('leaves the store as it was when a step fails (no image, layer, blob or container behind)', async () => {
    const ctx = fresh({ 'Dockerfile': 'FROM base\nCOPY f /f\nRUN echo partial > /p\nENV X=1\nRUN echo out; echo err >&2; exit 7\n', 'f': 'f' });
    const root = join(work, 'state');
    const images = rt.images.list();
    const blobs = storedBlobs(root);
    const layers = storedLayers(root);
    await assert.rejects(build(ctx, { tag: 'broken:1', noCache: true }), (e: { code: string; message: string }) => e.code === 'ERR_BUILD_FAILED' && /Dockerfile:5: RUN echo out.*exited with 7.*out\nerr/s.test(e.message));
    assert.deepEqual(rt.images.list(), images);
    assert.deepEqual(storedBlobs(root), blobs);
    assert.deepEqual(storedLayers(root), layers);
    assert.deepEqual(rt.list(), []);
  });

  it('names the file, line and instruction in errors', async () => {
    const bad = fresh({ 'Dockerfile': 'FROM base\n\nFROB x\n' });
    await assert.rejects(build(bad), (e: { code: string; message: string }) => e.code === 'ERR_DOCKERFILE_SYNTAX' && /Dockerfile:3:1: unknown instruction: FROB/.test(e.message));
    const missing = fresh({ 'Dockerfile': 'FROM base\nCOPY nope /x\n' });
    await assert.rejects(build(missing), (e: { code: string; message: string }) => e.code === 'ERR_BUILD_CONTEXT' && /Dockerfile:2: COPY nope \/x: nope: no such file/.test(e.message));
    const noImage = fresh({ 'Dockerfile': 'FROM 127.0.0.1:9/nothere:1\n' }); // a closed port: the pull fails at once
    await assert.rejects(build(noImage), (e: { code: string; message: string }) => e.code === 'ERR_BUILD_FAILED' && /Dockerfile:1: FROM 127.0.0.1:9\/nothere:1: image '127.0.0.1:9\/nothere:1' is not in the store and pulling it failed: /.test(e.message));
  });

  it('resets the base image\'s CMD when ENTRYPOINT is set (not one set in the stage); ADD copies local files', async () => {
    const reset = await build(fresh({ 'Dockerfile': 'FROM base\nENTRYPOINT ["/bin/echo"]\n' }));
    assert.equal((await rt.images.inspect(reset.manifestDigest)).config.config!.Cmd, null);
    const kept = await build(fresh({ 'Dockerfile': 'FROM base\nCMD ["x"]\nENTRYPOINT ["/bin/echo"]\n' }));
    assert.deepEqual((await rt.images.inspect(kept.manifestDigest)).config.config!.Cmd, ['x']);
    const add = await build(fresh({ 'Dockerfile': 'FROM base\nADD a.txt /a.txt\n', 'a.txt': 'added' }));
    assert.equal(await out(add.manifestDigest, 'cat /a.txt'), 'added');
  });

  it('runs the base image\'s ONBUILD triggers first in a child build (not in the grandchild), reported at the FROM line', async () => {
    await build(fresh({ 'Dockerfile': 'FROM base\nONBUILD COPY app.txt /app/\nONBUILD RUN cat /app/app.txt > /app/seen\nONBUILD ENV CHILD=1\n' }), { tag: 'parent:1' });
    assert.deepEqual((await rt.images.inspect('parent:1')).config.config!.OnBuild, ['COPY app.txt /app/', 'RUN cat /app/app.txt > /app/seen', 'ENV CHILD=1']);
    const ctx = fresh({ 'Dockerfile': '# child\nFROM parent:1\nRUN echo "$CHILD" >> /app/seen\n', 'app.txt': 'from the child context\n' });
    const child = await build(ctx, { tag: 'child:1' });
    assert.deepEqual(ran(child.events), ['COPY app.txt /app/', 'RUN cat /app/app.txt > /app/seen', 'ENV CHILD=1', 'RUN echo "$CHILD" >> /app/seen']);
    assert.deepEqual(child.events.filter((e) => e.status === 'running').map((e) => `${e.step}/${e.total}`), ['1/4', '2/4', '3/4', '4/4']);
    assert.equal(await out('child:1', 'cat /app/seen'), 'from the child context\n1\n');
    const info = await rt.images.inspect('child:1');
    assert.equal(info.config.config!.OnBuild ?? null, null, 'the triggers are not inherited');
    assert.deepEqual(info.config.history!.slice(-4).map((h) => h.created_by), ['COPY app.txt /app/', 'RUN cat /app/app.txt > /app/seen', 'ENV CHILD=1', 'RUN echo "$CHILD" >> /app/seen']);
    assert.equal((await build(ctx)).manifestDigest, child.manifestDigest, 'a second build is all cached');
    const grandchild = await build(fresh({ 'Dockerfile': 'FROM child:1\nRUN test ! -e /app/app.txt.again\n' }));
    assert.deepEqual(ran(grandchild.events), ['RUN test ! -e /app/app.txt.again']);
    await assert.rejects(build(fresh({ 'Dockerfile': 'FROM parent:1\n' })), (e: { code: string; message: string }) => e.code === 'ERR_BUILD_CONTEXT' && /Dockerfile:1: COPY app.txt \/app\/: app.txt: no such file or directory in the build context/.test(e.message));
  });

  it('stops at an abort during a RUN: the container is killed, nothing stays behind', async () => {
    const root = join(work, 'state');
    const [images, blobs, layers] = [rt.images.list(), storedBlobs(root), storedLayers(root)];
    const abort = new AbortController();
    const ctx = fresh({ 'Dockerfile': 'FROM base\nRUN touch /first\nRUN echo started; sleep 30\n' });
    const started = performance.now();
    const building = rt.images.build({ context: ctx, noCache: true, signal: abort.signal, onProgress: (e) => {
      if (e.status === 'output' && e.output!.toString().includes('started')) abort.abort();
    } });
    await assert.rejects(building, { name: 'AbortError' });
    assert.ok(performance.now() - started < 10_000);
    assert.deepEqual([rt.images.list(), storedBlobs(root), storedLayers(root), rt.list()], [images, blobs, layers, []]);
  });

  it('corral build -t TAG [-f FILE] [--build-arg K=V] [--target S] CONTEXT prints the digest, the steps on stderr', () => {
    const ctx = fresh({ 'Dockerfile': 'FROM base\n', 'other.Dockerfile': 'FROM base AS a\nARG X\nRUN echo $X > /x\nFROM a AS b\nRUN exit 1\n' });
    const cli = (...args: string[]): string => execFileSync(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', 'build', '--root', join(work, 'state'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const digest = cli('-t', 'cli:1', '-f', join(ctx, 'other.Dockerfile'), '--build-arg', 'X=seven', '--target', 'a', ctx).trim();
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    assert.throws(() => cli('-f', join(ctx, 'other.Dockerfile'), ctx), (e: { status: number; stderr: string }) => e.status === 125 && /#3\/3 RUN exit 1\n.*other.Dockerfile:5: RUN exit 1: the command exited with 1/s.test(e.stderr));
  });

  it('corral build --progress: plain lines where stderr is no terminal, tty redraws the steps in place with the running output, quiet nothing', () => {
    const ctx = fresh({ 'Dockerfile': 'FROM base\nRUN echo one; echo two\nENV Y=2\n' });
    const build = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', 'build', '--root', join(work, 'state'), '--no-cache', ...args, ctx], { encoding: 'utf8' });
    const plain = build();
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stderr, /^#1\/2 RUN echo one; echo two\none\ntwo\n/m);
    assert.ok(!plain.stderr.includes('\x1b['), 'no escape sequences in plain lines');
    const tty = build('--progress', 'tty');
    assert.equal(tty.status, 0, tty.stderr);
    const frames = tty.stderr.split('\x1b[J');
    assert.ok(frames.length >= 3, `redrawn in place: ${JSON.stringify(tty.stderr)}`);
    const last = frames.at(-1)!.split('\n').filter(Boolean);
    assert.deepEqual(last.map((l) => l.replace(/ \d+\.\ds$/, '')), ['#1/2 DONE    RUN echo one; echo two', '#2/2 DONE    ENV Y=2']);
    assert.ok(frames.some((f) => /#1\/2 RUNNING RUN echo one; echo two \d+\.\ds\n {6}one\n {6}two\n/.test(f)), 'the running step shows its output under it');
    const quiet = build('-q');
    assert.equal(quiet.status, 0, quiet.stderr);
    assert.equal(quiet.stderr, '');
    assert.match(quiet.stdout, /^sha256:[0-9a-f]{64}\n$/);
    const bad = build('--progress', 'fancy');
    assert.equal(bad.status, 125);
    assert.match(bad.stderr, /--progress must be auto, plain, tty or quiet, got 'fancy'/);
  });

  it('pulls a FROM image the store lacks from its registry', async () => {
    const registry = await startRegistry(join(work, 'registry'));
    try {
      execFileSync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:base`, `docker://${registry.host}/busy:1`], { stdio: 'ignore' });
      // the same runtime (a second one would keep a netns pool of its own): the name is new to its store
      const ctx = fresh({ 'Dockerfile': `FROM ${registry.host}/busy:1\nRUN echo pulled > /p\n` });
      const { manifestDigest } = await rt.images.build({ context: ctx });
      assert.ok(rt.images.list().some((i) => i.tags.some((t) => t.includes('/busy:1'))));
      const r = await rt.run({ image: manifestDigest, command: ['cat', '/p'] });
      assert.equal(r.stdout.toString(), 'pulled\n');
    } finally {
      await registry.stop();
    }
  });

  it('keeps step images as the build cache, out of list(); prune({ buildCache: true }) drops them, not the result', async () => {
    const ctx = fresh({ 'Dockerfile': 'FROM base\nRUN echo a > /a\nENV X=1\nRUN echo b > /b\n' });
    const listed = rt.images.list().length;
    const first = await build(ctx, { tag: 'cached:1' });
    assert.equal(rt.images.list().length, listed + 1);
    assert.deepEqual(ran((await build(ctx)).events), []);
    await rt.images.prune({ buildCache: true });
    assert.equal((await rt.images.inspect('cached:1')).manifestDigest, first.manifestDigest);
    assert.equal(await out('cached:1', 'cat /a /b'), 'a\nb\n');
    assert.deepEqual(ran((await build(ctx)).events), ['RUN echo a > /a', 'ENV X=1', 'RUN echo b > /b']);
  });
});
