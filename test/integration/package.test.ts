import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';
import { busyboxLayout } from '../image-fixtures.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
// The command as package.json's bin names it: the bundle of bindings/bundle.mjs.
const cli = join(repo, 'dist/corral/main.js');

describe(`the built package and the corral command (${rootless ? 'rootless' : 'root'})`, () => {
  let root: string;
  let consumer: string;
  before(() => {
    root = makeBusyboxRoot();
    consumer = mkdtempSync(join(tmpdir(), 'corral-consumer-'));
    mkdirSync(join(consumer, 'node_modules'));
    symlinkSync(repo, join(consumer, 'node_modules/corral'));
  });
  after(() => {
    rmRoot(root);
    rmSync(consumer, { recursive: true, force: true });
  });

  it('is importable from plain Node in another folder', () => {
    writeFileSync(join(consumer, 'use.mjs'), `
      import { run, create, Runtime, CorralError } from 'corral';
      const r = await run({ command: ['sh', '-c', 'echo $$'] });
      const err = await run({ command: ['nope'] }).catch((e) => e);
      console.log(JSON.stringify({ out: r.stdout.toString(), create: typeof create, runtime: typeof new Runtime().run, err: err instanceof CorralError && err.code }));
    `);
    const out = execFileSync(process.execPath, ['use.mjs'], { cwd: consumer, encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), { out: '1\n', create: 'function', runtime: 'function', err: 'ENOENT' });
  });

  it("package.json's bin is the bundle: it runs by its shebang, reads the version and removes an --rm container through itself", async function () {
    this.timeout(30_000);
    const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string; bin: { corral: string } };
    assert.equal(join(repo, pkg.bin.corral), cli);
    assert.equal(execFileSync(join(repo, pkg.bin.corral), ['--version'], { encoding: 'utf8' }), `corral ${pkg.version}\n`);
    const state = join(consumer, 'rm-state');
    const id = execFileSync(cli, ['run', '-d', '--rm', '--root', state, '--rootfs', root, '--', 'true'], { encoding: 'utf8' }).trim();
    // The supervisor removes it by running the command that made it (lib/runtime.ts cliMain).
    const deadline = Date.now() + 20_000;
    while (existsSync(join(state, 'containers', id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(existsSync(join(state, 'containers', id)), false, `${id} was not removed`);
  });

  it('corral run passes stdio through and exits with the container exit code', () => {
    const r = spawnSync(process.execPath, [cli, 'run', '--rootfs', root, '--hostname', 'clibox', '-e', 'A=b', '--', 'sh', '-c', 'cat; echo $A $(hostname); echo e >&2; exit 3'], { input: 'in\n', encoding: 'utf8' });
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stdout, 'in\nb clibox\n');
    assert.equal(r.stderr, 'e\n');
  });

  it('corral run without --rootfs uses the host root read-only', () => {
    const r = spawnSync(process.execPath, [cli, 'run', '--', 'sh', '-c', 'echo $$; touch /usr/x 2>/dev/null || echo ro'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '1\nro\n');
  });

  it('corral volume and corral run -v/--mount/--tmpfs/--read-only', () => {
    const state = join(consumer, 'state');
    const corral = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
    assert.equal(corral('volume', 'create', '--root', state, 'clivol', '-l', 'team=a').status, 0);
    const write = corral('run', '--root', state, '--rootfs', root, '-v', 'clivol:/data', '--tmpfs', '/scratch:size=1m', '--read-only', '--', 'sh', '-c', 'echo v > /data/f; echo t > /scratch/t; touch /ro 2>&1; cat /scratch/t');
    assert.equal(write.status, 0, write.stderr);
    assert.match(write.stdout, /Read-only file system\nt\n$/);
    const read = corral('run', '--root', state, '--rootfs', root, '--mount', 'type=volume,source=clivol,target=/in,readonly', '--', 'cat', '/in/f');
    assert.equal(read.stdout, 'v\n');
    const ls = corral('volume', 'ls', '--root', state);
    assert.match(ls.stdout, /^NAME\tSIZE\tUSED BY\nclivol\t2\t-\n$/);
    const inspect = JSON.parse(corral('volume', 'inspect', '--root', state, 'clivol').stdout);
    assert.deepEqual([inspect.name, inspect.labels, inspect.sizeBytes], ['clivol', { team: 'a' }, 2]);
    assert.equal(corral('volume', 'create', '--root', state, 'modevol', '-o', 'mode=0700').status, 0);
    assert.deepEqual(JSON.parse(corral('volume', 'inspect', '--root', state, 'modevol').stdout).options, { mode: 0o700 });
    const badOpt = corral('volume', 'create', '--root', state, 'x', '-o', 'size=1g');
    assert.deepEqual([badOpt.status, badOpt.stderr.trim().split('\n')[0]], [125, "corral: unknown volume option 'size': corral knows uid, gid and mode (see corral volume --help)"]);
    assert.equal(corral('volume', 'rm', '--root', state, 'modevol').status, 0);
    assert.equal(corral('volume', 'rm', '--root', state, 'clivol').status, 0);
    const gone = corral('volume', 'inspect', '--root', state, 'clivol');
    assert.equal(gone.status, 125);
    assert.match(gone.stderr, /no volume named clivol/);
    assert.equal(corral('run', '--root', state, '--', 'true', '-v', 'x').status, 0);
    assert.equal(corral('run', '--root', state, '-v', 'bad', '--', 'true').status, 125);
  });

  it('corral image import|ls|inspect|tag|export|rm|gc|du, corral run IMAGE and corral commit', () => {
    const state = join(consumer, 'image-state');
    const layout = busyboxLayout(mkdtempSync(join(consumer, 'img-')));
    const corral = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
    const imported = corral('image', 'import', '--root', state, layout, '--format', 'oci-layout');
    assert.equal(imported.status, 0, imported.stderr);
    assert.match(imported.stdout, /^sha256:[0-9a-f]{64} base:latest\n$/);
    assert.match(corral('image', 'ls', '--root', state).stdout, /^REF\tIMAGE ID\tLAYERS\tSIZE\nbase:latest\t[0-9a-f]{12}\t1\t[\d.]+[kMG]?B\n$/);
    assert.equal(JSON.parse(corral('image', 'inspect', '--root', state, 'base').stdout).tags[0], 'base:latest');
    const ran = corral('run', '--root', state, 'base');
    assert.equal(ran.stdout, 'hi from image\n', ran.stderr);
    const committed = corral('commit', '--root', state, '-m', 'from the cli', 'base', 'mine:1', '--', 'sh', '-c', 'echo made > /made');
    assert.equal(committed.status, 0, committed.stderr);
    assert.equal(corral('run', '--root', state, 'mine:1', '--', 'cat', '/made').stdout, 'made\n');
    assert.equal(corral('image', 'tag', '--root', state, 'mine:1', 'mine:2').status, 0);
    const out = join(consumer, 'exported-cli');
    assert.equal(corral('image', 'export', '--root', state, 'mine:2', out).status, 0);
    execFileSync('skopeo', ['inspect', `oci:${out}:mine:2`]);
    const du = JSON.parse(corral('image', 'du', '--root', state).stdout);
    assert.ok(du.sharedBytes > 0 && du.totalBytes > du.sharedBytes);
    assert.equal(corral('image', 'rm', '--root', state, 'mine:1').status, 0);
    assert.equal(corral('image', 'rm', '--root', state, 'mine:2').status, 0);
    assert.deepEqual(JSON.parse(corral('image', 'gc', '--root', state).stdout).layers, 1);
    const missing = corral('run', '--root', state, 'nope:1');
    assert.equal(missing.status, 125);
    assert.match(missing.stderr, /no image nope:1/);
  });

  it('corral run reports failures with docker-like exit codes', () => {
    const missing = spawnSync(process.execPath, [cli, 'run', '--rootfs', root, '--', 'no-such-program'], { encoding: 'utf8' });
    assert.equal(missing.status, 127);
    assert.match(missing.stderr, /^corral: .*no-such-program.*ENOENT/);
    const badRoot = spawnSync(process.execPath, [cli, 'run', '--rootfs', join(root, 'missing'), '--', 'true'], { encoding: 'utf8' });
    assert.equal(badRoot.status, 125);
    assert.match(badRoot.stderr, /missing/);
    const killed = spawnSync(process.execPath, [cli, 'run', '--rootfs', root, '--timeout', '100', '--', 'sleep', '30'], { encoding: 'utf8' });
    assert.equal(killed.status, 124);
    const usage = spawnSync(process.execPath, [cli, 'bogus'], { encoding: 'utf8' });
    assert.equal(usage.status, 125);
    assert.match(usage.stderr, /unknown command 'bogus'/);
  });

  it('corral keeps a compile cache where Node has one, and runs without it when its directory cannot be made', () => {
    const cache = mkdtempSync(join(tmpdir(), 'corral-compile-cache-'));
    try {
      const { NODE_COMPILE_CACHE: _, NODE_DISABLE_COMPILE_CACHE: __, ...env } = process.env;
      const ps = (xdg: string) => spawnSync(process.execPath, [cli, 'ps', '-q', '--root', join(cache, 'root')], { encoding: 'utf8', timeout: 30_000, env: { ...env, XDG_CACHE_HOME: xdg } });
      // Under /proc mkdir fails with ENOENT, where Node's own recursive mkdir spins forever.
      for (const bad of ['/proc/corral-none', join(cache, 'file', 'below')]) {
        if (bad.startsWith(cache)) writeFileSync(join(cache, 'file'), '');
        const r = ps(bad);
        assert.deepEqual([r.status, r.stdout, r.stderr], [0, '', ''], bad);
      }
      assert.equal(ps(join(cache, 'xdg')).status, 0);
      const dir = join(cache, 'xdg', 'corral', 'compile');
      if (typeof (module as { enableCompileCache?: unknown }).enableCompileCache === 'function') assert.ok(readdirSync(dir).length > 0, `nothing cached in ${dir}`);
      else assert.equal(existsSync(dir), false, `Node ${process.version} has no compile cache, yet ${dir} was made`);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
