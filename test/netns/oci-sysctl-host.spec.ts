// linux.sysctl against the runtime's network namespace (test/security/oci-sysctl-host.test.ts
// starts this under unshare --net, so "the host" here is a namespace of the test's own and the
// twin's write changes nothing outside it).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBusyboxRoot, rmRoot } from '../helpers.ts';
import { bundle } from '../oci-cli.ts';

// Loaded as ES modules (not through mocha's require of this file): OciStore.create imports the
// spec compiler dynamically, and one copy of the library, and of its lifted defences, must serve.
const { OciStore } = await import('../../lib/container/oci-container.ts');
const { runCommand } = await import('../../lib/cli/oci/run.ts');
const { withLifted } = await import('../security/lifted.ts');

// Namespaced, needing no capability, and harmless anywhere: "1 0" (no group may ping) is the default.
const KEY = 'net.ipv4.ping_group_range';
const FILE = '/proc/sys/net/ipv4/ping_group_range';

describe('security: a linux.sysctl key of a namespace the container shares with the runtime', () => {
  let dir: string;
  let rootfs: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-oci-sysctl-'));
    rootfs = makeBusyboxRoot();
  });
  after(() => {
    if (dir) rmRoot(dir);
    if (rootfs) rmRoot(rootfs);
  });
  /** Runs `true` with the sysctl set and no network namespace of its own; what run gave. */
  const attempt = async (value: string): Promise<unknown> => {
    const b = bundle(dir, ['true'], (c) => {
      c.root.path = rootfs;
      c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== 'network');
      c.linux.sysctl = { [KEY]: value };
    });
    return runCommand(new OciStore(join(dir, 'root')), ['--bundle', b, `s${value.replace(' ', '-')}`], { file: null, format: 'text' }).catch((e: unknown) => e);
  };

  it('is refused, and the runtime\'s value stays', async () => {
    writeFileSync(FILE, '1 0');
    const outcome = await attempt('0 0') as { code?: string; message?: string };
    assert.equal(outcome.code, 'ERR_INVALID_SPEC');
    assert.match(outcome.message!, /"net.ipv4.ping_group_range" is refused: it is not allowed in the host's network namespace/);
    assert.equal(readFileSync(FILE, 'utf8'), '1\t0\n');
  });

  it('twin: with the key check lifted the container writes the runtime\'s value', async () => {
    writeFileSync(FILE, '1 0');
    assert.equal(await withLifted({ sysctlAnyKey: true }, () => attempt('0 0')), 0);
    assert.equal(readFileSync(FILE, 'utf8'), '0\t0\n');
  });
});
