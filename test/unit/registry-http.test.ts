import assert from 'node:assert/strict';
import { parseChallenges } from '../../lib/registry/auth-challenge.ts';
import { parsePlatform } from '../../lib/registry/platform-spec.ts';
import { DEFAULT_RETRY, retryableError, retryableStatus, retryDelay } from '../../lib/registry/retry.ts';
import { tlsFailure, transports } from '../../lib/registry/transport.ts';

describe('registry HTTP pieces', () => {
  it('parses WWW-Authenticate challenges (Docker Hub, distribution, several at once, escapes)', () => {
    assert.deepEqual(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), [
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
    ]);
    assert.deepEqual(parseChallenges('Basic realm="corral \\"test\\"", Bearer realm=http://x/t'), [
      { scheme: 'basic', params: { realm: 'corral "test"' } },
      { scheme: 'bearer', params: { realm: 'http://x/t' } },
    ]);
    assert.deepEqual(parseChallenges(null), []);
  });

  it('retries 5xx, 429, 408 and dropped connections, nothing else', () => {
    for (const s of [500, 502, 503, 429, 408]) assert.equal(retryableStatus(s), true, String(s));
    for (const s of [400, 401, 403, 404, 416]) assert.equal(retryableStatus(s), false, String(s));
    assert.equal(retryableError(new TypeError('fetch failed')), true);
    assert.equal(retryableError(Object.assign(new Error('x'), { code: 'ECONNRESET' })), true);
    assert.equal(retryableError(Object.assign(new Error('aborted'), { name: 'AbortError' })), false);
    assert.equal(retryableError(new Error('digest mismatch')), false);
  });

  it('waits as Retry-After says (seconds or a date), capped, else backs off exponentially', () => {
    assert.equal(retryDelay(1, DEFAULT_RETRY, '2'), 2000);
    assert.equal(retryDelay(1, DEFAULT_RETRY, '3600'), DEFAULT_RETRY.maxDelayMs);
    const date = retryDelay(1, DEFAULT_RETRY, new Date(Date.now() + 5000).toUTCString());
    assert.ok(date > 3000 && date <= 5000, String(date));
    for (const attempt of [1, 2, 3]) {
      const d = retryDelay(attempt, DEFAULT_RETRY);
      const full = DEFAULT_RETRY.baseDelayMs * 2 ** (attempt - 1);
      assert.ok(d >= full / 2 && d <= full, `${attempt}: ${d}`);
    }
  });

  it("picks transports as Docker does: HTTPS verified; insecure (loopback by default) unverified, then plain HTTP; a mirror's scheme as written", () => {
    const kinds = (settings: Parameters<typeof transports>[0]): string[] => transports(settings).map((t) => `${t.scheme}${t.scheme === 'https' ? (t.verify ? '+verify' : '-verify') : ''}`);
    assert.deepEqual(kinds({ registry: 'ghcr.io' }), ['https+verify']);
    assert.deepEqual(kinds({ registry: 'dev:5000', insecure: true }), ['https-verify', 'http']);
    for (const loopback of ['localhost:5000', '127.0.0.1:5000', '[::1]:5000', 'localhost']) assert.deepEqual(kinds({ registry: loopback }), ['https-verify', 'http'], loopback);
    assert.deepEqual(kinds({ registry: 'localhost:5000', insecure: false }), ['https+verify']);
    assert.deepEqual(kinds({ registry: 'localhost:5000', ca: 'PEM' }), ['https+verify']);
    assert.deepEqual(kinds({ registry: 'mirror:5000', scheme: 'http' }), ['http']);
    assert.deepEqual(kinds({ registry: 'mirror:5000', scheme: 'https', insecure: true }), ['https-verify']);
    assert.equal(transports({ registry: 'ghcr.io' })[0]!.dispatcher, undefined, "Node's default");
    assert.equal(transports({ registry: 'a:1', ca: 'PEM' })[0]!.dispatcher, transports({ registry: 'b:2', ca: 'PEM' })[0]!.dispatcher, 'one dispatcher per setting');
  });

  it('tells an untrusted certificate and a server without TLS from other failed fetches', () => {
    const failed = (code: string): TypeError => Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error(`${code} text`), { code }) });
    for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID']) assert.equal(tlsFailure(failed(code))?.kind, 'untrusted', code);
    assert.deepEqual(tlsFailure(failed('ERR_SSL_WRONG_VERSION_NUMBER')), { kind: 'not-tls', code: 'ERR_SSL_WRONG_VERSION_NUMBER', message: 'ERR_SSL_WRONG_VERSION_NUMBER text' });
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET']) assert.equal(tlsFailure(failed(code)), undefined, code);
    assert.equal(tlsFailure(new Error('x')), undefined);
  });

  it('parses platforms as os/arch[/variant]', () => {
    assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
    assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
    for (const bad of ['linux', 'linux/', 'a/b/c/d', 'linux/arm/']) assert.throws(() => parsePlatform(bad), { code: 'ERR_INVALID_ARG_VALUE' });
  });
});
