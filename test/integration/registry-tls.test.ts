import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime, type RegistriesConfig } from '../../lib/index.ts';
import { busyboxLayout } from '../image-fixtures.ts';
import { eventually, removeWork, rootless } from '../helpers.ts';
import { freePort, skopeoArgs, startRegistry, testCertificates, type TestCertificates, type TestRegistry } from '../registry-fixtures.ts';

const skopeo = (...args: string[]): string => execFileSync('skopeo', skopeoArgs(args), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const cli = join(dirname(dirname(dirname(fileURLToPath(import.meta.url)))), 'dist/cli/main.js');
const FAST = { attempts: 3, baseDelayMs: 10, maxDelayMs: 1000 };

describe(`registry over TLS (${rootless ? 'rootless' : 'root'})`, function () {
  this.timeout(120_000);
  let work: string;
  let layout: string;
  let certs: TestCertificates;
  let otherCa: TestCertificates;
  let secure: TestRegistry;
  let plain: TestRegistry;
  let ref: string;
  let states = 0;
  const runtime = (registries?: RegistriesConfig): Runtime => new Runtime({ root: join(work, `state-${states++}`), cgroupParent: false, ...(registries ? { registries } : {}) });
  const skopeoDigest = (image: string): string => skopeo('inspect', '--cert-dir', certs.caDir, '--format', '{{.Digest}}', `docker://${image}`).trim();

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'corral-test-registry-tls-'));
    layout = busyboxLayout(work);
    certs = testCertificates(work, 'registry');
    otherCa = testCertificates(work, 'other');
    secure = await startRegistry(join(work, 'secure'), [], certs);
    plain = await startRegistry(join(work, 'plain'));
    ref = `${secure.host}/corral/base:1`;
    skopeo('copy', '--dest-cert-dir', certs.caDir, `oci:${layout}:base`, `docker://${ref}`);
  });
  after(async () => {
    await secure?.stop();
    await plain?.stop();
    await removeWork(work);
  });

  it("pulls and pushes verifying the certificate with the registry's CA bundle (registries.ca), as skopeo with --cert-dir reads back", async () => {
    const rt = runtime({ [secure.host]: { ca: certs.ca } });
    const image = await rt.images.pull(ref);
    assert.equal(image.manifestDigest, skopeoDigest(ref));
    const r = await rt.run({ image: ref });
    assert.equal(r.stdout.toString(), 'hi from image\n', r.stderr.toString());
    const dest = `${secure.host}/corral/pushed:1`;
    const pushed = await rt.images.push(ref, dest);
    assert.equal(pushed.manifestDigest, image.manifestDigest);
    assert.equal(skopeoDigest(dest), image.manifestDigest);
    skopeo('copy', '--src-cert-dir', certs.caDir, `docker://${dest}`, `oci:${join(work, 'copy')}:x`); // skopeo checks every digest
    assert.deepEqual(secure.handshakeErrors(), []);
  });

  it('refuses a certificate no given CA vouches for with ERR_REGISTRY_TLS, at once (no retry), storing nothing', async () => {
    const stored = runtime({ [secure.host]: { ca: certs.ca } });
    await stored.images.pull(ref);
    // Node's roots only (false: a loopback registry verified too), or another CA.
    for (const settings of [{ insecure: false }, { ca: otherCa.ca }]) {
      const registries = { [secure.host]: settings };
      const rt = runtime(registries);
      const refused = (e: Error & { code?: string }): boolean => {
        assert.equal(e.code, 'ERR_REGISTRY_TLS', e.message);
        assert.ok(e.message.includes(`${secure.host}/corral/`), e.message);
        assert.match(e.message, /TLS certificate is not trusted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
        assert.ok(e.message.includes(`registries['${secure.host}'].ca`), e.message);
        return true;
      };
      // The handshakes that failed (the registry logs each a little later): one per request, no retry.
      const handshakes = async (run: () => Promise<unknown>): Promise<number> => {
        const before = secure.handshakeErrors().length;
        await assert.rejects(run(), refused);
        assert.ok(await eventually(() => secure.handshakeErrors().length > before), 'the registry saw the handshake fail');
        await new Promise((r) => setTimeout(r, 300));
        return secure.handshakeErrors().length - before;
      };
      assert.equal(await handshakes(() => rt.images.pull(ref)), 1, 'the manifest request only');
      assert.deepEqual(rt.images.list(), []);
      const pushHandshakes = await handshakes(() => stored.images.push(ref, `${secure.host}/corral/refused:1`, { registries }));
      assert.ok(pushHandshakes <= 2, `${pushHandshakes} handshakes: at most one per blob checked at once`);
    }
    assert.throws(() => skopeo('inspect', '--cert-dir', certs.caDir, `docker://${secure.host}/corral/refused:1`), /manifest unknown|not found/i);
  });

  it("insecure: TLS without verification, else plain HTTP when the registry does not speak TLS (Docker's and registries.conf's insecure); loopback is insecure by default, false verifies", async () => {
    // Loopback without settings: the TLS registry unverified, the plain one over HTTP.
    const byDefault = runtime();
    assert.equal((await byDefault.images.pull(ref)).manifestDigest, skopeoDigest(ref));
    const onPlain = `${plain.host}/corral/plain:1`;
    await byDefault.images.push(ref, onPlain);
    assert.equal(skopeo('inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${onPlain}`).trim(), skopeoDigest(ref));
    // Named insecure: the same, with a CA bundle that would not verify.
    const named = runtime({ [secure.host]: { insecure: true, ca: otherCa.ca }, [plain.host]: { insecure: true } });
    await named.images.pull(ref);
    await named.images.pull(onPlain);
    // insecure: false on a registry that speaks plain HTTP.
    await assert.rejects(runtime({ [plain.host]: { insecure: false } }).images.pull(onPlain), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_REGISTRY_TLS', e.message);
      assert.match(e.message, new RegExp(`${plain.host}/corral/plain: the registry does not speak TLS \\(ERR_SSL_WRONG_VERSION_NUMBER\\); mark it insecure`));
      return true;
    });
  });

  it("corral pull and push --cert-dir verify with that directory's CA files (podman's --cert-dir); a user's own certs.d is read when not root", async () => {
    const root = join(work, 'state-cli');
    const corral = (args: string[], env: NodeJS.ProcessEnv = process.env) => spawnSync(process.execPath, [cli, ...args, '--root', root], { encoding: 'utf8', env });
    const pulled = corral(['pull', '--cert-dir', certs.caDir, ref]);
    assert.equal(pulled.status, 0, pulled.stderr);
    assert.equal(pulled.stdout, `${skopeoDigest(ref)} ${ref}\n`);
    const dest = `${secure.host}/corral/cli-pushed:1`;
    const pushed = corral(['push', '--cert-dir', certs.caDir, ref, dest]);
    assert.equal(pushed.status, 0, pushed.stderr);
    assert.equal(skopeoDigest(dest), skopeoDigest(ref));
    const refused = corral(['pull', '--cert-dir', otherCa.caDir, ref]);
    assert.equal(refused.status, 125);
    assert.match(refused.stderr, /TLS certificate is not trusted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    assert.match(corral(['pull', '--cert-dir', join(work, 'no-such-dir'), ref]).stderr, /cert dir .*no-such-dir/);
    // ~/.config/containers/certs.d/HOST (here under XDG_CONFIG_HOME) holding another CA: read when
    // not root, so the pull is refused; as root (podman reads /etc only) the loopback registry stays insecure.
    const config = join(work, 'xdg-config');
    mkdirSync(join(config, 'containers', 'certs.d', secure.host), { recursive: true });
    copyFileSync(otherCa.ca, join(config, 'containers', 'certs.d', secure.host, 'ca.crt'));
    const withCertsD = corral(['pull', ref], { ...process.env, XDG_CONFIG_HOME: config });
    if (rootless) {
      assert.equal(withCertsD.status, 125, withCertsD.stdout);
      assert.match(withCertsD.stderr, /TLS certificate is not trusted/);
      copyFileSync(certs.ca, join(config, 'containers', 'certs.d', secure.host, 'ca.crt'));
      const verified = corral(['pull', ref], { ...process.env, XDG_CONFIG_HOME: config });
      assert.equal(verified.status, 0, verified.stderr);
    } else {
      assert.equal(withCertsD.status, 0, withCertsD.stderr);
    }
  });

  it("an https:// mirror is verified with the mirror's own CA bundle; an unreadable bundle is refused by name", async () => {
    const down = `127.0.0.1:${await freePort()}`;
    skopeo('copy', '--dest-cert-dir', certs.caDir, `oci:${layout}:base`, `docker://${secure.host}/corral/mirrored:1`);
    const rt = runtime({ [down]: { mirrors: [`https://${secure.host}`] }, [secure.host]: { ca: certs.ca } });
    const image = await rt.images.pull(`${down}/corral/mirrored:1`, { retry: FAST });
    assert.equal(image.manifestDigest, skopeoDigest(`${secure.host}/corral/mirrored:1`));
    const missing = join(work, 'no-such-ca.pem');
    await assert.rejects(runtime({ [secure.host]: { ca: missing } }).images.pull(ref), (e: Error & { code?: string; path?: string }) => e.code === 'ERR_INVALID_ARG_VALUE' && e.path === missing && e.message.includes(`registries.${secure.host}.ca`));
  });
});
