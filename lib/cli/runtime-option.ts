import { Runtime } from '../index.ts';

/** The --root option every container command takes. */
export const ROOT_OPTION = { root: { type: 'string' } } as const;

/** The runtime a command works on: the default root, or --root DIR. */
export function cliRuntime(root: string | undefined): Runtime {
  return new Runtime(root === undefined ? {} : { root });
}
