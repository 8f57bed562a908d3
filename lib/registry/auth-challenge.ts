/** Parsing a WWW-Authenticate header: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */

/** One challenge: its scheme (lower case) and parameters. */
export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
}

const PARAM = /\s*([a-zA-Z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/y;

/** The challenges of a WWW-Authenticate header, in order (RFC 7235 syntax, quoted strings unescaped). */
export function parseChallenges(header: string | null): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  if (!header) return out;
  let i = 0;
  while (i < header.length) {
    const scheme = /\s*,?\s*([A-Za-z][A-Za-z0-9_-]*)/y;
    scheme.lastIndex = i;
    const s = scheme.exec(header);
    if (!s) break;
    i = scheme.lastIndex;
    const params: Record<string, string> = {};
    for (;;) {
      PARAM.lastIndex = i;
      const p = PARAM.exec(header);
      if (!p) break;
      params[p[1]!.toLowerCase()] = p[2] === undefined ? p[3]! : p[2].replace(/\\(.)/g, '$1');
      i = PARAM.lastIndex;
    }
    out.push({ scheme: s[1]!.toLowerCase(), params });
  }
  return out;
}
