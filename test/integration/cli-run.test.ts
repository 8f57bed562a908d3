import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../../lib/index.ts';
import { busyboxLayout } from '../image-fixtures.ts';
import { makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';

const cli = fileURLToPath(new URL('../../lib/cli/main.ts', import.meta.url));

describe(`corral run as a docker user types it (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(60_000);
  let work: string;
  let store: string;
  let rootfs: string;
  /** Runs the corral command (from the sources) with --root store. */
  const corral = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'corral-cli-run-'));
    store = join(work, 'state');
    rootfs = makeBusyboxRoot();
    await new Runtime({ root: store }).images.import(busyboxLayout(work), { format: 'oci-layout' });
  });
  after(async () => {
    for (const c of new Runtime({ root: store }).list({ all: true, onError: () => {} })) await c.remove({ force: true });
    rmRoot(rootfs);
    execFileSync('chmod', ['-R', 'u+rwX', work]);
    rmSync(work, { recursive: true, force: true });
  });

  it('takes the command after IMAGE without --, with its own options; -- still works', () => {
    assert.deepEqual(corral(['run', '--root', store, 'base', 'echo', '-n', 'hi']), { status: 0, stdout: 'hi', stderr: '' });
    assert.equal(corral(['run', '--root', store, 'base', '--', 'echo', 'dashed']).stdout, 'dashed\n');
    assert.equal(corral(['run', '--root', store, 'base']).stdout, 'hi from image\n');
    assert.equal(corral(['run', '--root', store, '--rootfs', rootfs, 'sh', '-c', 'echo rootfs']).stdout, 'rootfs\n');
    const r = corral(['run', '--root', store, '--rm', '-d', 'base', 'sh', '-c', 'echo detached']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^[0-9a-f]{12}\n$/);
  });

  it('--env-file, -e KEY=VALUE and -e KEY passed through from the environment', () => {
    const file = join(work, 'vars.env');
    writeFileSync(file, '# a comment\nFROM_FILE=f\nPASSED\n');
    const r = corral(['run', '--root', store, '--env-file', file, '-e', 'SET=s', '-e', 'ALSO', '-e', 'UNSET_HERE', 'base', 'sh', '-c', 'echo "$FROM_FILE $SET $PASSED $ALSO ${UNSET_HERE-none} $FROM_IMAGE"'], { PASSED: 'p', ALSO: 'a' });
    assert.deepEqual([r.status, r.stdout], [0, 'f s p a none yes\n'], r.stderr);
  });

  it('--entrypoint replaces the image Entrypoint and its Cmd; the command follows it', () => {
    assert.equal(corral(['run', '--root', store, '--entrypoint', '/bin/echo', 'base']).stdout, '\n');
    assert.equal(corral(['run', '--root', store, '--entrypoint', '/bin/echo', 'base', 'a', 'b']).stdout, 'a b\n');
    assert.equal(corral(['run', '--root', store, '--rootfs', rootfs, '--entrypoint', '/bin/echo', '--', 'c']).stdout, 'c\n');
  });

  it('-u NAME[:GROUP] is resolved in the image or the rootfs; an unknown name is refused', () => {
    assert.equal(corral(['run', '--root', store, '-u', 'root', 'base', 'id', '-u']).stdout, '0\n');
    assert.equal(corral(['run', '--root', store, '-u', 'root:root', '--rootfs', rootfs, 'id', '-g']).stdout, '0\n');
    if (!rootless) {
      assert.equal(corral(['run', '--root', store, '-u', 'app', 'base', 'sh', '-c', 'echo $(id -u):$(id -g)']).stdout, '1000:1000\n');
      assert.equal(corral(['run', '--root', store, '-u', 'nobody:root', '--rootfs', rootfs, 'sh', '-c', 'echo $(id -u):$(id -g)']).stdout, '65534:0\n');
    }
    const r = corral(['run', '--root', store, '-u', 'nosuch', 'base', 'true']);
    assert.deepEqual([r.status, r.stderr], [125, "corral: user 'nosuch' is not in the container's /etc/passwd\n"]);
  });

  it('-v is --volume only; usage errors exit 125 with one line and a pointer to --help; corral alone prints usage', () => {
    const bad = corral(['-v']);
    assert.deepEqual([bad.status, bad.stderr], [125, "corral: unknown command '-v' (see corral --help)\n"]);
    assert.match(corral(['--version']).stdout, /^corral \d+\.\d+\.\d+/);
    const v = corral(['run', '--root', store, '-v', `${work}:/w:ro`, 'base', 'sh', '-c', 'test -f /w/vars.env && echo mounted']);
    assert.equal(v.stdout, 'mounted\n', v.stderr);
    const none = corral([]);
    assert.equal(none.status, 0);
    assert.match(none.stdout, /^usage: corral run/);
    for (const args of [['run', '--bogus', 'base'], ['run'], ['run', '--memory', 'lots', 'base'], ['ps', '--bogus'], ['logs'], ['commit', 'base'], ['stop', '--time']]) {
      const r = corral(args);
      assert.equal(r.status, 125, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^corral: [^\n]+ \(see corral [a-z]+ --help\)\n$/, args.join(' '));
    }
    for (const command of ['run', 'commit', 'ps', 'logs', 'exec', 'inspect', 'stats', 'start', 'stop', 'kill', 'rm', 'wait', 'pause', 'unpause', 'rename', 'image', 'volume', 'network', 'pull', 'push']) {
      const r = corral([command, '--help']);
      assert.equal(r.status, 0, command);
      assert.match(r.stdout, /usage:/i, command);
    }
  });
});
