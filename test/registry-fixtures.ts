// Registries for the tests, all on 127.0.0.1: Debian's docker-registry (distribution 2.8) started
// with a generated config (plain or TLS with a certificate openssl makes; htpasswd or token auth),
// a token server in the test (Docker Hub's flow, JWTs signed with node:crypto), and a proxy that
// breaks responses on purpose.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createSign, randomBytes, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A running registry: its host:port, its access log so far, and how to stop it. */
export interface TestRegistry {
  host: string;
  dir: string;
  /** docker-registry's pid (the benchmarks read its CPU time). */
  pid: number;
  /** The access log lines ("PUT /v2/… HTTP/1.1" 201 …) written so far. */
  requests(): string[];
  /** The TLS handshakes that failed so far (the registry's "http: TLS handshake error" lines). */
  handshakeErrors(): string[];
  stop(): Promise<void>;
}

/** skopeo's arguments with an auth file of its own (absent: no credentials) after the subcommand:
 * rootless skopeo otherwise reads /run/containers/UID/auth.json and fails with EACCES once a root
 * podman or skopeo on the host has made /run/containers root-only. */
export function skopeoArgs(args: string[]): string[] {
  return [args[0]!, '--authfile', join(tmpdir(), `corral-test-no-skopeo-auth-${process.pid}.json`), ...args.slice(1)];
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** A test CA and a certificate it signed for 127.0.0.1 (PEM files): `caDir` holds the CA as
 * ca.crt, as skopeo's --cert-dir wants it. */
export interface TestCertificates {
  ca: string;
  caDir: string;
  cert: string;
  key: string;
}

/** Makes a CA named `name` and a server certificate for 127.0.0.1 and localhost, in dir. */
export function testCertificates(dir: string, name: string): TestCertificates {
  const caDir = join(dir, `${name}-ca`);
  mkdirSync(caDir, { recursive: true });
  const ca = join(caDir, 'ca.crt');
  const caKey = join(dir, `${name}-ca.key`);
  const key = join(dir, `${name}-server.key`);
  const csr = join(dir, `${name}-server.csr`);
  const cert = join(dir, `${name}-server.crt`);
  const ext = join(dir, `${name}-server.ext`);
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', caKey, '-out', ca, '-days', '2', '-subj', `/CN=corral test CA ${name}`);
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=127.0.0.1');
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext);
  return { ca, caDir, cert, key };
}

/** Starts docker-registry in dir with the given auth section (YAML lines, indented by two), over
 * TLS with `tls`'s certificate when given. */
export async function startRegistry(dir: string, auth: string[] = [], tls?: TestCertificates): Promise<TestRegistry> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const config = join(dir, 'config.yml');
  writeFileSync(config, [
    'version: 0.1',
    'log:', '  level: info',
    'storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'data')}`, '  delete:', '    enabled: true',
    'http:', `  addr: 127.0.0.1:${port}`, `  secret: ${randomBytes(8).toString('hex')}`,
    ...(tls ? ['  tls:', `    certificate: ${tls.cert}`, `    key: ${tls.key}`] : []),
    ...(auth.length ? ['auth:', ...auth] : []),
  ].join('\n'));
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.on('error', (e) => (log += `cannot run docker-registry (Debian's docker-registry package): ${e.message}\n`));
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null || log.includes('cannot run docker-registry')) throw new Error(`docker-registry exited: ${log}`);
    if (log.includes('listening on')) break;
    if (i > 200) throw new Error(`docker-registry did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    host,
    dir,
    requests: () => log.split('\n').filter((l) => /^127\.0\.0\.1 - /.test(l)),
    handshakeErrors: () => log.split('\n').filter((l) => l.includes('TLS handshake error')),
    pid: child.pid!,
    stop: () => stopChild(child),
  };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((r) => {
    child.once('exit', () => r());
    child.kill('SIGTERM');
  });
}

/** An htpasswd file (bcrypt, as distribution requires) for one user; the YAML auth lines. */
export function htpasswdAuth(dir: string, user: string, password: string): string[] {
  const file = join(dir, 'htpasswd');
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, execFileSync('htpasswd', ['-Bbn', user, password], { encoding: 'utf8' }));
  return ['  htpasswd:', '    realm: corral-test', `    path: ${file}`];
}

/** A token server (Docker Hub's flow: 401 → GET realm?service&scope with basic auth → a JWT),
 * and the registry's auth lines that trust it. */
export interface TokenServer {
  auth: string[];
  /** Token requests served, with the scopes asked for. */
  issued: string[][];
  stop(): Promise<void>;
}

/** Starts a token server for user:password that grants every scope asked for; lifetimeSeconds per token. */
export async function startTokenServer(dir: string, user: string, password: string, lifetimeSeconds = 300): Promise<TokenServer> {
  mkdirSync(dir, { recursive: true });
  const keyFile = join(dir, 'token.key');
  const certFile = join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=corral-test-token'], { stdio: 'ignore' });
  const key = readFileSync(keyFile, 'utf8');
  const certDer = new X509Certificate(readFileSync(certFile)).raw.toString('base64');
  const issued: string[][] = [];
  const b64 = (v: object | Buffer): string => (Buffer.isBuffer(v) ? v : Buffer.from(JSON.stringify(v))).toString('base64url');
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}');
      return;
    }
    const scopes = url.searchParams.getAll('scope');
    issued.push(scopes);
    const access = scopes.map((s) => {
      const [type, ...rest] = s.split(':');
      const actions = rest.pop()!.split(',');
      return { type, name: rest.join(':'), actions };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer] };
    const claims = { iss: 'corral-test-issuer', sub: user, aud: url.searchParams.get('service'), exp: now + lifetimeSeconds, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const body = `${b64(header)}.${b64(claims)}`;
    const signature = createSign('SHA256').update(body).sign({ key, dsaEncoding: 'ieee-p1363' });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${body}.${b64(signature)}`, expires_in: lifetimeSeconds, issued_at: new Date(now * 1000).toISOString() }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    auth: ['  token:', `    realm: http://127.0.0.1:${port}/token`, '    service: corral-test-registry', '    issuer: corral-test-issuer', `    rootcertbundle: ${certFile}`],
    issued,
    stop: () => new Promise((r) => server.close(() => r())),
  };
}

/** What the proxy does to one request: pass it, answer with a status (and headers) instead, mangle
 * the response body ('corrupt' flips a byte, 'truncate' cuts the connection halfway), or 'swallow':
 * the registry gets the request, the client a 500. */
export type Fault = { status: number; headers?: Record<string, string>; body?: string } | 'corrupt' | 'truncate' | 'swallow' | undefined;

/** A proxy in front of a registry: `fault(req)` decides, per request, what goes wrong. */
export interface FaultProxy {
  host: string;
  /** Every request seen: "METHOD path" (and " range=…" when it asked for a range). */
  seen: string[];
  fault: (req: IncomingMessage) => Fault;
  stop(): Promise<void>;
}

/** Starts a proxy to `target` (host:port) that applies `proxy.fault` to each request. */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const [targetHost, targetPort] = target.split(':');
  const proxy: FaultProxy = { host: '', seen: [], fault: () => undefined, stop: async () => undefined };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    proxy.seen.push(`${req.method} ${req.url}${req.headers.range ? ` range=${req.headers.range}` : ''}`);
    const fault = proxy.fault(req);
    if (fault !== undefined && typeof fault === 'object') {
      req.resume();
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers }).end(fault.body ?? '{"errors":[{"code":"TOOMANYREQUESTS","message":"injected by the test proxy"}]}');
      return;
    }
    const upstream = request({ host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers }, (up) => {
      if (fault === 'swallow') {
        up.resume();
        up.on('end', () => res.writeHead(500, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNKNOWN","message":"swallowed by the test proxy"}]}'));
        return;
      }
      res.writeHead(up.statusCode!, up.headers);
      if (fault === undefined) {
        up.pipe(res);
        return;
      }
      let sent = 0;
      const length = Number(up.headers['content-length'] ?? 0);
      up.on('data', (chunk: Buffer) => {
        const half = Math.floor(length / 2);
        if (fault === 'corrupt') {
          const copy = Buffer.from(chunk);
          if (sent <= half && half < sent + copy.length) copy[half - sent] = copy[half - sent]! ^ 0xff;
          res.write(copy);
        } else if (sent + chunk.length <= half) {
          res.write(chunk);
        } else {
          res.write(chunk.subarray(0, half - sent));
          up.destroy();
          // close the connection in the middle of the body
          res.socket?.destroy();
        }
        sent += chunk.length;
      });
      up.on('end', () => res.end());
    });
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxy.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.stop = () => new Promise((r) => {
    server.closeAllConnections();
    server.close(() => r());
  });
  return proxy;
}
