import { text } from 'node:stream/consumers';
import { parseArgs } from 'node:util';
import { Runtime } from '../runtime.ts';
import type { PullProgress } from '../registry/pull.ts';
import type { PushProgress } from '../registry/push.ts';
import { usageError } from './parse.ts';
import { normalizeReference } from '../image/reference.ts';

/** Help for `corral pull|push|login|logout`. */
export const REGISTRY_USAGE = `usage: corral pull REF [--platform OS/ARCH[/VARIANT]] [--insecure] [--cert-dir DIR] [--root DIR]
       corral push REF [DESTREF] [--insecure] [--cert-dir DIR] [--root DIR]
       corral login REGISTRY -u USER (--password-stdin | -p PASSWORD)
       corral logout REGISTRY

--insecure: TLS without verification, then plain HTTP (loopback registries are insecure by default).
--cert-dir: the CA files (*.crt) that verify the registry; by default those of its certs.d
directory (~/.config/containers/certs.d/HOST when not root, /etc/containers/certs.d/HOST,
/etc/docker/certs.d/HOST).
Credentials come from Docker's config.json ($DOCKER_CONFIG or ~/.docker) and its credential helpers.`;

/** Progress on stderr: a bar on a terminal, a line per 10% otherwise. */
function progress(verb: string): (p: PullProgress | PushProgress) => void {
  let lastTenth = -1;
  const start = Date.now();
  return (p) => {
    const mb = (n: number): string => (n / 1e6).toFixed(1);
    const rate = mb((p.bytes / Math.max(Date.now() - start, 1)) * 1000);
    const line = `${verb} ${mb(p.bytes)}/${mb(p.totalBytes)} MB (${rate} MB/s)${'layersDone' in p ? `, ${p.layersDone}/${p.layersTotal} layers ${p.phase === 'unpack' ? 'unpacked' : 'stored'}` : ''}`;
    if (process.stderr.isTTY) {
      const width = 24;
      const done = p.totalBytes ? Math.round((width * p.bytes) / p.totalBytes) : width;
      process.stderr.write(`\r[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${line}${p.phase === 'done' ? '\n' : ''}`);
      return;
    }
    const tenth = p.totalBytes ? Math.floor((10 * p.bytes) / p.totalBytes) : 10;
    if (tenth !== lastTenth || p.phase === 'done') process.stderr.write(`${line}\n`);
    lastTenth = tenth;
  };
}

/** `corral pull`, `corral push`, `corral login`, `corral logout`. */
export async function registryCommand(command: 'pull' | 'push' | 'login' | 'logout', args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      root: { type: 'string' },
      platform: { type: 'string' },
      insecure: { type: 'boolean' },
      'cert-dir': { type: 'string' },
      username: { type: 'string', short: 'u' },
      password: { type: 'string', short: 'p' },
      'password-stdin': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(REGISTRY_USAGE);
    return 0;
  }
  const [a, b] = positionals;
  if (!a) throw usageError(`corral ${command} needs a ${command === 'login' || command === 'logout' ? 'REGISTRY' : 'REF'}`);
  const images = new Runtime(values.root === undefined ? {} : { root: values.root }).images;
  const tls = { ...(values.insecure ? { insecure: true } : {}), ...(values['cert-dir'] === undefined ? {} : { certDir: values['cert-dir'] }) };
  switch (command) {
    case 'pull': {
      const image = await images.pull(a, { ...tls, ...(values.platform ? { platform: values.platform } : {}), onProgress: progress('pull') });
      // The reference pulled, as Docker prints it: the image may have other tags in this store.
      console.log(`${image.manifestDigest} ${normalizeReference(a)}`);
      return 0;
    }
    case 'push': {
      const result = await images.push(a, b, { ...tls, onProgress: progress('push') });
      console.log(`${result.manifestDigest} ${result.ref}`);
      return 0;
    }
    case 'login': {
      if (!values.username) throw usageError('corral login needs -u USER');
      const password = values['password-stdin'] ? (await text(process.stdin)).replace(/\r?\n$/, '') : values.password;
      if (!password) throw usageError('corral login needs --password-stdin or -p PASSWORD');
      await images.login(a, { username: values.username, password });
      console.log('Login Succeeded');
      return 0;
    }
    case 'logout':
      console.log((await images.logout(a)) ? `Removed login credentials for ${a}` : `Not logged in to ${a}`);
      return 0;
  }
}
