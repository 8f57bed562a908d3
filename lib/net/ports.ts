import { createServer, type Server } from 'node:net';
import { createSocket, type Socket } from 'node:dgram';
import { CorralError } from '../sys/errors.ts';

/** A port to publish, checked: the host address and port (0: any free one) forwarded to the
 * container's port. */
export interface PortRequest {
  hostIp: string;
  host: number;
  container: number;
  protocol: 'tcp' | 'udp';
}

/** A published port as containers report it (host is the real port, never 0). */
export interface PublishedPort {
  hostIp: string;
  host: number;
  container: number;
  protocol: 'tcp' | 'udp';
}

/** A host port held by a bound socket for the container's life (docker-proxy's job without the
 * proxy: traffic is DNATed before it reaches the socket, which only keeps the port from being
 * taken by anyone else); unref'd, so it never keeps the process alive. */
export interface HeldPort extends PublishedPort {
  close(): void;
}

function inUse(p: PortRequest, cause: unknown): CorralError {
  const where = `${p.hostIp}:${p.host}/${p.protocol}`;
  const code = (cause as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    return new CorralError(`publish port ${where}: EADDRINUSE, the port is already in use`, { code: 'ERR_PORT_IN_USE', errno: 98, syscall: 'bind', path: where, step: `reserve host port ${where}`, cause });
  }
  return new CorralError(`publish port ${where}: ${code ?? String(cause)}`, { code: 'ERR_NETWORK_SETUP', syscall: 'bind', path: where, step: `reserve host port ${where}`, cause });
}

function holdTcp(p: PortRequest): Promise<HeldPort> {
  return new Promise((resolve, reject) => {
    const server: Server = createServer();
    server.once('error', (e) => reject(inUse(p, e)));
    server.listen({ host: p.hostIp, port: p.host, exclusive: true, backlog: 1 }, () => {
      server.unref();
      const port = (server.address() as { port: number }).port;
      resolve({ ...p, host: port, close: () => server.close() });
    });
  });
}

function holdUdp(p: PortRequest): Promise<HeldPort> {
  return new Promise((resolve, reject) => {
    const socket: Socket = createSocket('udp4');
    socket.once('error', (e) => {
      socket.close();
      reject(inUse(p, e));
    });
    socket.bind({ address: p.hostIp, port: p.host, exclusive: true }, () => {
      socket.unref();
      resolve({ ...p, host: socket.address().port, close: () => socket.close() });
    });
  });
}

/** Reserves every host port, or none: on a failure those already held are let go. */
export async function holdPorts(ports: readonly PortRequest[]): Promise<HeldPort[]> {
  const held: HeldPort[] = [];
  try {
    for (const p of ports) held.push(await (p.protocol === 'tcp' ? holdTcp(p) : holdUdp(p)));
  } catch (e) {
    for (const h of held) h.close();
    throw e;
  }
  return held;
}
