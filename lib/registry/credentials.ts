/** Registry credentials kept as Docker keeps them: `config.json` (`$DOCKER_CONFIG` or `~/.docker`),
 * its `auths`, and `credHelpers` / `credsStore` through the `docker-credential-*` protocol. */

import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CorralError } from '../sys/errors.ts';
import { DOCKER_HUB } from '../image/reference.ts';

/** A user name and password (or token) for a registry. */
export interface Credentials {
  username: string;
  password: string;
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [other: string]: unknown;
}

/** Docker stores Docker Hub's credentials under its v1 index URL. */
const HUB_KEY = 'https://index.docker.io/v1/';

/** The config.json this process reads and writes. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker'), 'config.json');
}

function keyOf(registry: string): string {
  return registry === DOCKER_HUB ? HUB_KEY : registry;
}

async function readConfig(path: string): Promise<DockerConfig> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as DockerConfig;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new CorralError(`cannot read the registry credentials in ${path}: ${(error as Error).message}`, { code: 'ERR_INVALID_ARG_VALUE', path });
  }
}

async function writeConfig(path: string, config: DockerConfig): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

/** Runs `docker-credential-NAME ACTION` with input on stdin; its stdout. */
function helper(name: string, action: 'get' | 'store' | 'erase', input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(`docker-credential-${name}`, [action], { timeout: 30_000, maxBuffer: 1 << 20 }, (error, stdout) => {
      if (error) reject(new CorralError(`credential helper docker-credential-${name} ${action} failed (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { code: 'ERR_REGISTRY_UNAUTHORIZED', cause: error }));
      else resolve(stdout);
    });
    child.stdin?.end(input);
  });
}

function helperFor(config: DockerConfig, registry: string): string | undefined {
  return config.credHelpers?.[keyOf(registry)] ?? config.credHelpers?.[registry] ?? config.credsStore;
}

/** The stored credentials for a registry ('localhost:5000', 'docker.io'), or undefined. */
export async function findCredentials(registry: string, path = dockerConfigPath()): Promise<Credentials | undefined> {
  const config = await readConfig(path);
  const entry = config.auths?.[keyOf(registry)] ?? config.auths?.[`https://${registry}`] ?? config.auths?.[`http://${registry}`];
  if (entry?.auth) {
    const plain = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon > 0) return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
  }
  if (entry?.username && entry.password) return { username: entry.username, password: entry.password };
  const name = helperFor(config, registry);
  if (name === undefined) return undefined;
  let out: { Username?: string; Secret?: string };
  try {
    out = JSON.parse(await helper(name, 'get', keyOf(registry))) as typeof out;
  } catch {
    return undefined; // "credentials not found" is an exit status 1 too
  }
  return out.Username && out.Secret ? { username: out.Username, password: out.Secret } : undefined;
}

/** Stores credentials for a registry: in its credential helper when one is configured, else in auths. */
export async function storeCredentials(registry: string, credentials: Credentials, path = dockerConfigPath()): Promise<void> {
  const config = await readConfig(path);
  const name = helperFor(config, registry);
  if (name !== undefined) {
    await helper(name, 'store', JSON.stringify({ ServerURL: keyOf(registry), Username: credentials.username, Secret: credentials.password }));
    return;
  }
  config.auths = { ...config.auths, [keyOf(registry)]: { auth: Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64') } };
  await writeConfig(path, config);
}

/** Forgets a registry's credentials (in its helper and in auths); true when there were any in auths. */
export async function eraseCredentials(registry: string, path = dockerConfigPath()): Promise<boolean> {
  const config = await readConfig(path);
  const name = helperFor(config, registry);
  if (name !== undefined) await helper(name, 'erase', keyOf(registry)).catch(() => '');
  const key = keyOf(registry);
  if (!config.auths?.[key]) return false;
  delete config.auths[key];
  await writeConfig(path, config);
  return true;
}
