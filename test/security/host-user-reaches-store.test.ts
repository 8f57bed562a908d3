// Issue 10 item 2: a host user (uid 65534) escalating through what root's runtime keeps on disk: a
// setuid-root binary a container wrote into a volume, a setuid file and a 0666 device node an image
// layer brought, a 0777 directory of a shared layer. Each attack runs as uid 65534 against root's
// store and fails; its twin runs against the same store with the old 0755 modes and works; a new
// Runtime on that store tightens it again (checked and repaired at start). Rootless roots: 0700 too.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../../lib/index.ts';
import { BUSYBOX, makeBusyboxRoot, rmRoot, rootless } from '../helpers.ts';
import { layoutOf } from '../image-fixtures.ts';
import { layerContents } from '../image-store-contents.ts';
import { packTar } from '../tar-fixtures.ts';

const NOBODY = 65534;
const probeSource = fileURLToPath(new URL('../fixtures/probe.c', import.meta.url));
const mode = (path: string): number => statSync(path).mode & 0o7777;

/** Runs a busybox sh script as uid 65534 (from the root pass; the rootless pass already is it). */
function asNobody(script: string): { out: string; status: number | null } {
  const r = spawnSync(BUSYBOX, ['sh', '-c', script], { encoding: 'utf8', ...(rootless ? {} : { uid: NOBODY, gid: NOBODY }) });
  return { out: `${r.stdout}${r.stderr}`.trim(), status: r.status };
}

describe('security: a host user reaches setuid files, devices and layers in the store (issue 10 item 2)', () => {
  // The attacker must be another user than the store's owner: the root pass is where that holds
  // (the rootless pass checks its own root's modes below).
  if (!rootless) describe('as root, attacked by uid 65534', () => {
    let base: string;
    let state: string;
    let busybox: string;
    let volumeProbe: string;
    let layerFs: string;

    before(async function () {
      this.timeout(60_000);
      // Only the store's own modes stand between uid 65534 and it: its parent is 0755.
      base = mkdtempSync(join(tmpdir(), 'corral-test-store-'));
      chmodSync(base, 0o755);
      state = join(base, 'state');
      busybox = makeBusyboxRoot();
      execFileSync('cc', ['-static', '-O2', '-o', join(busybox, 'bin/probe'), probeSource]);
      const rt = new Runtime({ root: state, cgroupParent: false });
      const w = await rt.run({ command: ['/bin/sh', '-c', 'cp /bin/probe /loot/probe && chmod 4755 /loot/probe'], rootfs: busybox, mounts: [{ type: 'volume', source: 'loot', target: '/loot' }] });
      assert.equal(w.exitCode, 0, w.stderr.toString());
      volumeProbe = join((await rt.volumes.inspect('loot')).path, 'probe');
      const tar = await packTar([
        { name: 'bin/', type: 'directory', mode: 0o755 },
        { name: 'bin/probe', mode: 0o4755, uid: 0, gid: 0, content: readFileSync(join(busybox, 'bin/probe')) },
        { name: 'dev/', type: 'directory', mode: 0o755 },
        { name: 'dev/zero', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 5 },
        { name: 'shared/', type: 'directory', mode: 0o777 },
      ], new Date(0));
      await rt.images.import(layoutOf(join(base, 'layout'), 'hostile', [tar]), { tag: 'hostile' });
      layerFs = layerContents(state, (await rt.images.inspect('hostile')).layers[0]!.chainId);
    });
    after(() => {
      if (rootless) return;
      rmRoot(busybox);
      rmSync(base, { recursive: true, force: true });
    });

    /** Gives every 0700 directory from the store's root down to path the 0755 that the old code made. */
    const oldModes = (path: string): void => {
      for (let d = dirname(path); d.startsWith(state); d = dirname(d)) if (mode(d) === 0o700) chmodSync(d, 0o755);
    };

    const attacks: { name: string; target: () => string; script: (target: string) => string; works: RegExp }[] = [
      { name: 'runs a setuid-root binary a container wrote into a volume', target: () => volumeProbe, script: (t) => `'${t}' ids`, works: /euid=0/ },
      { name: "runs an image layer's setuid-root binary", target: () => join(layerFs, 'bin/probe'), script: (t) => `'${t}' ids`, works: /euid=0/ },
      { name: "opens a 0666 device node from an image layer", target: () => join(layerFs, 'dev/zero'), script: (t) => `head -c 3 '${t}' | wc -c`, works: /^3$/ },
      { name: 'writes into a shared layer', target: () => join(layerFs, 'shared'), script: (t) => `echo pwned > '${t}/pwned' && echo wrote`, works: /^wrote$/ },
    ];

    for (const attack of attacks) {
      it(`${attack.name}: refused`, () => {
        const { out } = asNobody(attack.script(attack.target()));
        assert.doesNotMatch(out, attack.works);
        assert.match(out, /Permission denied/);
      });

      it(`${attack.name}: works with the old 0755 modes, until a new Runtime repairs them`, () => {
        oldModes(attack.target());
        assert.match(asNobody(attack.script(attack.target())).out, attack.works);
        void new Runtime({ root: state, cgroupParent: false }).images;
        assert.equal(mode(state), 0o700);
        assert.match(asNobody(attack.script(attack.target())).out, /Permission denied/);
      });
    }

    it('makes the root and its store directories 0700', () => {
      for (const dir of [state, join(state, 'volumes'), join(state, 'images'), join(state, 'containers')]) assert.equal(mode(dir), 0o700, dir);
    });
  });

  describe('the runtime root at start', () => {
    let base: string;
    beforeEach(() => {
      base = mkdtempSync(join(tmpdir(), 'corral-test-root-'));
    });
    afterEach(() => rmSync(base, { recursive: true, force: true }));

    it('tightens an existing root and store directory that are wider than 0700', () => {
      const state = join(base, 'state');
      mkdirSync(join(state, 'volumes'), { recursive: true, mode: 0o755 });
      chmodSync(state, 0o2775);
      chmodSync(join(state, 'volumes'), 0o777);
      void new Runtime({ root: state, cgroupParent: false });
      assert.equal(mode(state), 0o700);
      assert.equal(mode(join(state, 'volumes')), 0o700);
    });

    it('refuses a root another user owns, saying so', () => {
      const foreign = rootless ? '/' : join(base, 'foreign');
      if (!rootless) {
        mkdirSync(foreign, { mode: 0o755 });
        chownSync(foreign, NOBODY, NOBODY);
      }
      assert.throws(() => new Runtime({ root: foreign, cgroupParent: false }), { name: 'CorralError', code: 'ERR_UNSAFE_RUNTIME_ROOT', path: foreign, message: /belongs to uid \d+, not to this user/ });
      assert.equal(mode(foreign), rootless ? mode('/') : 0o755, 'left as it was');
    });

    it('makes a rootless default root ($XDG_DATA_HOME/corral) 0700, and its missing parents', () => {
      const home = join(base, 'home');
      mkdirSync(join(home, 'tmp'), { recursive: true });
      if (!rootless) for (const d of [base, home, join(home, 'tmp')]) chownSync(d, NOBODY, NOBODY);
      const xdg = join(home, 'data/share');
      const script = `import { Runtime } from ${JSON.stringify(fileURLToPath(new URL('../../lib/index.ts', import.meta.url)))};
        console.log(new Runtime({ cgroupParent: false }).root);`;
      const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        encoding: 'utf8',
        env: { ...process.env, HOME: home, TMPDIR: join(home, 'tmp'), XDG_DATA_HOME: xdg },
        ...(rootless ? {} : { uid: NOBODY, gid: NOBODY }),
      });
      assert.equal(out.trim(), join(xdg, 'corral'));
      assert.equal(mode(join(xdg, 'corral')), 0o700);
      assert.equal(mode(xdg), 0o700);
    });
  });
});
