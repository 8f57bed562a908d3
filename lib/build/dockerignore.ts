/** The `.dockerignore` matcher, as moby's patternmatcher: Go's filepath.Match syntax (`*`, `?`,
 * `[…]`, `\` escapes) plus `**` for any number of directories, `!` exceptions, the last matching
 * pattern wins, and a pattern that matches a directory matches everything below it. */

interface Pattern {
  re: RegExp;
  exception: boolean;
}

/** Cleans a path as Go's filepath.Clean does, relative (no leading '/'). */
export function cleanRelative(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

/** A glob (filepath.Match syntax plus `**`) as an anchored regular expression. */
export function globRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') {
      if (glob[i + 1] === '*') {
        i++;
        if (glob[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '\\' && i + 1 < glob.length) re += escapeRe(glob[++i]!);
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let body = glob.slice(i + 1, end);
        if (body.startsWith('^') || body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replaceAll('\\', '\\\\')}]`;
        i = end;
      }
    } else re += escapeRe(ch);
  }
  return new RegExp(`^${re}$`);
}

function escapeRe(ch: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(ch) ? `\\${ch}` : ch;
}

/** The patterns of a .dockerignore file (or of COPY --exclude). */
export class IgnoreMatcher {
  readonly #patterns: Pattern[];

  constructor(lines: string[]) {
    this.#patterns = [];
    for (const line of lines) {
      let p = line.trim();
      if (p === '' || p.startsWith('#')) continue;
      const exception = p.startsWith('!');
      if (exception) p = p.slice(1).trim();
      p = cleanRelative(p);
      if (p === '') continue;
      this.#patterns.push({ re: globRegExp(p), exception });
    }
  }

  /** A matcher from the text of a .dockerignore file. */
  static parse(text: string): IgnoreMatcher {
    return new IgnoreMatcher(text.split(/\r?\n/));
  }

  /** Whether the path (relative to the context, '/'-separated) is excluded. */
  excludes(rel: string): boolean {
    const path = cleanRelative(rel);
    const prefixes: string[] = [];
    for (let at = path.indexOf('/'); at >= 0; at = path.indexOf('/', at + 1)) prefixes.push(path.slice(0, at));
    prefixes.push(path);
    let excluded = false;
    for (const { re, exception } of this.#patterns) {
      if (excluded === !exception) continue; // this pattern cannot change the outcome
      if (prefixes.some((p) => re.test(p))) excluded = !exception;
    }
    return excluded;
  }

  /** Whether an excluded directory must still be walked, because an exception may re-include
   * something below it. */
  hasExceptions(): boolean {
    return this.#patterns.some((p) => p.exception);
  }
}
