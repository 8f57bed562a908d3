import { parseArgs } from 'node:util';
import { Runtime } from '../runtime.ts';
import type { VolumeOptions } from '../fs/volumes.ts';
import { pairs, usageError } from './parse.ts';

/** Help for `corral volume`. */
export const VOLUME_USAGE = `usage: corral volume COMMAND [--root DIR]

  create NAME [-l KEY=VALUE...] [-o uid=N] [-o gid=N] [-o mode=0755]
                                  make a volume (-o: its data directory's owner, ids
                                  inside the containers, and octal mode; as podman's)
  ls                              list volumes (name, size, users)
  inspect NAME                    print a volume as JSON
  rm NAME [-f]                    remove a volume (refused while a container uses it, unless -f)
  prune                           remove every volume no container uses`;

/** `corral volume create|ls|inspect|rm|prune`. */
export async function volumeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      root: { type: 'string' },
      label: { type: 'string', short: 'l', multiple: true },
      opt: { type: 'string', short: 'o', multiple: true },
      force: { type: 'boolean', short: 'f' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [sub, name] = positionals;
  if (values.help || sub === undefined) {
    console.log(VOLUME_USAGE);
    return sub === undefined && !values.help ? 1 : 0;
  }
  const volumes = new Runtime(values.root === undefined ? {} : { root: values.root }).volumes;
  const needName = (): string => {
    if (!name) throw usageError(`corral volume ${sub} needs a NAME`);
    return name;
  };
  switch (sub) {
    case 'create':
      console.log((await volumes.create(needName(), { labels: pairs(values.label, '--label'), ...volumeOptions(values.opt) })).name);
      return 0;
    case 'ls':
    case 'list':
      console.log(['NAME', 'SIZE', 'USED BY'].join('\t'));
      for (const v of await volumes.list()) console.log([v.name, String(v.sizeBytes), v.usedBy.join(',') || '-'].join('\t'));
      return 0;
    case 'inspect':
      console.log(JSON.stringify(await volumes.inspect(needName()), null, 2));
      return 0;
    case 'rm':
    case 'remove':
      await volumes.remove(needName(), { force: values.force === true });
      console.log(name);
      return 0;
    case 'prune':
      for (const removed of await volumes.prune()) console.log(removed);
      return 0;
    default:
      throw usageError(`unknown volume command '${sub}' (try corral volume --help)`);
  }
}

/** -o uid=N, -o gid=N, -o mode=OCTAL (also comma-separated, as -o uid=1,gid=1). */
function volumeOptions(values: string[] | undefined): VolumeOptions {
  const out: VolumeOptions = {};
  for (const [key, value] of Object.entries(pairs(values?.flatMap((v) => v.split(',')), '-o'))) {
    if (key !== 'uid' && key !== 'gid' && key !== 'mode') throw usageError(`unknown volume option '${key}': corral knows uid, gid and mode`);
    const mode = key === 'mode';
    if (!(mode ? /^[0-7]{1,4}$/ : /^\d+$/).test(value)) throw usageError(`-o ${key} must be ${mode ? 'an octal mode such as 0755' : 'a number'}, got '${value}'`);
    out[key] = mode ? parseInt(value, 8) : Number(value);
  }
  return out;
}
