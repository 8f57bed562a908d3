import type { NetworkStore } from '../net/network-store.ts';
import type { NetnsPool } from '../net/netns-pool.ts';
import { setsDns } from '../net/resolv-conf.ts';
import { close } from '../sys/libc.ts';
import { op, type PlanOp } from '../spawn/ops.ts';
import { CLONE } from '../sys/constants.ts';
import type { HostResource, HostState } from './host-resources.ts';
import type { ResolvedSpec } from './spec.ts';

/** A bridge-network attachment: a network namespace prepared on the host with its veth, address,
 * route and published ports (the container joins it with setns before exec), and the network's
 * hosts file (its own with spec.extraHosts) and resolv.conf (unless the spec sets DNS: then the
 * container's own, etc-files.ts) bind-mounted read-only as /etc/hosts and /etc/resolv.conf. A
 * detached container's endpoint belongs to its supervisor's tag; its namespace to the supervisor
 * once it is launched (it joins it again at each restart, and it goes when the supervisor does),
 * and any process undoes the endpoint after that from the saved address. */
export function networkResource(networks: NetworkStore): HostResource {
  const restore = (spec: ResolvedSpec, host: HostState): (() => void) | null => {
    const ip = host.network?.ip;
    if (!spec.attach || !ip || !host.owner) return null;
    const endpoint = { container: spec.id, ip, owner: host.owner };
    const network = spec.attach.network;
    return () => networks.detach(network, endpoint);
  };
  return {
    name: 'network',
    async acquire(spec, host) {
      if (!spec.attach) return null;
      const owner = host.owner ?? undefined;
      const attachment = await networks.attach(spec.attach.network, { container: spec.id, names: spec.attach.names, ip: spec.attach.ip, extraHosts: spec.extraHosts, ports: spec.ports, ...(owner ? { owner } : {}) });
      host.network = { nsfd: attachment.nsfd, ip: attachment.ip };
      host.ports = attachment.ports;
      const bind = (source: string, target: string) => ({ type: 'bind', source, target, readonly: true, recursive: false, propagation: 'rprivate', sourceIsDir: false }) as const;
      host.mounts = [...host.mounts, bind(attachment.hostsFile, '/etc/hosts'), ...(setsDns(spec.dns) ? [] : [bind(attachment.resolvConf, '/etc/resolv.conf')])];
      const detach = restore(spec, host);
      if (!detach) return () => attachment.release();
      host.untilLaunched.push(() => attachment.handOver());
      return () => {
        try {
          detach();
        } finally {
          attachment.handOver();
        }
      };
    },
    restore,
  };
}

/** For `network: 'none'` as root: a fresh namespace with lo up from the pool, made ahead of demand
 * (none ready: the container makes its own with CLONE_NEWNET, as before). */
export function preparedNetnsResource(pool: NetnsPool | null): HostResource {
  return {
    name: 'prepared network namespace',
    acquire(spec, host) {
      if (!pool || spec.network !== 'none' || !spec.namespaces.net || spec.namespaces.user || host.network) return null;
      // A detached container is cloned by its supervisor, which does not hold our fds.
      if (host.owner) return null;
      const nsfd = pool.take();
      if (nsfd === null) return null;
      host.network = { nsfd, ip: null };
      return () => close(nsfd);
    },
  };
}

/** The first setup step of a container on a bridge network: join its prepared namespace (cloned
 * without CLONE_NEWNET, so this works on the vfork fast path as well as for create()). */
export function joinNetworkOp(nsfd: number): PlanOp {
  return op.setns({ step: 'join the prepared network namespace', fd: nsfd, nstype: CLONE.NEWNET });
}
