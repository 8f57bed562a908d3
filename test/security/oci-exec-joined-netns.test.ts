// A process exec'd into a corral-oci container that joined a pod sandbox's network namespace by
// path must be in that namespace, not in the runtime's (the host's network). Run in a mocha and a
// network namespace of its own (test/netns/oci-exec-joined-netns.spec.ts). corral-oci is root
// only for now: the root pass runs it.
import { mochaInOwnNetns, rootless } from '../helpers.ts';

if (!rootless) describe('security: exec into a corral-oci container that joined a network namespace by path', () => {
  it('the process is in the sandbox\'s network namespace, and the twin without the join is in the runtime\'s (own netns)', () => {
    mochaInOwnNetns('test/netns/oci-exec-joined-netns.spec.ts');
  });
});
