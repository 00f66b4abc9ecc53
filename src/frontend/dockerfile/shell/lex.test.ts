// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are shell words, not templates
// Unit tests of ShellLex beyond the conformance vectors: BuildKit's exact error wording, the
// backtick escape, the lexer switches the parser and instructions use, Go-regexp pattern
// semantics, and env inputs. Expected values were checked against BuildKit's own lexer.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DrayError } from '../../../errors.ts';
import { goQuote, goToLower } from './gotext.ts';
import { type EnvGetter, envsFromList, ShellLex } from './index.ts';

const lex = new ShellLex('\\');

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DrayError);
    assert.equal(e.code, 'DRAY_DOCKERFILE');
    return e.message;
  }
  assert.fail('expected an error');
}

describe('error wording', () => {
  const cases: Array<[string, string[], string]> = [
    ['${X:?}', [], 'failed to process "${X:?}": X: is not allowed to be unset'],
    ['${X:?}', ['X='], 'failed to process "${X:?}": X: is not allowed to be empty'],
    ['${X?custom msg}', [], 'failed to process "${X?custom msg}": X: custom msg'],
    ['${}', [], 'failed to process "${}": syntax error: bad substitution'],
    ['${X', [], 'failed to process "${X": unsupported modifier (\ufffd) in substitution'],
    ['${X:#a}', [], 'failed to process "${X:#a}": unsupported modifier (:#) in substitution'],
    ['${X/a}', [], `failed to process "\${X/a}": syntax error: missing '/' in \${}`],
    [
      '${X#\\a}',
      ['X=abc'],
      `failed to process "\${X#\\\\a}": invalid pattern (\\a) in substitution: invalid escape '\\a'`,
    ],
    [
      '"abc',
      [],
      'failed to process "\\"abc": unexpected end of statement while looking for matching double-quote',
    ],
    [
      "'abc",
      [],
      `failed to process "'abc": unexpected end of statement while looking for matching single-quote`,
    ],
    ['${X:-abc', [], `failed to process "\${X:-abc": syntax error: missing '}'`],
  ];
  for (const [word, env, message] of cases) {
    it(word, () => {
      assert.equal(
        errorOf(() => lex.processWord(word, env)),
        message,
      );
      assert.equal(
        errorOf(() => lex.processWords(word, env)),
        message,
      );
    });
  }
});

describe('patterns', () => {
  const cases: Array<[string, string, string]> = [
    ['${X//*/-}', 'X=abc', '-'], // Go skips the empty match right after `abc`
    ['${X//b/\\$0}', 'X=abc', 'a\\bc'], // replace-all expands Go's `$0` template…
    ['${X/b/\\$0}', 'X=abc', 'a\\$0c'], // …a single replace does not
    ['${X//[b]/-}', 'X=a[b]c', 'a-c'], // no bracket expressions: `[` is literal
    ['${X#*?}', 'X=\nab', '\nab'], // wildcards never match a newline
    ['${X%%b*}', 'X=abcbd', 'a'],
    ['${X%b*}', 'X=abcbd', 'abc'],
    ['${X##*/}', 'X=/usr/local/bin', 'bin'],
    ['${X#*/}', 'X=/usr/local/bin', 'usr/local/bin'],
  ];
  for (const [word, env, expected] of cases) {
    it(`${word} with ${JSON.stringify(env)}`, () => assert.equal(lex.processWord(word, [env]), expected));
  }
});

describe('escape token', () => {
  const tick = new ShellLex('`');
  it('backtick escapes like backslash, backslash is literal', () => {
    assert.equal(tick.processWord('"a`"b\\c"', []), 'a"b\\c');
    assert.equal(tick.processWord('a`$b \\n', ['b=B']), 'a$b \\n');
    assert.equal(tick.processWord('C:\\path\\$X', ['X=x']), 'C:\\path\\x');
  });
  it('rejects a multi-character token', () => {
    assert.throws(
      () => new ShellLex('ab'),
      (e: unknown) => e instanceof DrayError && e.code === 'DRAY_INVALID_ARGUMENT',
    );
  });
});

describe('switches', () => {
  it('skipUnsetEnv keeps references to unset variables as written', () => {
    const skip = new ShellLex('\\', { skipUnsetEnv: true });
    const r = skip.processWordWithMatches('a $X ${Y:-d} "q $Z"', ['X=1']);
    assert.equal(r.result, 'a 1 ${Y:-d} q $Z');
    assert.deepEqual([...r.matched], ['X']);
    assert.deepEqual([...r.unmatched].sort(), ['Y', 'Z']);
    assert.deepEqual(skip.processWords('a $X ${Y:-d} "q $Z"', ['X=1']), ['a', '1', '${Y:-d}', 'q $Z']);
  });
  it('rawQuotes and rawEscapes keep quotes and escapes', () => {
    const raw = new ShellLex('\\', { rawQuotes: true, rawEscapes: true });
    assert.deepEqual(raw.processWords(`a "b c" 'd' \\e`, []), ['a', '"b c"', "'d'", '\\e']);
  });
  it('skipProcessQuotes treats quotes as plain characters', () => {
    const plain = new ShellLex('\\', { skipProcessQuotes: true });
    assert.deepEqual(plain.processWords('a "b c"', []), ['a', '"b', 'c"']);
  });
});

describe('word splitting', () => {
  it('splits on whitespace from values but not inside quotes', () => {
    assert.deepEqual(lex.processWords('$V "$V"', ['V=a  b']), ['a', 'b', 'a  b']);
  });
  it('drops text before ${X:-…} in the same word, as upstream does', () => {
    // BuildKit's nested expansion clears the shared word buffer; ProcessWord is unaffected.
    assert.deepEqual(lex.processWords('hello${X:-a b}', []), ['a', 'b']);
    assert.equal(lex.processWord('hello${X:-a b}', []), 'helloa b');
  });
  it('keeps `<<` and the blanks after it in one word (heredoc openers)', () => {
    assert.deepEqual(lex.processWords('RUN <<  EOF  > x', []), ['RUN', '<<  EOF', '>', 'x']);
  });
});

describe('environments', () => {
  it('names are case-sensitive', () => {
    const r = lex.processWordWithMatches('$x $X', ['X=up']);
    assert.equal(r.result, ' up');
    assert.deepEqual([...r.unmatched], ['x']);
  });
  it('accepts a list, a Map, a record and an EnvGetter', () => {
    const getter: EnvGetter = { get: (k) => (k === 'A' ? 'g' : undefined), keys: () => ['A'] };
    assert.equal(lex.processWord('$A', ['A=l']), 'l');
    assert.equal(lex.processWord('$A', new Map([['A', 'm']])), 'm');
    assert.equal(lex.processWord('$A', { A: 'r' }), 'r');
    assert.equal(lex.processWord('$A', getter), 'g');
    assert.equal(lex.processWord('$toString', {}), '');
  });
  it('the last duplicate wins and keys keep their order', () => {
    const env = envsFromList(['A=1', 'B', 'A=2']);
    assert.equal(env.get('A'), '2');
    assert.equal(env.get('B'), '');
    assert.deepEqual(env.keys(), ['A', 'B', 'A']);
    assert.equal(envsFromList(['path=x'], { caseInsensitive: true }).get('PATH'), 'x');
  });
});

describe('Go text helpers', () => {
  it('goQuote matches strconv.Quote', () => {
    assert.equal(goQuote('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(goQuote('\u0000\u0007\n\t\u007f'), '"\\x00\\a\\n\\t\\x7f"');
    assert.equal(goQuote('\u00a0\u0085é♥'), '"\\u00a0\\u0085é♥"');
    assert.equal(goQuote('\u{1f600}\u{e0001}'), '"😀\\U000e0001"');
  });
  it('goToLower maps per character', () => {
    assert.equal(goToLower('RUN'), 'run');
    assert.equal(goToLower('ONBUİLD'), 'onbuild');
    assert.equal(goToLower('ΑΣ'), 'ασ');
  });
});
