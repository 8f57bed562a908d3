// "The internet" for the network tests: a network namespace the test made, joined to the test's own
// namespace by a veth (198.18.0.1 here, 198.18.0.2 there, addresses the test assigns), with a TCP
// server there that answers with the source address it sees. Nothing leaves the machine.
import { spawn, type ChildProcess } from 'node:child_process';
import { close } from '../../lib/sys/libc.ts';
import { netnsSocket } from '../../lib/sys/netns.ts';
import { RtNetlink } from '../../lib/net/rtnetlink.ts';

export const INTERNET_GATEWAY = '198.18.0.1';
export const INTERNET_SERVER = '198.18.0.2';
export const INTERNET_PORT = 8080;

/** A namespace with a server; stop() kills it and closes the namespace. */
export interface FakeInternet {
  /** Runs a command inside the fake internet's namespace (nsenter), resolving with its stdout. */
  exec(command: string[]): Promise<{ code: number | null; stdout: string }>;
  stop(): void;
}

/** Makes the fake internet, its veth and its server. */
export async function startInternet(): Promise<FakeInternet> {
  const { nsfd, sock } = netnsSocket(null, RtNetlink.SOCKET.family, RtNetlink.SOCKET.type, RtNetlink.SOCKET.protocol);
  const inner = new RtNetlink(sock);
  const host = new RtNetlink();
  try {
    inner.setUp(1, 'lo');
    host.addVeth('tinet0', null, 'eth0', nsfd);
    const index = host.linkIndex('tinet0')!;
    host.addAddress(index, 'tinet0', INTERNET_GATEWAY, 24);
    const eth0 = inner.linkIndex('eth0')!;
    inner.addAddress(eth0, 'eth0', INTERNET_SERVER, 24);
    inner.setUp(eth0, 'eth0');
  } finally {
    inner.close();
    host.close();
  }
  const netPath = `--net=/proc/${process.pid}/fd/${nsfd}`;
  const script = `require('net').createServer((s) => s.end(s.remoteAddress + '\\n')).listen(${INTERNET_PORT}, '${INTERNET_SERVER}', () => console.log('ready'))`;
  const server: ChildProcess = spawn('nsenter', [netPath, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    server.stdout!.once('data', () => resolve());
    server.once('exit', (code) => reject(new Error(`the fake internet's server exited with ${code}`)));
  });
  return {
    exec: (command) => new Promise((resolve) => {
      const child = spawn('nsenter', [netPath, ...command], { stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      child.stdout!.on('data', (d) => { stdout += d; });
      child.on('exit', (code) => resolve({ code, stdout }));
    }),
    stop() {
      server.kill('SIGKILL');
      close(nsfd);
    },
  };
}
