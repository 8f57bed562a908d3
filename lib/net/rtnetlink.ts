import { close } from '../sys/libc.ts';
import { recv, send, socket } from '../sys/sockets.ts';
import { syscallError } from '../sys/errors.ts';

const AF_NETLINK = 16;
const AF_INET = 2;
const SOCK_RAW = 3;
const NETLINK_ROUTE = 0;
const NLMSG_ERROR = 2;
const RTM = { NEWLINK: 16, DELLINK: 17, GETLINK: 18, NEWADDR: 20, NEWROUTE: 24 } as const;
const NLM_F = { REQUEST: 0x1, ACK: 0x4, EXCL: 0x200, CREATE: 0x400 } as const;
const IFLA = { IFNAME: 3, MASTER: 10, LINKINFO: 18, NET_NS_FD: 28 } as const;
const IFLA_INFO = { KIND: 1, DATA: 2 } as const;
const VETH_INFO_PEER = 1;
const IFA = { ADDRESS: 1, LOCAL: 2 } as const;
const RTA_GATEWAY = 5;
const IFF_UP = 1;

/** An rtnetlink attribute: type and payload (a nested attribute's payload is more attributes). */
type Attr = [type: number, payload: Buffer];

function attrs(list: Attr[]): Buffer {
  return Buffer.concat(list.map(([type, payload]) => {
    const len = 4 + payload.length;
    const out = Buffer.alloc((len + 3) & ~3);
    out.writeUInt16LE(len, 0);
    out.writeUInt16LE(type, 2);
    payload.copy(out, 4);
    return out;
  }));
}

function cstr(text: string): Buffer {
  return Buffer.from(`${text}\0`);
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0, 0);
  return b;
}

function ipv4(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

/** struct ifinfomsg. */
function ifinfo(index = 0, flags = 0, change = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

/** An RTM_NEWADDR request for an IPv4 address on a link. */
function addressRequest(index: number, name: string, address: string, prefix: number): { type: number; flags: number; body: Buffer; step: string } {
  const msg = Buffer.from([AF_INET, prefix, 0, 0, 0, 0, 0, 0]);
  msg.writeUInt32LE(index, 4);
  return { type: RTM.NEWADDR, flags: NLM_F.CREATE | NLM_F.EXCL, body: Buffer.concat([msg, attrs([[IFA.LOCAL, ipv4(address)], [IFA.ADDRESS, ipv4(address)]])]), step: `add address ${address}/${prefix} to ${name}` };
}

function errnoCode(e: unknown): string | undefined {
  return (e as { code?: string }).code;
}

/** An rtnetlink socket (of this process's network namespace, or one made inside another with
 * lib/sys/netns.ts) speaking the few requests corral needs: links, addresses, routes. */
export class RtNetlink {
  /** The numbers of a NETLINK_ROUTE socket, for opening one inside another namespace. */
  static readonly SOCKET = { family: AF_NETLINK, type: SOCK_RAW, protocol: NETLINK_ROUTE } as const;
  readonly #fd: number;
  #seq = 0;

  /** Takes over an open NETLINK_ROUTE socket (close() closes it), or opens one here. */
  constructor(fd?: number) {
    this.#fd = fd ?? socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  }

  /** Sends one request and waits for its answer: the reply messages' bodies, or an errno error. */
  #request(type: number, flags: number, body: Buffer, step: string): Buffer[] {
    return this.#batch([{ type, flags, body, step }]);
  }

  /** Sends requests in one write (the kernel runs them in order) and waits for all their answers:
   * one round trip instead of one per request. Throws the first request's error, if any (the later
   * ones are still answered, and read, so the socket stays in step). Returns the replies' bodies. */
  #batch(list: readonly { type: number; flags: number; body: Buffer; step: string }[]): Buffer[] {
    const first = this.#seq + 1;
    const messages = list.map(({ type, flags, body }) => {
      const header = Buffer.alloc(16);
      header.writeUInt32LE(16 + body.length, 0);
      header.writeUInt16LE(type, 4);
      header.writeUInt16LE(NLM_F.REQUEST | NLM_F.ACK | flags, 6);
      header.writeUInt32LE(++this.#seq, 8);
      return Buffer.concat([header, body, Buffer.alloc(((body.length + 3) & ~3) - body.length)]);
    });
    send(this.#fd, Buffer.concat(messages));
    const replies: Buffer[] = [];
    let failure: Error | undefined;
    let pending = list.length;
    while (pending > 0) {
      const data = recv(this.#fd, 65536);
      for (let off = 0; off + 16 <= data.length;) {
        const len = data.readUInt32LE(off);
        if (len < 16) break;
        const seq = data.readUInt32LE(off + 8);
        if (seq >= first && seq <= this.#seq) {
          if (data.readUInt16LE(off + 4) === NLMSG_ERROR) {
            const error = -data.readInt32LE(off + 16);
            if (error !== 0) failure ??= syscallError('rtnetlink', error, { step: list[seq - first]!.step });
            pending--;
          } else {
            replies.push(data.subarray(off + 16, off + len));
          }
        }
        off += (len + 3) & ~3;
      }
    }
    if (failure) throw failure;
    return replies;
  }

  /** The index of a link by name; null when there is none. */
  linkIndex(name: string): number | null {
    try {
      const [reply] = this.#request(RTM.GETLINK, 0, Buffer.concat([ifinfo(), attrs([[IFLA.IFNAME, cstr(name)]])]), `look up link ${name}`);
      return reply ? reply.readInt32LE(4) : null;
    } catch (e) {
      if (errnoCode(e) === 'ENODEV') return null;
      throw e;
    }
  }

  /** Creates a bridge (EEXIST if the name is taken). */
  addBridge(name: string): void {
    const info = attrs([[IFLA_INFO.KIND, cstr('bridge')]]);
    this.#request(RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL, Buffer.concat([ifinfo(), attrs([[IFLA.IFNAME, cstr(name)], [IFLA.LINKINFO, info]])]), `create bridge ${name}`);
  }

  /** Creates a veth pair in one request: hostName here, up (the kernel applies a new link's flags
   * once the pair is made: no request to bring it up) and enslaved to the bridge masterIndex (when
   * not null), and its peer named peerName straight inside the network namespace peerNsFd
   * (netavark's way; the peer cannot come up in the same request, ENOTCONN: it is configured before
   * it is paired). */
  addVeth(hostName: string, masterIndex: number | null, peerName: string, peerNsFd: number): void {
    const peer = Buffer.concat([ifinfo(), attrs([[IFLA.IFNAME, cstr(peerName)], [IFLA.NET_NS_FD, u32(peerNsFd)]])]);
    const info = attrs([[IFLA_INFO.KIND, cstr('veth')], [IFLA_INFO.DATA, attrs([[VETH_INFO_PEER, peer]])]]);
    this.#request(RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL,
      Buffer.concat([ifinfo(0, IFF_UP, IFF_UP), attrs([[IFLA.IFNAME, cstr(hostName)], ...(masterIndex === null ? [] : [[IFLA.MASTER, u32(masterIndex)] as Attr]), [IFLA.LINKINFO, info]])]),
      `create veth ${hostName} with peer ${peerName} in the container's network namespace`);
  }

  /** Brings a link up. */
  setUp(index: number, name: string): void {
    this.#request(RTM.NEWLINK, 0, ifinfo(index, IFF_UP, IFF_UP), `bring up ${name}`);
  }

  /** Deletes a link by name (a veth takes its peer with it); false when there was none. */
  deleteLink(name: string): boolean {
    try {
      this.#request(RTM.DELLINK, 0, Buffer.concat([ifinfo(), attrs([[IFLA.IFNAME, cstr(name)]])]), `delete link ${name}`);
      return true;
    } catch (e) {
      if (errnoCode(e) === 'ENODEV') return false;
      throw e;
    }
  }

  /** Adds an IPv4 address with its prefix length to a link; an existing one is fine when
   * tolerateExisting. */
  addAddress(index: number, name: string, address: string, prefix: number, tolerateExisting = false): void {
    try {
      this.#batch([addressRequest(index, name, address, prefix)]);
    } catch (e) {
      if (!(tolerateExisting && errnoCode(e) === 'EEXIST')) throw e;
    }
  }

  /** Brings a link up, adds an IPv4 address to it and the default route via gateway, in one round
   * trip. */
  configureLink(index: number, name: string, address: string, prefix: number, gateway: string): void {
    // struct rtmsg: family, dst_len, src_len, tos, table main, protocol boot, scope universe, type unicast; flags.
    const route = Buffer.from([AF_INET, 0, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0]);
    this.#batch([
      { type: RTM.NEWLINK, flags: 0, body: ifinfo(index, IFF_UP, IFF_UP), step: `bring up ${name}` },
      addressRequest(index, name, address, prefix),
      { type: RTM.NEWROUTE, flags: NLM_F.CREATE | NLM_F.EXCL, body: Buffer.concat([route, attrs([[RTA_GATEWAY, ipv4(gateway)]])]), step: `add default route via ${gateway}` },
    ]);
  }

  /** Closes the socket. */
  close(): void {
    close(this.#fd);
  }
}
