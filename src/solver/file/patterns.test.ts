import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDrayError } from '../../errors.ts';
import {
  cleanPath,
  createPathFilter,
  goMatch,
  hasWildcards,
  PatternMatcher,
  readDockerignore,
} from './patterns.ts';

test('cleanPath: Go filepath.Clean', () => {
  const cases: [string, string][] = [
    ['', '.'],
    ['/', '/'],
    ['a/b/../c', 'a/c'],
    ['/../x', '/x'],
    ['../x', '../x'],
    ['./a//b/', 'a/b'],
    ['a/..', '.'],
    ['/a/./b/.', '/a/b'],
  ];
  for (const [i, want] of cases) assert.equal(cleanPath(i), want, i);
});

test('goMatch: filepath.Match rules', () => {
  const yes: [string, string][] = [
    ['*.go', 'foo.go'],
    ['f*.go', 'foo.go'],
    ['*', 'anything'],
    ['a?c', 'abc'],
    ['[a-c]x', 'bx'],
    ['[^a-c]x', 'dx'],
    ['*/dir2/foo', 'dir1/dir2/foo'],
    ['arr[[]0].txt', 'arr[0].txt'],
    ['\\*', '*'],
    ['a*b*c', 'axxbyyc'],
    ['é?', 'éü'],
  ];
  const no: [string, string][] = [
    ['*.go', 'dir/foo.go'],
    ['a?c', 'a/c'],
    ['[a-c]x', 'dx'],
    ['*', 'a/b'],
    ['a*b', 'a/b'],
    ['\\*', 'x'],
  ];
  for (const [p, n] of yes) assert.equal(goMatch(p, n), true, `${p} ~ ${n}`);
  for (const [p, n] of no) assert.equal(goMatch(p, n), false, `${p} !~ ${n}`);
  for (const bad of ['[', '[a-', 'a\\', '[]a]', '[a-]']) {
    assert.throws(
      () => goMatch(bad, 'x'),
      (e: unknown) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
      bad,
    );
  }
  assert.equal(hasWildcards('a\\*b'), false);
  assert.equal(hasWildcards('a[b'), true);
});

test('readDockerignore: BuildKit ignorefile.ReadAll', () => {
  const text = [
    '\ufeff# comment',
    '*.md',
    '  #notcomment  ',
    '/foo',
    './bar',
    'a/../baz/',
    '!  keep.txt',
    '',
    '   ',
    'win\r',
    '!',
  ].join('\n');
  assert.deepEqual(readDockerignore(text), [
    '*.md',
    '#notcomment',
    'foo',
    'bar',
    'baz',
    '!keep.txt',
    'win',
    '!',
  ]);
  assert.deepEqual(readDockerignore('x\ny'), ['x', 'y']);
  assert.deepEqual(readDockerignore(''), []);
});

/** What a walk from the root decides for `path` (every parent evaluated first). */
function excluded(patterns: string[], path: string): boolean {
  return !createPathFilter(undefined, readDockerignore(patterns.join('\n'))).matches(path, false);
}

test('dockerignore: the cases DEPENDENCIES.md §9 lists', () => {
  // `*.md` only at the root
  assert.equal(excluded(['*.md'], 'README.md'), true);
  assert.equal(excluded(['*.md'], 'docs/README.md'), false);
  // `foo` excludes everything below foo, not foobar
  assert.equal(excluded(['foo'], 'foo/bar.txt'), true);
  assert.equal(excluded(['foo'], 'foobar'), false);
  // `**/*.md` at any depth
  assert.equal(excluded(['**/*.md'], 'a/b/c.md'), true);
  assert.equal(excluded(['**/*.md'], 'c.md'), true);
  // re-include under an excluded directory
  assert.equal(excluded(['foo', '!foo/keep.txt'], 'foo/keep.txt'), false);
  assert.equal(excluded(['foo', '!foo/keep.txt'], 'foo/other.txt'), true);
  // leading /, ./ and .. are cleaned
  assert.equal(excluded(['/foo'], 'foo'), true);
  assert.equal(excluded(['./foo'], 'foo/x'), true);
  assert.equal(excluded(['foo/../bar'], 'bar'), true);
  // ? and classes
  assert.equal(excluded(['fo?'], 'fox'), true);
  assert.equal(excluded(['[a-c].txt'], 'b.txt'), true);
  assert.equal(excluded(['[a-c].txt'], 'd.txt'), false);
  // `*/temp*` one level only
  assert.equal(excluded(['*/temp*'], 'a/temporary'), true);
  assert.equal(excluded(['*/temp*'], 'a/b/temporary'), false);
  assert.equal(excluded(['*/temp*'], 'temporary'), false);
  // `a/**/b`
  assert.equal(excluded(['a/**/b'], 'a/b'), true);
  assert.equal(excluded(['a/**/b'], 'a/x/y/b'), true);
  assert.equal(excluded(['a/**/b'], 'a/x/c'), false);
  // "  #notcomment" is a pattern; a BOM line; `!  keep.txt`
  assert.equal(excluded(['  #notcomment'], '#notcomment'), true);
  assert.equal(excluded(['\ufeffsecret'], 'secret'), true);
  assert.equal(excluded(['*.txt', '!  keep.txt'], 'keep.txt'), false);
  assert.equal(excluded(['*.txt', '!  keep.txt'], 'other.txt'), true);
  // case-sensitive, unlike @balena/dockerignore's default
  assert.equal(excluded(['*.MD'], 'readme.md'), false);
  // regex metacharacters are literal
  assert.equal(excluded(['a+b(1).txt'], 'a+b(1).txt'), true);
  assert.equal(excluded(['a+b(1).txt'], 'aab1.txt'), false);
  // the last matching pattern wins
  assert.equal(excluded(['*.txt', '!keep.txt', 'keep.txt'], 'keep.txt'), true);
});

test('PatternMatcher: results handed down from the parent match a fresh evaluation', () => {
  const m = new PatternMatcher(['a', '!a/b', 'a/b/c']);
  const a = m.match('a', undefined);
  const ab = m.match('a/b', a.state);
  const abc = m.match('a/b/c', ab.state);
  const abd = m.match('a/b/d', ab.state);
  assert.deepEqual([a.matched, ab.matched, abc.matched, abd.matched], [true, false, true, false]);
  assert.throws(
    () => new PatternMatcher(['!']),
    (e: unknown) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
  );
  assert.throws(
    () => new PatternMatcher(['[']),
    (e: unknown) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
  );
});

test('createPathFilter: which excluded directories must still be walked', () => {
  const f = createPathFilter(undefined, ['node_modules', 'build', '!build/keep']);
  assert.equal(f.canSkipDir('node_modules'), true);
  assert.equal(f.canSkipDir('build'), false, 'a re-include below: walk it');
  assert.equal(f.canSkipDir('src'), false, 'selected');
  assert.equal(f.matches('build/keep/x', false), true);
  assert.equal(f.matches('build/other', false), false);
  // a re-include with a wildcard could be anywhere: nothing excluded may be skipped
  const g = createPathFilter(undefined, ['dist', '!**/*.keep']);
  assert.equal(g.canSkipDir('dist'), false);
  // include patterns: directories that cannot lead to an include are skipped
  const h = createPathFilter(['src/app', 'README.md'], undefined);
  assert.equal(h.matches('src', true), false);
  assert.equal(h.canSkipDir('src'), false);
  assert.equal(h.canSkipDir('docs'), true);
  assert.equal(h.matches('src/app/main.go', false), true);
  assert.equal(h.matches('src/lib/x.go', false), false);
  // include and exclude together
  const k = createPathFilter(['src'], ['src/**/*.test.ts']);
  assert.equal(k.matches('src/a.ts', false), true);
  assert.equal(k.matches('src/x/a.test.ts', false), false);
  assert.equal(k.matches('other', false), false);
});
