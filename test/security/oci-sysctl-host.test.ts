// A corral-oci config whose linux.sysctl names a key of a namespace the container shares with the
// runtime (net.* without a network namespace of its own): refused, so it cannot change the host's
// value. Run in a network namespace of the test's own (test/netns/oci-sysctl-host.spec.ts), where
// the twin's write lands. corral-oci is root only for now: the root pass runs it.
import { mochaInOwnNetns, rootless } from '../helpers.ts';

if (!rootless) describe('security: corral-oci linux.sysctl cannot reach the host', () => {
  it('a refused key leaves the runtime\'s value, and the twin without the check changes it (own netns)', () => {
    mochaInOwnNetns('test/netns/oci-sysctl-host.spec.ts');
  });
});
