/** The Dockerfile parser (BuildKit's reference syntax): parser directives, comments, line
 * continuations (with comments and blank lines inside), flags, JSON (exec) vs shell form, heredocs.
 * It gives raw instructions with their lines; lib/build/instructions.ts gives them meaning. */

import { CorralError } from '../sys/errors.ts';

/** A here-document attached to an instruction (`<<EOF` … `EOF`). */
export interface Heredoc {
  name: string;
  content: string;
  /** False when the delimiter was quoted: no variable expansion. */
  expand: boolean;
}

/** One instruction as written: keyword, flags, the rest, its lines. */
export interface RawInstruction {
  /** Upper case: 'RUN', 'COPY', … */
  keyword: string;
  /** `--name=value` flags before the arguments, in order (a bare `--name` has value null). */
  flags: [string, string | null][];
  /** The arguments after the flags, continuation joined. */
  args: string;
  /** The arguments as a JSON string array when they are one (exec form), else null. */
  json: string[] | null;
  heredocs: Heredoc[];
  /** The instruction as written (one line, continuations joined), for history and errors. */
  text: string;
  /** 1-based first and last line. */
  line: number;
  endLine: number;
}

/** A parsed Dockerfile. */
export interface Dockerfile {
  /** The file's name, for errors. */
  file: string;
  escape: string;
  instructions: RawInstruction[];
}

const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const HEREDOC = /<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2/g;
const HEREDOC_INSTRUCTIONS = new Set(['RUN', 'COPY', 'ADD']);

/** Instructions of the reference (MAINTAINER is deprecated yet accepted). */
const KEYWORDS = new Set([
  'FROM', 'RUN', 'CMD', 'LABEL', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR',
  'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL', 'MAINTAINER',
]);

/** A syntax error naming the file, line and column and the offending text. */
function syntaxError(file: string, line: number, column: number, message: string): CorralError {
  return new CorralError(`${file}:${line}:${column}: ${message}`, { code: 'ERR_DOCKERFILE_SYNTAX', path: file, step: 'parse the Dockerfile' });
}

/** Parses a Dockerfile's text. */
export function parseDockerfile(text: string, file = 'Dockerfile'): Dockerfile {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let escape = '\\';
  let at = 0;
  for (const seen = new Set<string>(); at < lines.length; at++) {
    const m = DIRECTIVE.exec(lines[at]!);
    if (!m) break;
    const name = m[1]!.toLowerCase();
    if (seen.has(name)) throw syntaxError(file, at + 1, 1, `only one ${name} parser directive can be used`);
    seen.add(name);
    if (name === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') throw syntaxError(file, at + 1, 1, `invalid escape token '${m[2]}': it must be \\ or \``);
      escape = m[2];
    }
    // 'syntax' (and 'check') are accepted and ignored; unknown directives are comments.
  }
  const instructions: RawInstruction[] = [];
  while (at < lines.length) {
    const trimmed = lines[at]!.trim();
    if (trimmed === '' || trimmed.startsWith('#')) {
      at++;
      continue;
    }
    const line = at + 1;
    let joined = '';
    for (;;) {
      const current = lines[at]!.replace(/\s+$/, '');
      at++;
      if (current.endsWith(escape)) {
        joined += current.slice(0, -1);
        while (at < lines.length && (lines[at]!.trim() === '' || lines[at]!.trim().startsWith('#'))) at++;
        if (at < lines.length) continue;
        break;
      }
      joined += current;
      break;
    }
    const endLine = at;
    const body = joined.trim();
    const word = /^\S+/.exec(body)![0];
    const keyword = word.toUpperCase();
    if (!KEYWORDS.has(keyword)) throw syntaxError(file, line, lines[line - 1]!.indexOf(word) + 1, `unknown instruction: ${word}`);
    const { flags, rest } = splitFlags(body.slice(word.length).trim());
    const heredocs: Heredoc[] = [];
    if (HEREDOC_INSTRUCTIONS.has(keyword) && !rest.startsWith('[')) {
      for (const m of rest.matchAll(HEREDOC)) {
        const [, strip, quote, name] = m as unknown as [string, string, string, string];
        const content: string[] = [];
        for (;;) {
          if (at >= lines.length) throw syntaxError(file, line, 1, `unterminated heredoc <<${name} in ${keyword}`);
          const raw = lines[at++]!;
          const l = strip ? raw.replace(/^\t+/, '') : raw;
          if (l === name) break;
          content.push(l);
        }
        heredocs.push({ name, content: content.map((c) => `${c}\n`).join(''), expand: quote === '' });
      }
    }
    instructions.push({ keyword, flags, args: rest, json: parseJson(rest), heredocs, text: `${keyword} ${body.slice(word.length).trim()}`.trim(), line, endLine: heredocs.length > 0 ? at : endLine });
  }
  return { file, escape, instructions };
}

/** Leading `--name[=value]` words. */
function splitFlags(args: string): { flags: [string, string | null][]; rest: string } {
  const flags: [string, string | null][] = [];
  let rest = args;
  for (let m = /^--([A-Za-z][A-Za-z0-9-]*)(=(\S*))?(\s+|$)/.exec(rest); m; m = /^--([A-Za-z][A-Za-z0-9-]*)(=(\S*))?(\s+|$)/.exec(rest)) {
    flags.push([m[1]!, m[2] === undefined ? null : m[3]!]);
    rest = rest.slice(m[0].length);
  }
  return { flags, rest };
}

/** The arguments as a JSON array of strings, or null (then they are shell form, as in BuildKit). */
export function parseJson(args: string): string[] | null {
  if (!args.startsWith('[')) return null;
  try {
    const value: unknown = JSON.parse(args);
    return Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : null;
  } catch {
    return null;
  }
}
