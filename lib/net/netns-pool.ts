import createDebug from 'debug';
import { close } from '../sys/libc.ts';
import { newNetnsSocketAsync } from '../sys/netns.ts';
import { RtNetlink } from './rtnetlink.ts';

const debug = createDebug('corral:net');

/** How many never-used namespaces are kept ready. */
const POOL_SIZE = 4;

let shared: NetnsPool | undefined;

/** The pool every runtime of this process shares (the namespaces are alike for all of them), so
 * the fds held ready stay POOL_SIZE however many runtimes a process makes. */
export function processNetnsPool(): NetnsPool {
  shared ??= new NetnsPool();
  return shared;
}

/** Fresh network namespaces with lo up, made ahead of demand on a worker thread, so a container
 * with `network: 'none'` joins one instead of making its own on the start path (issue 11), and a
 * bridge attachment configures one instead of making it (issue 17). A
 * never-used namespace is as isolated as a new one; each is handed out once. Root only: an
 * unprivileged process cannot make a network namespace outside a user namespace. */
export class NetnsPool {
  readonly #ready: number[] = [];
  #filling = 0;
  #broken = false;

  /** A ready namespace's fd (the caller owns it), or null when none is ready (the container then
   * makes its own); starts refilling either way. */
  take(): number | null {
    const fd = this.#ready.pop() ?? null;
    this.#fill();
    return fd;
  }

  #fill(): void {
    while (!this.#broken && this.#ready.length + this.#filling < POOL_SIZE) {
      this.#filling++;
      this.#prepare().then(
        (fd) => this.#ready.push(fd),
        (e: unknown) => {
          // Not permitted here (e.g. a seccomp policy refusing unshare): containers make their own.
          this.#broken = true;
          debug('network namespaces cannot be prepared ahead: %o', e);
        },
      ).finally(() => this.#filling--);
    }
  }

  async #prepare(): Promise<number> {
    const { nsfd, sock } = await newNetnsSocketAsync(RtNetlink.SOCKET.family, RtNetlink.SOCKET.type, RtNetlink.SOCKET.protocol);
    const link = new RtNetlink(sock);
    try {
      link.setUp(1, 'lo');
      return nsfd;
    } catch (e) {
      close(nsfd);
      throw e;
    } finally {
      link.close();
    }
  }
}
