import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CorralError, fromNodeError } from '../sys/errors.ts';
import { endProcess } from '../sys/end-process.ts';
import { close, pidfdOpen } from '../sys/libc.ts';
import { holdPorts, type PortRequest, type PublishedPort } from './ports.ts';


/** pasta (Debian's passt) serving one container's network namespace. */
export interface PastaProcess {
  ports: PublishedPort[];
  /** Ends pasta: SIGTERM at once, SIGKILL after a grace period, in the background (pasta takes
   * tens of ms to exit: run() does not wait for it). pasta 2023-03 started for a pid never ends by
   * itself (it holds the namespace it serves), so this is what ends it. */
  stop(): void;
}

/** The host as a container behind pasta reaches it (spec.extraHosts 'host-gateway'): the host's
 * IPv4 default gateway, which pasta copies into the container (--config-net) and maps to the host
 * (its default, --no-map-gw turns it off). Read from /proc/net/route. */
export function pastaHostGateway(routes = '/proc/net/route'): string {
  let text: string;
  try {
    text = readFileSync(routes, 'utf8');
  } catch (e) {
    throw fromNodeError(e, 'read the host routes for host-gateway', routes);
  }
  // Iface Destination Gateway Flags ... Mask, hex in the host's (little-endian) byte order.
  const RTF_GATEWAY = 0x2;
  const route = text.split('\n').slice(1).map((l) => l.trim().split(/\s+/)).find((f) => f[1] === '00000000' && f[7] === '00000000' && (parseInt(f[3] ?? '0', 16) & RTF_GATEWAY) !== 0);
  if (!route) throw new CorralError(`host-gateway through pasta: the host has no IPv4 default route (${routes})`, { code: 'ERR_NETWORK_UNAVAILABLE', path: routes });
  const n = parseInt(route[2]!, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
}

/** The host ports pasta is to publish: host port 0 becomes a free port, a port in use fails with
 * ERR_PORT_IN_USE before pasta starts (held to check and choose them, let go just before pasta
 * binds them itself). */
export async function pastaPorts(requested: readonly PortRequest[]): Promise<PublishedPort[]> {
  const held = await holdPorts(requested);
  for (const p of held) p.close();
  return held.map(({ hostIp, host, container, protocol }) => ({ hostIp, host, container, protocol }));
}

/** pasta's command line, the target pid to append: addresses and routes copied from the host
 * (--config-net), outbound through pasta's sockets, the ports published on the host keeping their
 * source address; it writes its pid to pidFile once the namespace is configured. */
export function pastaCommand(ports: readonly PublishedPort[], pidFile: string): string[] {
  const spec = (protocol: 'tcp' | 'udp'): string[] => {
    const list = ports.filter((p) => p.protocol === protocol).map((p) => `${p.hostIp === '0.0.0.0' ? '' : `${p.hostIp}/`}${p.host}:${p.container}`);
    return list.length ? [protocol === 'tcp' ? '-t' : '-u', list.join(',')] : [protocol === 'tcp' ? '-t' : '-u', 'none'];
  };
  return ['pasta', '--config-net', '-4', '--quiet', '-T', 'none', '-U', 'none', ...spec('tcp'), ...spec('udp'), '-P', pidFile];
}

/** Starts pasta for the network namespace of pid (joining its user namespace), publishing the
 * requested ports (pastaPorts). pidDir holds pasta's pid file. */
export async function startPasta(pid: number, requested: readonly PortRequest[], pidDir: string, id: string): Promise<PastaProcess> {
  const ports = await pastaPorts(requested);
  const pidFile = join(pidDir, `pasta-${id}.pid`);
  const [command, ...args] = [...pastaCommand(ports, pidFile), String(pid)];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(command!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let text = '';
    child.stderr!.on('data', (d) => { text += d; });
    child.once('error', (e) => reject((e as NodeJS.ErrnoException).code === 'ENOENT'
      ? new CorralError('rootless networking needs pasta: install the passt package', { code: 'ERR_NETWORK_UNAVAILABLE', path: 'pasta', cause: e })
      : e));
    // Without --foreground, pasta returns once the namespace is configured and it runs in the background.
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new CorralError(`pasta exited with ${code}: ${text.trim()}`, { code: 'ERR_NETWORK_SETUP', step: 'start pasta for the container network', path: 'pasta' }))));
  });
  // A pidfd, taken while pasta is known to run (its command line names our pid file), so stop() can never signal a
  // process that reused its pid.
  let pidfd: number;
  try {
    const pastaPid = Number(readFileSync(pidFile, 'utf8').trim());
    pidfd = pidfdOpen(pastaPid);
    if (!readFileSync(`/proc/${pastaPid}/cmdline`, 'utf8').split('\0').includes(pidFile)) {
      close(pidfd);
      throw new Error(`pid ${pastaPid} is not pasta`);
    }
  } catch (e) {
    throw new CorralError(`pasta started but cannot be followed: ${(e as Error).message}`, { code: 'ERR_NETWORK_SETUP', path: pidFile, cause: e });
  } finally {
    rmSync(pidFile, { force: true });
  }
  return {
    ports,
    stop() {
      endProcess(pidfd).catch((e: unknown) => process.emitWarning(`stopping pasta (${pidFile}): ${(e as Error).message}`, { code: (e as CorralError).code ?? 'ERR_NETWORK_SETUP' }));
    },
  };
}
