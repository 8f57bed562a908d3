import assert from 'node:assert/strict';
import { familiarReference, normalizeReference, parseReference, registryHost } from '../../lib/image/reference.ts';

const D = `sha256:${'a'.repeat(64)}`;

describe('registry references (normalized as Docker does)', () => {
  const cases: [string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/library/busybox:1', 'docker.io/library/busybox:1'],
    ['team/app', 'docker.io/team/app:latest'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/team/app:1.2', 'localhost:5000/team/app:1.2'],
    ['127.0.0.1:5000/a/b/c', '127.0.0.1:5000/a/b/c:latest'],
    ['ghcr.io/owner/repo:v1_2-3', 'ghcr.io/owner/repo:v1_2-3'],
    ['Registry.Example/x', 'Registry.Example/x:latest'],
    ['[::1]:5000/app', '[::1]:5000/app:latest'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`],
    [`busybox:1.36@${D}`, `docker.io/library/busybox:1.36@${D}`],
    [`localhost:5000/app@${D}`, `localhost:5000/app@${D}`],
    ['a__b/c-d--e.f', 'docker.io/a__b/c-d--e.f:latest'],
  ];
  for (const [input, want] of cases) {
    it(`${input} → ${want}`, () => assert.equal(normalizeReference(input), want));
  }

  it('splits registry, repository, tag and digest', () => {
    assert.deepEqual(parseReference(`localhost:5000/team/app:1.2@${D}`), { registry: 'localhost:5000', repository: 'team/app', tag: '1.2', digest: D });
    assert.deepEqual(parseReference(`app@${D}`), { registry: 'docker.io', repository: 'library/app', digest: D });
  });

  const bad = ['', 'UPPER', 'busybox:', 'busybox:-x', ':tag', 'a//b', 'a/', '/a', 'a@sha256:abc', `a@md5:${'a'.repeat(32)}`, 'a:b:c', 'a..b', 'a_-b', `x:${'t'.repeat(129)}`, `${'a'.repeat(256)}`, 'host:port/app', 'a b'];
  for (const input of bad) {
    it(`refuses ${JSON.stringify(input)} with ERR_INVALID_REF`, () => assert.throws(() => parseReference(input), { code: 'ERR_INVALID_REF' }));
  }

  it('prints the familiar short form and finds the API host', () => {
    assert.equal(familiarReference(parseReference('busybox')), 'busybox:latest');
    assert.equal(familiarReference(parseReference('library/a/b:1')), 'library/a/b:1');
    assert.equal(familiarReference(parseReference('team/app')), 'team/app:latest');
    assert.equal(familiarReference(parseReference('localhost:5000/app')), 'localhost:5000/app:latest');
    assert.equal(registryHost('docker.io'), 'registry-1.docker.io');
    assert.equal(registryHost('localhost:5000'), 'localhost:5000');
  });
});
