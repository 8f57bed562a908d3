import assert from 'node:assert/strict';
import { parseChallenges } from '../../lib/registry/auth-challenge.ts';
import { parsePlatform } from '../../lib/registry/platform-spec.ts';
import { DEFAULT_RETRY, retryableError, retryableStatus, retryDelay } from '../../lib/registry/retry.ts';

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

  it('parses platforms as os/arch[/variant]', () => {
    assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
    assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
    for (const bad of ['linux', 'linux/', 'a/b/c/d', 'linux/arm/']) assert.throws(() => parsePlatform(bad), { code: 'ERR_INVALID_ARG_VALUE' });
  });
});
