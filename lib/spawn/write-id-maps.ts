import { execFile } from 'node:child_process';
import { CorralError } from '../sys/errors.ts';
import { helperArgs, idMapHelpers, type IdMap } from '../sys/id-map.ts';

function run(helper: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(helper, args, { timeout: 10_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const why = String(stderr).trim() || error.message;
      reject(new CorralError(`${helper} ${args.join(' ')} failed: ${why}; the ranges must be yours in /etc/subuid and /etc/subgid`, {
        code: 'ERR_ROOTLESS_IDS', step: 'write the user namespace id maps', path: helper,
      }));
    });
  });
}

/** Writes a map with subordinate ranges into the user namespace of pid through the setuid helpers
 * newuidmap and newgidmap (run side by side). */
export async function writeIdMaps(pid: number, map: IdMap): Promise<void> {
  const helpers = requireIdMapHelpers();
  const results = await Promise.allSettled([
    run(helpers.newuidmap, [String(pid), ...helperArgs(map.uids)]),
    run(helpers.newgidmap, [String(pid), ...helperArgs(map.gids)]),
  ]);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** newuidmap and newgidmap, or ERR_ROOTLESS_IDS saying where to get them. */
export function requireIdMapHelpers(): { newuidmap: string; newgidmap: string } {
  const helpers = idMapHelpers();
  if (!helpers) {
    throw new CorralError('newuidmap and newgidmap are needed to map subordinate ids (Debian: apt-get install uidmap)', {
      code: 'ERR_ROOTLESS_IDS', step: 'write the user namespace id maps',
    });
  }
  return helpers;
}

/** The newuidmap and newgidmap command lines for a map, without the pid (the supervisor of a
 * detached container puts each init's pid after the helper). */
export function idMapCommands(map: IdMap): { uids: string[]; gids: string[] } {
  const helpers = requireIdMapHelpers();
  return { uids: [helpers.newuidmap, ...helperArgs(map.uids)], gids: [helpers.newgidmap, ...helperArgs(map.gids)] };
}
