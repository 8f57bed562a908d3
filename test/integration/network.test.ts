import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { run } from '../../lib/index.ts';
import { rootless } from '../helpers.ts';

describe(`bridge networks (${rootless ? 'rootless' : 'root'})`, () => {
  if (rootless) {
    it('a bridge network is refused clearly without root (rootless networking is not implemented)', async () => {
      await assert.rejects(run({ network: 'bridge', command: ['true'] }), { code: 'ERR_INVALID_SPEC', message: /user namespace/ });
    });
    return;
  }

  // The suite creates bridges, veth pairs, nftables rules and sysctls: it runs in a network
  // namespace of its own so the host's are never touched (and nothing can outlive it).
  it('test/netns/bridge-network.spec.ts passes under unshare --net', function () {
    this.timeout(300_000);
    const repo = join(import.meta.dirname, '../..');
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.CORRAL_TEST_SUMMARY;
    const r = spawnSync('unshare', ['--net', process.execPath, join(repo, 'node_modules/mocha/bin/mocha.js'), '--reporter', 'dot', 'test/netns/bridge-network.spec.ts'], { cwd: repo, env, encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  });

  // A guard for the whole suite: no test (of this file or another) attached a container to a bridge
  // in the host's own network namespace.
  it("the host's network namespace has no corral bridge, veth or nftables table", () => {
    const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
    assert.doesNotMatch(links, /^\d+: (cr[0-9a-f]{12}|vc[0-9a-f]{12})[:@]/m);
    const tables = spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' });
    assert.equal(tables.status, 0, tables.stderr);
    assert.doesNotMatch(tables.stdout, /table ip corral\b/);
  });
});
