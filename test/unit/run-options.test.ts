import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRunArgs, runEnvironment, runLimits, runUser } from '../../lib/cli/run-options.ts';
import { failureLine } from '../../lib/cli/parse.ts';

const OPTIONS = {
  env: { type: 'string', short: 'e', multiple: true },
  rootfs: { type: 'string' },
  detach: { type: 'boolean', short: 'd' },
  rm: { type: 'boolean' },
  volume: { type: 'string', short: 'v', multiple: true },
} as const;

describe('corral run arguments, as docker run takes them', () => {
  it('takes the command after IMAGE without --, and leaves its options to it', () => {
    const r = parseRunArgs(['-d', '-e', 'A=1', 'busybox', 'ls', '-la', '--rm'], OPTIONS, 1, 'run');
    assert.deepEqual(r.positionals, ['busybox']);
    assert.deepEqual(r.command, ['ls', '-la', '--rm']);
    assert.deepEqual(r.values.env, ['A=1']);
    assert.equal(r.values.detach, true);
    assert.equal(r.values.rm, undefined);
  });

  it('keeps -- working: after IMAGE, and in place of IMAGE (host root or --rootfs)', () => {
    assert.deepEqual(parseRunArgs(['busybox', '--', 'echo', 'hi'], OPTIONS, 1, 'run').command, ['echo', 'hi']);
    const bare = parseRunArgs(['--rm', '--', '/bin/true', '-x'], OPTIONS, 1, 'run');
    assert.deepEqual([bare.positionals, bare.command], [[], ['/bin/true', '-x']]);
    const rootfs = parseRunArgs(['--rootfs', '/r', 'sh', '-c', 'echo'], OPTIONS, 1, 'run');
    assert.deepEqual([rootfs.positionals, rootfs.command, rootfs.values.rootfs], [[], ['sh', '-c', 'echo'], '/r']);
    assert.deepEqual(parseRunArgs(['--rootfs=/r', 'sh'], OPTIONS, 1, 'run').command, ['sh']);
  });

  it('skips the values of options (-e VALUE, -deVALUE clusters), takes IMAGE NEWREF for commit', () => {
    const r = parseRunArgs(['-de', 'busybox', '-v', '/a:/b', 'img', 'new:ref', 'sh'], OPTIONS, 2, 'commit');
    assert.deepEqual([r.values.env, r.values.volume, r.positionals, r.command], [['busybox'], ['/a:/b'], ['img', 'new:ref'], ['sh']]);
  });

  it('refuses unknown options and missing values in one line pointing to --help', () => {
    assert.throws(() => parseRunArgs(['--bogus', 'busybox'], OPTIONS, 1, 'run'), { code: 'ERR_INVALID_ARG_VALUE', message: "Unknown option '--bogus' (see corral run --help)" });
    assert.throws(() => parseRunArgs(['-e'], OPTIONS, 1, 'run'), { message: /^Option '-e, --env <value>' argument missing \(see corral run --help\)$/ });
    assert.throws(() => parseRunArgs(['--version'], OPTIONS, 1, 'run'), { message: /^Unknown option '--version'/ });
  });

  it('builds the environment from --env-file then -e; a bare KEY passes through when set', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-env-'));
    const file = join(dir, 'env');
    try {
      writeFileSync(file, '# comment\n\nA=from-file\nB=b=c\r\nPASSED\nUNSET\n');
      assert.deepEqual(runEnvironment(['A=flag', 'HOME_TOO', 'E='], [file], { PASSED: 'yes', HOME_TOO: 'h' }), { A: 'flag', B: 'b=c', PASSED: 'yes', HOME_TOO: 'h', E: '' });
      assert.throws(() => runEnvironment(['=x'], undefined, {}), { message: "--env must be KEY=VALUE or KEY, got '=x'" });
      assert.throws(() => runEnvironment([], [join(file, 'nope')], {}), { code: 'ENOTDIR' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('maps --memory, --cpus and --pids-limit onto limits', () => {
    assert.deepEqual(runLimits({ memory: '512m', cpus: '1.5', 'pids-limit': '64' }), { memory: 512 * 1024 ** 2, cpus: 1.5, pids: 64 });
    assert.deepEqual(runLimits({ memory: '2G' }), { memory: 2 * 1024 ** 3 });
    assert.equal(runLimits({}), undefined);
    assert.throws(() => runLimits({ memory: '5q' }), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => runLimits({ cpus: '0' }), { message: /--cpus must be a positive number/ });
    assert.throws(() => runLimits({ 'pids-limit': '1.5' }), { message: /--pids-limit must be a positive integer/ });
  });

  it('takes -u as ids or as NAME[:GROUP] left for the runtime to resolve', () => {
    assert.deepEqual(runUser('1000'), { uid: 1000, gid: 1000 });
    assert.deepEqual(runUser('1:2'), { uid: 1, gid: 2 });
    assert.equal(runUser('app:staff'), 'app:staff');
    assert.throws(() => runUser('a:b:c'), { code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('prints every usage error as one line with a pointer to --help', () => {
    assert.equal(failureLine({ message: 'bad thing', code: 'ERR_INVALID_ARG_VALUE' }, 'ps'), 'bad thing (see corral ps --help)');
    assert.equal(failureLine({ message: "Unknown option '--x'. To specify a positional argument...", code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' }, 'logs'), "Unknown option '--x' (see corral logs --help)");
    assert.equal(failureLine({ message: 'x (see corral run --help)', code: 'ERR_INVALID_ARG_VALUE' }, 'run'), 'x (see corral run --help)');
    assert.equal(failureLine({ message: 'no such container: y', code: 'ERR_CONTAINER_NOT_FOUND' }, 'rm'), 'no such container: y');
    assert.equal(failureLine({ message: 'bad', code: 'ERR_INVALID_ARG_VALUE' }, '--bogus'), 'bad (see corral --help)');
  });
});
