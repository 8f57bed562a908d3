import assert from 'node:assert/strict';
import { IgnoreMatcher } from '../../lib/build/dockerignore.ts';

const excluded = (rules: string, paths: string[]): string[] => {
  const m = IgnoreMatcher.parse(rules);
  return paths.filter((p) => m.excludes(p));
};

describe('.dockerignore matcher', () => {
  it('matches filepath.Match globs per path component, and everything below a matched directory', () => {
    assert.deepEqual(excluded('*.md\nbuild\n/tmp/?.txt\n', ['a.md', 'sub/a.md', 'build', 'build/x/y', 'builder', 'tmp/1.txt', 'tmp/12.txt']), ['a.md', 'build', 'build/x/y', 'tmp/1.txt']);
    assert.deepEqual(excluded('[a-c]*.go\n[^x]y\n', ['b.go', 'd.go', 'zy', 'xy']), ['b.go', 'zy']);
    assert.deepEqual(excluded('a\\*b\n', ['a*b', 'axb']), ['a*b']);
  });

  it('lets ** match any number of directories, none included', () => {
    assert.deepEqual(excluded('**/*.log\n', ['x.log', 'a/x.log', 'a/b/c/x.log', 'x.log.txt']), ['x.log', 'a/x.log', 'a/b/c/x.log']);
    assert.deepEqual(excluded('a/**/z\n', ['a/z', 'a/b/z', 'a/b/c/z', 'b/z']), ['a/z', 'a/b/z', 'a/b/c/z']);
  });

  it('applies ! exceptions with the last matching line winning; ignores comments, blanks and cleans paths', () => {
    const rules = '# comment\n\n*.log\n!keep.log\n./dir/../other/\n';
    assert.deepEqual(excluded(rules, ['a.log', 'keep.log', 'other', 'other/f', 'dir']), ['a.log', 'other', 'other/f']);
    assert.deepEqual(excluded('!keep.log\n*.log\n', ['keep.log']), ['keep.log']);
    assert.deepEqual(excluded('docs\n!docs/README.md\n', ['docs/a', 'docs/README.md']), ['docs/a']);
    assert.equal(IgnoreMatcher.parse('a\n!b').hasExceptions(), true);
    assert.equal(IgnoreMatcher.parse('a\n').hasExceptions(), false);
  });
});
