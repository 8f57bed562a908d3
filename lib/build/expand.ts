/** Dockerfile word processing as BuildKit's shell lexer does it: quotes removed, the escape
 * character honoured, and `$V ${V} ${V:-w} ${V-w} ${V:+w} ${V+w} ${V:?w} ${V?w}` substituted. */

/** The variables a word is expanded with: undefined when unset (not the same as empty). */
export type Lookup = (name: string) => string | undefined;

/** Why a word could not be expanded (the caller adds the file, line and instruction). */
export class ExpandError extends Error {}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

class Lexer {
  #i = 0;
  readonly #text: string;
  readonly #lookup: Lookup;
  readonly #escape: string;
  /** Quotes are ordinary characters and the escape only escapes '$' (heredoc bodies). */
  readonly #raw: boolean;

  constructor(text: string, lookup: Lookup, escape: string, raw = false) {
    this.#text = text;
    this.#lookup = lookup;
    this.#escape = escape;
    this.#raw = raw;
  }

  /** Words up to `stop` (or the end): split at unquoted whitespace when `split`. */
  words(split: boolean, stop?: string): string[] {
    const words: string[] = [];
    let word = '';
    let inWord = false;
    const t = this.#text;
    while (this.#i < t.length) {
      const ch = t[this.#i]!;
      if (stop !== undefined && ch === stop) break;
      this.#i++;
      if (split && /\s/.test(ch)) {
        if (inWord) words.push(word);
        word = '';
        inWord = false;
        continue;
      }
      inWord = true;
      if (this.#raw) {
        if (ch === '$') word += this.#variable();
        else if (ch === this.#escape && t[this.#i] === '$') word += t[this.#i++];
        else word += ch;
      } else if (ch === '\'') word += this.#single();
      else if (ch === '"') word += this.#double();
      else if (ch === '$') {
        // An unquoted value is split at its whitespace too (COPY $FILES /d/ copies each).
        const parts = this.#variable().split(split ? /\s+/ : /(?!)/);
        word += parts[0];
        for (const part of parts.slice(1)) {
          if (word !== '') words.push(word);
          word = part;
        }
        inWord = word !== '';
      }
      else if (ch === this.#escape) {
        if (this.#i < t.length) word += t[this.#i++];
        else word += ch;
      } else word += ch;
    }
    if (inWord) words.push(word);
    return words;
  }

  #single(): string {
    const end = this.#text.indexOf('\'', this.#i);
    if (end < 0) throw new ExpandError('unexpected end of text: a single quote is not closed');
    const s = this.#text.slice(this.#i, end);
    this.#i = end + 1;
    return s;
  }

  #double(): string {
    let s = '';
    const t = this.#text;
    while (this.#i < t.length) {
      const ch = t[this.#i++]!;
      if (ch === '"') return s;
      if (ch === '$') s += this.#variable();
      else if (ch === this.#escape && this.#i < t.length && ['"', '$', this.#escape].includes(t[this.#i]!)) s += t[this.#i++];
      else s += ch;
    }
    throw new ExpandError('unexpected end of text: a double quote is not closed');
  }

  #variable(): string {
    const t = this.#text;
    const ch = t[this.#i];
    if (ch === '{') {
      this.#i++;
      const start = this.#i;
      while (this.#i < t.length && NAME_CHAR.test(t[this.#i]!)) this.#i++;
      const name = t.slice(start, this.#i);
      if (name === '' || !NAME_START.test(name[0]!)) throw new ExpandError(`bad substitution: \${${t.slice(start, t.indexOf('}', start) < 0 ? undefined : t.indexOf('}', start))}}`);
      const value = this.#lookup(name);
      if (t[this.#i] === '}') {
        this.#i++;
        return value ?? '';
      }
      let op = '';
      if (t[this.#i] === ':') {
        op = ':';
        this.#i++;
      }
      const kind = t[this.#i++];
      if (kind === undefined || !'-+?'.includes(kind)) throw new ExpandError(`unsupported modifier in \${${name}${op}${kind ?? ''}…}`);
      const word = this.words(false, '}').join('');
      if (t[this.#i] !== '}') throw new ExpandError(`missing '}' in \${${name}…`);
      this.#i++;
      const set = op === ':' ? value !== undefined && value !== '' : value !== undefined;
      if (kind === '-') return set ? value! : word;
      if (kind === '+') return set ? word : '';
      if (!set) throw new ExpandError(`${name}: ${word || 'is not set'}`);
      return value!;
    }
    if (ch === undefined || !NAME_START.test(ch)) return '$';
    const start = this.#i;
    while (this.#i < t.length && NAME_CHAR.test(t[this.#i]!)) this.#i++;
    return this.#lookup(t.slice(start, this.#i)) ?? '';
  }
}

/** One word: quotes removed, variables substituted, whitespace kept. */
export function expandWord(text: string, lookup: Lookup, escape: string): string {
  return new Lexer(text, lookup, escape).words(false).join('');
}

/** A heredoc body: variables substituted, quotes and whitespace kept as written. */
export function expandHeredoc(text: string, lookup: Lookup, escape: string): string {
  return new Lexer(text, lookup, escape, true).words(false).join('');
}

/** Words split at unquoted whitespace, each expanded. */
export function expandWords(text: string, lookup: Lookup, escape: string): string[] {
  return new Lexer(text, lookup, escape).words(true);
}

/** Splits at unquoted whitespace keeping quotes and escapes as written (ENV and LABEL pairs are
 * split first, then each expanded). */
export function splitRaw(text: string, escape: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote === null && /\s/.test(ch)) {
      if (word !== '') words.push(word);
      word = '';
      continue;
    }
    word += ch;
    if (ch === escape && quote !== '\'' && i + 1 < text.length) word += text[++i];
    else if (quote === null && (ch === '"' || ch === '\'')) quote = ch;
    else if (ch === quote) quote = null;
  }
  if (word !== '') words.push(word);
  return words;
}
