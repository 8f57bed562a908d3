/** A KEY=VALUE list (an OCI process's or hook's env, an image config's Env) as a record; an entry
 * without a name before its "=" is left out, a later entry wins. */
export function envRecord(list: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of list) {
    const at = String(kv).indexOf('=');
    if (at > 0) env[kv.slice(0, at)] = kv.slice(at + 1);
  }
  return env;
}
