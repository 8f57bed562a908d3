import { nativeLibrary } from './native.ts';
import { syscallError } from './errors.ts';

const netnsSocketFn = nativeLibrary.func('int32_t corral_netns_socket(int32_t nsfd, int32_t family, int32_t type, int32_t protocol, _Out_ int32_t *outNs, _Out_ int32_t *outSock)');

/** A socket made inside a network namespace (by a short-lived native thread: Node's own threads
 * never change namespace); nsfd null makes a new namespace, whose fd is returned too. */
export function netnsSocket(nsfd: number | null, family: number, type: number, protocol: number): { nsfd: number; sock: number } {
  const ns = [-1];
  const sock = [-1];
  const r = netnsSocketFn(nsfd ?? -1, family, type, protocol, ns, sock);
  if (r < 0) throw syscallError(nsfd === null ? 'unshare' : 'setns', -r, { step: nsfd === null ? 'make a network namespace' : 'open a socket in a network namespace' });
  return { nsfd: nsfd ?? ns[0]!, sock: sock[0]! };
}

/** netnsSocket(null, …) on a libuv worker thread: a new network namespace and a socket inside it,
 * made without blocking the event loop. */
export function newNetnsSocketAsync(family: number, type: number, protocol: number): Promise<{ nsfd: number; sock: number }> {
  const ns = [-1];
  const sock = [-1];
  return new Promise((resolve, reject) => {
    netnsSocketFn.async(-1, family, type, protocol, ns, sock, (err: unknown, r: number) => {
      if (err) reject(err);
      else if (r < 0) reject(syscallError('unshare', -r, { step: 'make a network namespace' }));
      else resolve({ nsfd: ns[0]!, sock: sock[0]! });
    });
  });
}
