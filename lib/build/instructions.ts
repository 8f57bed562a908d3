/** What each raw Dockerfile instruction means once its variables are substituted (with the ARG and
 * ENV values in scope at that point): the typed instructions the builder executes. */

import { CorralError } from '../sys/errors.ts';
import { expandHeredoc, expandWord, expandWords, ExpandError, splitRaw, type Lookup } from './expand.ts';
import { parseJson, type Heredoc, type RawInstruction } from './parser.ts';
import { MountFlagError, parseRunMount, type RunMount } from './run-mounts.ts';

/** A command in exec form (an argv) or shell form (a string for the SHELL). */
export type Command = { exec: string[] } | { shell: string };

/** Health check settings (durations in nanoseconds, as the image config holds them). */
export interface Healthcheck {
  Test: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** A typed instruction. */
export type Instruction =
  | { kind: 'FROM'; image: string; name: string | null; platform: string | null }
  | { kind: 'RUN'; command: Command; network: 'none' | 'host' | 'default'; mounts: RunMount[] }
  | { kind: 'CMD' | 'ENTRYPOINT'; command: Command }
  | { kind: 'LABEL' | 'ENV'; pairs: [string, string][] }
  | { kind: 'ARG'; args: { name: string; value: string | undefined }[] }
  | { kind: 'EXPOSE'; ports: string[] }
  | { kind: 'VOLUME'; paths: string[] }
  | { kind: 'USER' | 'WORKDIR' | 'STOPSIGNAL' | 'MAINTAINER'; value: string }
  | { kind: 'SHELL'; shell: string[] }
  | { kind: 'HEALTHCHECK'; check: Healthcheck | null }
  | { kind: 'ONBUILD'; trigger: string }
  | { kind: 'COPY' | 'ADD'; sources: string[]; dest: string; from: string | null; chown: string | null; chmod: number | null; link: boolean; exclude: string[]; heredocs: Heredoc[]; checksum: string | null };

/** An error about one instruction: the file, its line and the instruction text. */
export function instructionError(file: string, raw: Pick<RawInstruction, 'line' | 'text'>, message: string, code: 'ERR_DOCKERFILE_SYNTAX' | 'ERR_BUILD_FAILED' | 'ERR_BUILD_CONTEXT' = 'ERR_DOCKERFILE_SYNTAX'): CorralError {
  return new CorralError(`${file}:${raw.line}: ${raw.text.length > 80 ? `${raw.text.slice(0, 77)}...` : raw.text}: ${message}`, { code, path: file, step: `line ${raw.line}` });
}

const FLAGS: Record<string, string[]> = {
  FROM: ['platform'],
  RUN: ['network', 'mount', 'security'],
  COPY: ['from', 'chown', 'chmod', 'link', 'exclude', 'parents'],
  ADD: ['chown', 'chmod', 'link', 'exclude', 'checksum', 'keep-git-dir'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};

/** Interprets a raw instruction with the variables in scope. */
export function interpret(raw: RawInstruction, lookup: Lookup, escape: string, file: string): Instruction {
  const fail = (message: string): CorralError => instructionError(file, raw, message);
  for (const [name] of raw.flags) if (!(FLAGS[raw.keyword] ?? []).includes(name)) throw fail(`unknown flag: --${name}`);
  const flag = (name: string): string | null => {
    const found = raw.flags.filter(([n]) => n === name).at(-1);
    return found === undefined ? null : expand(found[1] ?? 'true');
  };
  const expand = (s: string): string => wrap(() => expandWord(s, lookup, escape));
  const words = (s: string): string[] => wrap(() => expandWords(s, lookup, escape));
  const wrap = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof ExpandError) throw fail(e.message);
      throw e;
    }
  };
  const needArgs = (): void => {
    if (raw.args === '' && raw.heredocs.length === 0) throw fail(`${raw.keyword} requires at least one argument`);
  };
  const k = raw.keyword;
  switch (k) {
    case 'FROM': {
      const w = words(raw.args);
      if (w.length !== 1 && !(w.length === 3 && w[1]!.toUpperCase() === 'AS')) throw fail('FROM requires an image and optionally AS name');
      const name = w[2]?.toLowerCase() ?? null;
      if (name !== null && !/^[a-z][a-z0-9_.-]*$/.test(name)) throw fail(`invalid stage name '${w[2]}'`);
      return { kind: 'FROM', image: w[0]!, name, platform: flag('platform') };
    }
    case 'RUN': {
      needArgs();
      const network = flag('network') ?? 'default';
      if (network !== 'none' && network !== 'host' && network !== 'default') throw fail(`unsupported network mode '${network}'`);
      if (raw.flags.some(([n]) => n === 'security')) throw fail('RUN --security is not supported');
      const mounts = raw.flags.filter(([n]) => n === 'mount').map(([, v]) => {
        try {
          return parseRunMount(expand(v ?? ''));
        } catch (e) {
          if (e instanceof MountFlagError) throw fail(`--mount: ${e.message}`);
          throw e;
        }
      });
      return { kind: 'RUN', command: runCommand(raw), network, mounts };
    }
    case 'CMD':
    case 'ENTRYPOINT':
      return { kind: k, command: raw.json ? { exec: raw.json } : { shell: raw.args } };
    case 'LABEL':
    case 'ENV': {
      needArgs();
      return { kind: k, pairs: pairs(raw, k === 'ENV', expand, fail, escape) };
    }
    case 'ARG': {
      needArgs();
      return {
        kind: 'ARG',
        args: splitRaw(raw.args, escape).map((w) => {
          const at = w.indexOf('=');
          const name = at < 0 ? w : w.slice(0, at);
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw fail(`invalid ARG name '${name}'`);
          return { name, value: at < 0 ? undefined : expand(w.slice(at + 1)) };
        }),
      };
    }
    case 'EXPOSE': {
      needArgs();
      const ports = words(raw.args).map((p) => {
        const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
        if (!m) throw fail(`invalid port '${p}'`);
        return `${m[1]}${m[2] ? `-${m[2]}` : ''}/${(m[3] ?? 'tcp').toLowerCase()}`;
      });
      return { kind: 'EXPOSE', ports };
    }
    case 'VOLUME': {
      needArgs();
      const paths = raw.json ? raw.json.map(expand) : words(raw.args);
      if (paths.some((p) => p === '')) throw fail('VOLUME specified can not be an empty string');
      return { kind: 'VOLUME', paths };
    }
    case 'USER':
    case 'WORKDIR':
    case 'STOPSIGNAL':
    case 'MAINTAINER': {
      needArgs();
      const value = k === 'MAINTAINER' ? raw.args : expand(raw.args);
      if (k !== 'WORKDIR' && k !== 'MAINTAINER' && /\s/.test(value)) throw fail(`${k} requires exactly one argument`);
      return { kind: k, value };
    }
    case 'SHELL':
      if (!raw.json || raw.json.length === 0) throw fail('SHELL requires the arguments to be in JSON form');
      return { kind: 'SHELL', shell: raw.json };
    case 'HEALTHCHECK':
      return { kind: 'HEALTHCHECK', check: healthcheck(raw, flag, fail) };
    case 'ONBUILD': {
      needArgs();
      const trigger = raw.args.split(/\s/)[0]!.toUpperCase();
      if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(trigger)) throw fail(`${trigger} isn't allowed as an ONBUILD trigger`);
      return { kind: 'ONBUILD', trigger: raw.args };
    }
    case 'COPY':
    case 'ADD': {
      needArgs();
      const all = raw.json ? raw.json.map(expand) : words(raw.args);
      if (all.length < 2 && raw.heredocs.length === 0) throw fail(`${k} requires at least two arguments, but only one was provided. Destination could not be determined`);
      const chmodText = flag('chmod');
      if (chmodText !== null && !/^[0-7]{3,4}$/.test(chmodText)) throw fail(`invalid --chmod '${chmodText}': only octal modes are supported`);
      const dest = all.at(-1)!;
      const heredocNames = new Set(raw.heredocs.map((h) => h.name));
      const sources = all.slice(0, -1).filter((s) => !isHeredocMarker(s, heredocNames));
      return {
        kind: k, sources, dest,
        from: k === 'COPY' ? flag('from') : null,
        checksum: k === 'ADD' ? flag('checksum') : null,
        chown: flag('chown'),
        chmod: chmodText === null ? null : parseInt(chmodText, 8),
        link: flag('link') === 'true',
        exclude: raw.flags.filter(([n]) => n === 'exclude').map(([, v]) => expand(v ?? '')),
        heredocs: raw.heredocs.map((h) => ({ ...h, content: h.expand ? wrap(() => expandHeredoc(h.content, lookup, escape)) : h.content })),
      };
    }
    default:
      throw fail(`unknown instruction: ${k}`);
  }
}

function isHeredocMarker(word: string, names: Set<string>): boolean {
  const m = /^<<-?(\w+)$/.exec(word);
  return m !== null && names.has(m[1]!);
}

/** RUN's command: exec form as is; a lone heredoc runs as the script; other heredocs stay inline
 * for the shell, which reads them itself. */
function runCommand(raw: RawInstruction): Command {
  if (raw.json) return { exec: raw.json };
  if (raw.heredocs.length === 1 && /^<<-?(["']?)\w+\1$/.test(raw.args.trim())) return { shell: raw.heredocs[0]!.content };
  if (raw.heredocs.length === 0) return { shell: raw.args };
  return { shell: `${raw.args}\n${raw.heredocs.map((h) => `${h.content}${h.name}\n`).join('')}` };
}

/** ENV and LABEL pairs: `k=v …`, or ENV's legacy `k v with spaces`. */
function pairs(raw: RawInstruction, legacy: boolean, expand: (s: string) => string, fail: (m: string) => CorralError, escape: string): [string, string][] {
  const words = splitRaw(raw.args, escape);
  if (!words[0]!.includes('=')) {
    if (!legacy) throw fail('LABEL requires key=value pairs');
    const name = words[0]!;
    const value = raw.args.slice(raw.args.indexOf(name) + name.length).trim();
    if (value === '') throw fail('ENV must have two arguments');
    return [[name, expand(value)]];
  }
  return words.map((w) => {
    const at = w.indexOf('=');
    if (at <= 0) throw fail(`${raw.keyword} names can not be blank and need '=': '${w}'`);
    return [expand(w.slice(0, at)), expand(w.slice(at + 1))];
  });
}

const UNITS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** A Go duration ('30s', '1m30s') in nanoseconds. */
function duration(text: string, fail: (m: string) => CorralError): number {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    end = re.lastIndex;
  }
  if (end !== text.length || text === '') throw fail(`invalid duration '${text}'`);
  return total;
}

function healthcheck(raw: RawInstruction, flag: (n: string) => string | null, fail: (m: string) => CorralError): Healthcheck | null {
  const [word, ...rest] = raw.args.split(/\s+/);
  if (word?.toUpperCase() === 'NONE') {
    if (rest.length > 0 || raw.flags.length > 0) throw fail('HEALTHCHECK NONE takes no other arguments');
    return null;
  }
  if (word?.toUpperCase() !== 'CMD') throw fail('HEALTHCHECK requires NONE or CMD');
  const command = raw.args.slice(word.length).trim();
  if (command === '') throw fail('HEALTHCHECK CMD requires a command');
  const json = parseJson(command);
  const check: Healthcheck = { Test: json ? ['CMD', ...json] : ['CMD-SHELL', command] };
  for (const [name, key] of [['interval', 'Interval'], ['timeout', 'Timeout'], ['start-period', 'StartPeriod'], ['start-interval', 'StartInterval']] as const) {
    const v = flag(name);
    if (v !== null) check[key] = duration(v, fail);
  }
  const retries = flag('retries');
  if (retries !== null) {
    if (!/^\d+$/.test(retries)) throw fail(`invalid --retries '${retries}'`);
    check.Retries = Number(retries);
  }
  return check;
}
