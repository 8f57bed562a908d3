import { execFileSync } from 'node:child_process';
import { writeSync } from 'node:fs';
import { CorralError } from '../../sys/errors.ts';
import type { OciStore } from '../../container/oci-container.ts';
import { ociFlags } from './flags.ts';

/** `ps [--format table|json] ID [PS_ARGS...]`: the container's processes, as a JSON array of pids
 * (what containerd's shim reads) or as the host's `ps` table (default `-ef`) cut to them. */
export function psCommand(store: OciStore, args: string[]): number {
  const { values, id, rest } = ociFlags(args, { format: { type: 'string', short: 'f' } });
  const format = String(values.format ?? 'table');
  const pids = store.pids(id);
  if (format === 'json') {
    writeSync(1, `${JSON.stringify(pids)}\n`);
    return 0;
  }
  if (format !== 'table') throw new CorralError(`invalid --format "${format}": table or json`, { code: 'ERR_INVALID_ARG_VALUE' });
  const [header, ...lines] = execFileSync('ps', rest.length > 0 ? rest : ['-ef'], { encoding: 'utf8' }).trimEnd().split('\n');
  const column = header!.trim().split(/\s+/).indexOf('PID');
  if (column < 0) throw new CorralError(`ps ${rest.join(' ')} prints no PID column`, { code: 'ERR_INVALID_ARG_VALUE' });
  const wanted = new Set(pids);
  const mine = lines.filter((line) => wanted.has(Number(line.trim().split(/\s+/)[column])));
  writeSync(1, `${[header, ...mine].join('\n')}\n`);
  return 0;
}
