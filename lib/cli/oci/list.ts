import { writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CorralError } from '../../sys/errors.ts';
import type { OciStore } from '../../container/oci-container.ts';

/** `list [--format table|json] [--quiet]`: the containers of --root with their state. */
export function listCommand(store: OciStore, args: string[]): number {
  const { values } = parseArgs({ args, options: { format: { type: 'string', short: 'f' }, quiet: { type: 'boolean', short: 'q' } }, strict: true });
  const states = store.ids().map((id) => store.state(id));
  const format = values.format ?? 'table';
  if (values.quiet) {
    writeSync(1, states.map((s) => `${s.id}\n`).join(''));
  } else if (format === 'json') {
    writeSync(1, `${JSON.stringify(states)}\n`);
  } else if (format === 'table') {
    const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...states.map((s) => [s.id, String(s.pid), s.status, s.bundle, s.created, s.owner])];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    writeSync(1, rows.map((r) => `${r.map((c, i) => c.padEnd(widths[i]!)).join('   ').trimEnd()}\n`).join(''));
  } else {
    throw new CorralError(`invalid --format "${format}": table or json`, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  return 0;
}
