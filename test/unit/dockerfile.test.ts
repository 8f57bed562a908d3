import assert from 'node:assert/strict';
import { parseDockerfile } from '../../lib/build/parser.ts';
import { interpret, type Instruction } from '../../lib/build/instructions.ts';
import { expandWord, expandWords } from '../../lib/build/expand.ts';

const vars: Record<string, string> = { A: 'alpha', E: '', SP: 'two words' };
const lookup = (name: string): string | undefined => vars[name];
const one = (text: string, extra: Record<string, string> = {}): Instruction => {
  const df = parseDockerfile(text);
  assert.equal(df.instructions.length, 1, JSON.stringify(df.instructions));
  return interpret(df.instructions[0]!, (n) => extra[n] ?? lookup(n), df.escape, df.file);
};
const syntax = (text: string, re: RegExp): void => {
  assert.throws(() => {
    const df = parseDockerfile(text);
    for (const raw of df.instructions) interpret(raw, lookup, df.escape, df.file);
  }, (e: { code: string; message: string }) => e.code === 'ERR_DOCKERFILE_SYNTAX' && re.test(e.message));
};

describe('Dockerfile parser', () => {
  it('knows every instruction of the reference, case-insensitively, and refuses others with file:line:column', () => {
    const text = ['FROM a', 'run x', 'CMD x', 'LABEL a=b', 'EXPOSE 80', 'ENV a=b', 'ADD a b', 'COPY a b', 'ENTRYPOINT x', 'VOLUME /v', 'USER u', 'WORKDIR /w', 'ARG x', 'ONBUILD RUN x', 'STOPSIGNAL 9', 'HEALTHCHECK NONE', 'SHELL ["sh"]', 'MAINTAINER me'].join('\n');
    const df = parseDockerfile(text);
    assert.deepEqual(df.instructions.map((i) => i.keyword), ['FROM', 'RUN', 'CMD', 'LABEL', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL', 'MAINTAINER']);
    assert.deepEqual(df.instructions.map((i) => i.line), [...Array(18).keys()].map((i) => i + 1));
    syntax('FROM a\n\n  BOGUS x', /^Dockerfile:3:3: unknown instruction: BOGUS$/);
  });

  it('joins continuations, skipping comments and blank lines inside, and keeps the first and last line', () => {
    const df = parseDockerfile('FROM a\nRUN echo one \\\n# inside\n\n    two \\\n  three\nUSER x');
    assert.equal(df.instructions[1]!.args, 'echo one     two   three');
    assert.deepEqual([df.instructions[1]!.line, df.instructions[1]!.endLine, df.instructions[2]!.line], [2, 6, 7]);
  });

  it('reads parser directives only at the top: escape changes the continuation, syntax is ignored, a repeat is an error', () => {
    const df = parseDockerfile('# syntax=docker/dockerfile:1\n# escape=`\nFROM a\nRUN dir c:\\ `\n  two');
    assert.equal(df.escape, '`');
    assert.equal(df.instructions[1]!.args, 'dir c:\\   two');
    assert.equal(parseDockerfile('FROM a\n# escape=`\nRUN a \\\n b').instructions[1]!.args, 'a  b');
    assert.throws(() => parseDockerfile('# escape=\\\n# escape=`\nFROM a'), /Dockerfile:2:1: only one escape/);
    assert.throws(() => parseDockerfile('# escape=x\nFROM a'), /invalid escape token/);
  });

  it('tells exec (JSON) from shell form, falling back to shell form on bad JSON', () => {
    assert.deepEqual(one('CMD ["a", "b c"]'), { kind: 'CMD', command: { exec: ['a', 'b c'] } });
    assert.deepEqual(one('CMD [a, b]'), { kind: 'CMD', command: { shell: '[a, b]' } });
    assert.deepEqual(one('RUN echo $A'), { kind: 'RUN', command: { shell: 'echo $A' }, network: 'default', mounts: [] });
    syntax('SHELL sh -c', /SHELL requires the arguments to be in JSON form/);
  });

  it('reads RUN --mount values with BuildKit\'s defaults and aliases; refuses bad ones', () => {
    const mounts = (line: string): unknown => (one(line) as { mounts: unknown }).mounts;
    assert.deepEqual(mounts('RUN --mount=type=cache,target=/root/.cache --mount=target=src,ro=false x'), [
      { type: 'cache', target: '/root/.cache', id: '/root/.cache', sharing: 'shared', readonly: false, mode: 0o755, uid: 0, gid: 0 },
      { type: 'bind', target: 'src', from: null, source: '/', readonly: false },
    ]);
    assert.deepEqual(mounts('RUN --mount=type=secret,id=tok --mount=type=secret,dst=/etc/key,required,mode=0440,uid=5 x'), [
      { type: 'secret', target: '/run/secrets/tok', id: 'tok', required: false, mode: 0o400, uid: 0, gid: 0 },
      { type: 'secret', target: '/etc/key', id: 'key', required: true, mode: 0o440, uid: 5, gid: 0 },
    ]);
    assert.deepEqual(mounts('RUN --mount=type=tmpfs,target=/t,size=2m --mount=type=bind,from=build,src=/out/a,target=/o x'), [
      { type: 'tmpfs', target: '/t', size: 2 * 1024 * 1024 },
      { type: 'bind', target: '/o', from: 'build', source: '/out/a', readonly: true },
    ]);
    syntax('RUN --mount=type=cache x', /--mount: a cache mount needs a target/);
    syntax('RUN --mount=type=cache,target=/c,sharing=maybe x', /invalid sharing 'maybe'/);
    syntax('RUN --mount=type=tmpfs,target=/t,id=x x', /unexpected key 'id' .* for a tmpfs mount/);
    syntax('RUN --mount=type=ssh x', /type=ssh is not supported/);
    syntax('RUN --mount=type=bind,target=/ x', /a mount target cannot be \//);
  });

  it('reads heredocs: a lone RUN heredoc is the script, others stay inline; COPY heredocs expand unless quoted', () => {
    assert.deepEqual(one('RUN <<EOF\necho a\necho b\nEOF'), { kind: 'RUN', command: { shell: 'echo a\necho b\n' }, network: 'default', mounts: [] });
    assert.deepEqual((one('RUN cat <<-EOT > /f\n\tline\n\tEOT') as { command: unknown }).command, { shell: 'cat <<-EOT > /f\nline\nEOT\n' });
    const copy = one('COPY <<A <<"B" /dir/\nx=$A\nA\ny=$A\nB') as Extract<Instruction, { sources: string[] }>;
    assert.deepEqual(copy.sources, []);
    assert.deepEqual(copy.heredocs.map((h) => [h.name, h.content]), [['A', 'x=alpha\n'], ['B', 'y=$A\n']]);
    assert.equal(copy.dest, '/dir/');
    assert.throws(() => parseDockerfile('FROM a\nRUN <<EOF\necho'), /Dockerfile:2:1: unterminated heredoc <<EOF in RUN/);
  });

  it('reads flags and refuses unknown ones', () => {
    const copy = one('COPY --from=$A --chown=1:2 --chmod=0640 --exclude=*.md a b /d/') as Extract<Instruction, { sources: string[] }>;
    assert.deepEqual([copy.from, copy.chown, copy.chmod, copy.exclude, copy.sources, copy.dest], ['alpha', '1:2', 0o640, ['*.md'], ['a', 'b'], '/d/']);
    syntax('COPY --bogus a b', /Dockerfile:1: COPY --bogus a b: unknown flag: --bogus/);
    syntax('COPY --chmod=u+x a b', /only octal modes/);
    syntax('COPY a', /requires at least two arguments/);
  });

  it('reads ENV and LABEL pairs (quoted, escaped, legacy form), ARG defaults, EXPOSE, VOLUME, HEALTHCHECK, ONBUILD', () => {
    assert.deepEqual(one('ENV X="a b" Y=c\\ d Z=$A'), { kind: 'ENV', pairs: [['X', 'a b'], ['Y', 'c d'], ['Z', 'alpha']] });
    assert.deepEqual(one('ENV X a b  c'), { kind: 'ENV', pairs: [['X', 'a b  c']] });
    assert.deepEqual(one('LABEL "my key"=\'v $A\''), { kind: 'LABEL', pairs: [['my key', 'v $A']] });
    assert.deepEqual(one('ARG X Y=${A}1'), { kind: 'ARG', args: [{ name: 'X', value: undefined }, { name: 'Y', value: 'alpha1' }] });
    assert.deepEqual(one('EXPOSE 80 53/UDP 8000-8010'), { kind: 'EXPOSE', ports: ['80/tcp', '53/udp', '8000-8010/tcp'] });
    assert.deepEqual(one('VOLUME ["/a", "/$A"]'), { kind: 'VOLUME', paths: ['/a', '/alpha'] });
    assert.deepEqual(one('HEALTHCHECK --interval=1m30s --timeout=500ms CMD curl -f x'), { kind: 'HEALTHCHECK', check: { Test: ['CMD-SHELL', 'curl -f x'], Interval: 90e9, Timeout: 500e6 } });
    assert.deepEqual(one('FROM img:1 AS Build'), { kind: 'FROM', image: 'img:1', name: 'build', platform: null });
    syntax('ONBUILD FROM x', /FROM isn't allowed as an ONBUILD trigger/);
    syntax('HEALTHCHECK --interval=5x CMD a', /invalid duration '5x'/);
    syntax('LABEL novalue', /LABEL requires key=value pairs/);
  });
});

describe('Dockerfile variable substitution', () => {
  const w = (s: string): string => expandWord(s, lookup, '\\');
  it('substitutes $V and ${V}, with the -, :-, +, :+, ?, :? modifiers', () => {
    assert.equal(w('$A-${A}x$NOPE.'), 'alpha-alphax.');
    assert.equal(w('${E:-d} ${E-d} ${NOPE-d} ${A:-d}'), 'd  d alpha');
    assert.equal(w('${E:+s} ${E+s} ${NOPE+s} ${A:+s$A}'), ' s  salpha');
    assert.equal(w('${NOPE:-${A:-x}y}'), 'alphay');
    assert.throws(() => w('${NOPE:?must be set}'), /NOPE: must be set/);
    assert.throws(() => w('${A'), /missing '}'|unsupported modifier/);
  });
  it('keeps escaped and single-quoted dollars, expands in double quotes, splits words outside quotes only', () => {
    assert.equal(w('\\$A \'$A\' "$A"'), '$A $A alpha');
    assert.equal(w('"a\\"b" a\\ b'), 'a"b a b');
    assert.deepEqual(expandWords('$SP "$SP" \'x y\' z', lookup, '\\'), ['two', 'words', 'two words', 'x y', 'z']);
    assert.equal(expandWord('`$A', lookup, '`'), '$A');
  });
});
