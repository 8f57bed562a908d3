import { parseArgs } from 'node:util';
import { Runtime } from '../runtime.ts';
import { pairs, usageError } from './parse.ts';

/** Help for `corral network`. */
export const NETWORK_USAGE = `usage: corral network COMMAND [--root DIR]

  create NAME [--subnet A.B.C.D/N] [--gateway IP] [--internal] [-l KEY=VALUE...]   make a network
  ls                              list networks (name, subnet, bridge, containers)
  inspect NAME                    print a network and its containers as JSON
  rm NAME                         remove a network (refused while a container uses it)
  prune                           remove every network no container uses`;

/** `corral network create|ls|inspect|rm|prune`. */
export async function networkCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      root: { type: 'string' },
      subnet: { type: 'string' },
      gateway: { type: 'string' },
      internal: { type: 'boolean' },
      label: { type: 'string', short: 'l', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [sub, name] = positionals;
  if (values.help || sub === undefined) {
    console.log(NETWORK_USAGE);
    return sub === undefined && !values.help ? 1 : 0;
  }
  const networks = new Runtime(values.root === undefined ? {} : { root: values.root }).networks;
  const needName = (): string => {
    if (!name) throw usageError(`corral network ${sub} needs a NAME`);
    return name;
  };
  switch (sub) {
    case 'create': {
      const options = {
        ...(values.subnet === undefined ? {} : { subnet: values.subnet }),
        ...(values.gateway === undefined ? {} : { gateway: values.gateway }),
        internal: values.internal === true,
        labels: pairs(values.label, '--label'),
      };
      console.log((await networks.create(needName(), options)).name);
      return 0;
    }
    case 'ls':
    case 'list':
      console.log(['NAME', 'SUBNET', 'BRIDGE', 'CONTAINERS'].join('\t'));
      for (const n of await networks.list()) console.log([n.name, n.subnet, n.bridge, String(n.containers.length)].join('\t'));
      return 0;
    case 'inspect':
      console.log(JSON.stringify(await networks.inspect(needName()), null, 2));
      return 0;
    case 'rm':
    case 'remove':
      await networks.remove(needName());
      console.log(name);
      return 0;
    case 'prune':
      for (const removed of await networks.prune()) console.log(removed);
      return 0;
    default:
      throw usageError(`unknown network command '${sub}' (try corral network --help)`);
  }
}
