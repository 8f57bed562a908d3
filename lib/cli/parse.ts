import { isAbsolute } from 'node:path';
import { CorralError } from '../sys/errors.ts';
import type { MountSpec } from '../fs/mounts.ts';
import type { PortSpec } from '../container/spec.ts';

/** A usage error of the corral command. */
export function usageError(message: string): CorralError {
  return new CorralError(message, { code: 'ERR_INVALID_ARG_VALUE' });
}

/** The one line a failure of `corral COMMAND` prints: a usage error (ours, or parseArgs's, whose
 * first sentence is the reason) with a pointer to the command's --help. */
export function failureLine(err: { message: string; code?: string | undefined }, command: string | undefined): string {
  const parse = err.code?.startsWith('ERR_PARSE_ARGS') ?? false;
  const reason = parse ? err.message.split(/\.\s/)[0]!.replace(/\.$/, '') : err.message.split('\n')[0]!;
  if (!(parse || err.code === 'ERR_INVALID_ARG_VALUE') || reason.includes('--help')) return reason;
  const known = command !== undefined && /^[a-z]+$/.test(command);
  return `${reason} (see corral ${known ? `${command} ` : ''}--help)`;
}

/** KEY=VALUE options (--env, --label) as an object. */
export function pairs(values: string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const at = v.indexOf('=');
    if (at <= 0) throw usageError(`${what} must be KEY=VALUE, got '${v}'`);
    out[v.slice(0, at)] = v.slice(at + 1);
  }
  return out;
}

/** -v SRC:DST[:ro]: an absolute SRC is a bind mount, anything else a volume name. */
export function parseVolumeFlag(value: string): MountSpec {
  const parts = value.split(':');
  if (parts.length < 2 || parts.length > 3 || (parts[2] !== undefined && parts[2] !== 'ro' && parts[2] !== 'rw')) {
    throw usageError(`-v must be SOURCE:TARGET[:ro], got '${value}'`);
  }
  const [source, target, mode] = parts as [string, string, string | undefined];
  const readonly = mode === 'ro';
  return isAbsolute(source) ? { type: 'bind', source, target, readonly } : { type: 'volume', source, target, readonly };
}

/** --tmpfs DST[:size=64m,mode=1777]. */
export function parseTmpfsFlag(value: string): MountSpec {
  const [target, options] = value.split(/:(.*)/s) as [string, string | undefined];
  const mount: MountSpec = { type: 'tmpfs', target };
  for (const opt of options ? options.split(',') : []) {
    const [k, v] = opt.split('=');
    if (k === 'size' && v) mount.size = v;
    else if (k === 'mode' && v && /^[0-7]{3,4}$/.test(v)) mount.mode = parseInt(v, 8);
    else throw usageError(`--tmpfs options are size=SIZE and mode=OCTAL, got '${opt}'`);
  }
  return mount;
}

/** --mount type=bind|tmpfs|volume,source=…,target=…[,readonly][,size=…][,mode=…][,bind-propagation=…]. */
export function parseMountFlag(value: string): MountSpec {
  const fields = new Map<string, string>();
  for (const item of value.split(',')) {
    const at = item.indexOf('=');
    fields.set(at < 0 ? item : item.slice(0, at), at < 0 ? 'true' : item.slice(at + 1));
  }
  const type = fields.get('type') ?? 'volume';
  const source = fields.get('source') ?? fields.get('src');
  const target = fields.get('target') ?? fields.get('destination') ?? fields.get('dst');
  const readonly = ['true', '1'].includes(fields.get('readonly') ?? fields.get('ro') ?? 'false');
  if (!target) throw usageError(`--mount needs target=PATH, got '${value}'`);
  if (type === 'tmpfs') {
    const mount: MountSpec = { type, target };
    if (fields.has('size')) mount.size = fields.get('size')!;
    if (fields.has('mode')) mount.mode = parseInt(fields.get('mode')!, 8);
    return mount;
  }
  if (!source) throw usageError(`--mount type=${type} needs source=…, got '${value}'`);
  if (type === 'bind') {
    const mount: MountSpec = { type, source, target, readonly };
    const propagation = fields.get('bind-propagation');
    if (propagation) mount.propagation = propagation as never;
    return mount;
  }
  if (type === 'volume') return { type, source, target, readonly };
  throw usageError(`--mount type must be bind, tmpfs or volume, got '${type}'`);
}

/** -p [IP:][HOST:]CONTAINER[/tcp|/udp] as docker takes it (no HOST or an empty one: a free port). */
export function parsePublishFlag(value: string): PortSpec {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(?:(\d*):)?(\d+)(?:\/(tcp|udp))?$/.exec(value);
  if (!m) throw usageError(`-p must be [IP:][HOST:]CONTAINER[/udp], got '${value}'`);
  const port: PortSpec = { container: Number(m[3]) };
  if (m[1] !== undefined) port.hostIp = m[1];
  if (m[2]) port.host = Number(m[2]);
  if (m[4] !== undefined) port.protocol = m[4] as 'tcp' | 'udp';
  return port;
}
