// Runs every vector of ../shared/conformance/shell-lexer with the harness its README gives
// (the one of BuildKit's lex_test.go): envVarTest through processWord, wordsTest through
// processWords, and the JSON transcriptions of the table tests. Windows-only lines (`W`:
// case-insensitive env names) run too, with a case-insensitive env as on Windows.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DrayError } from '../../../errors.ts';
import { trimLeftSpace, trimSpace } from './gotext.ts';
import { type EnvInput, envsFromList, ShellLex } from './index.ts';

const dir = fileURLToPath(new URL('../../../../../shared/conformance/shell-lexer/', import.meta.url));

function lines(file: string): string[] {
  return readFileSync(`${dir}${file}`, 'utf8').split('\n');
}

function run(fn: () => string): string {
  try {
    return fn();
  } catch (e) {
    assert.ok(e instanceof DrayError, String(e));
    assert.equal(e.code, 'DRAY_DOCKERFILE');
    assert.match(e.message, /^failed to process "/);
    return 'error';
  }
}

describe('envVarTest (processWord)', () => {
  const lex = new ShellLex('\\');
  const env = ['PWD=/home', 'SHELL=bash', 'KOREAN=한국어', 'NULL='];
  const unix = envsFromList(env);
  const windows = envsFromList(env, { caseInsensitive: true });
  let count = 0;
  lines('envVarTest').forEach((raw, i) => {
    if (raw.startsWith('#')) return;
    const line = trimSpace(raw);
    if (line === '') return;
    const parts = line.split('|');
    assert.equal(parts.length, 3, `line ${i + 1}`);
    const [platform, source, expected] = parts.map(trimSpace) as [string, string, string];
    count++;
    it(`line ${i + 1} ${platform}: ${source}`, () => {
      const e = platform === 'W' ? windows : unix;
      assert.equal(
        run(() => lex.processWord(source, e)),
        expected,
      );
    });
  });
  it('read all 230 vectors', () => assert.equal(count, 230));
});

describe('wordsTest (processWords)', () => {
  const lex = new ShellLex('\\');
  const env: string[] = [];
  let count = 0;
  lines('wordsTest').forEach((raw, i) => {
    if (raw.startsWith('#')) return;
    if (raw.startsWith('ENV ')) {
      env.push(raw.slice(3).replace(/^ +/, ''));
      return;
    }
    const parts = raw.split('|');
    if (parts.length !== 2) {
      assert.equal(trimSpace(raw), '', `line ${i + 1}`);
      return;
    }
    const input = trimSpace(parts[0]!);
    const expected = parts[1]!.replace(/^ +/, '').split(',');
    const snapshot = [...env];
    count++;
    it(`line ${i + 1}: ${input}`, () => {
      let words: string[];
      try {
        words = lex.processWords(input, snapshot);
      } catch (e) {
        assert.ok(e instanceof DrayError);
        words = ['error'];
      }
      assert.deepEqual(words, expected);
    });
  });
  it('read all 24 vectors', () => assert.equal(count, 24));
});

interface MatchCase {
  input: string;
  envs: Record<string, string>;
  expectError: boolean;
  expected?: string;
  matches?: string[];
  unmatched?: string[];
}

describe('process-with-matches.json', () => {
  const { cases } = JSON.parse(readFileSync(`${dir}process-with-matches.json`, 'utf8')) as {
    cases: MatchCase[];
  };
  const lex = new ShellLex('\\');
  cases.forEach((c, i) => {
    it(`${i}: ${c.input} ${JSON.stringify(c.envs)}`, () => {
      if (c.expectError) {
        assert.throws(() => lex.processWordWithMatches(c.input, c.envs), DrayError);
        return;
      }
      const r = lex.processWordWithMatches(c.input, c.envs);
      assert.equal(r.result, c.expected);
      assert.deepEqual([...r.matched].sort(), [...(c.matches ?? [])].sort());
      assert.deepEqual([...r.unmatched].sort(), [...(c.unmatched ?? [])].sort());
    });
  });
});

describe('lex-misc.json', () => {
  const misc = JSON.parse(readFileSync(`${dir}lex-misc.json`, 'utf8')) as {
    mandatoryEnvVars: {
      cases: Array<{ input: string; envs: string[]; expected?: string; expectErrorContains?: string }>;
    };
    processWithMatchesPlatform: {
      cases: Array<{ input: string; envs: Record<string, string>; expected: string }>;
    };
    getEnv: { cases: Array<{ envs: string[]; name: string; expected: string }> };
  };
  const lex = new ShellLex('\\');

  misc.mandatoryEnvVars.cases.forEach((c, i) => {
    it(`mandatoryEnvVars ${i}: ${c.input} ${JSON.stringify(c.envs)}`, () => {
      const env: EnvInput = envsFromList(c.envs);
      if (c.expectErrorContains !== undefined) {
        assert.throws(
          () => lex.processWord(c.input, env),
          (e: unknown) => e instanceof DrayError && e.message.includes(c.expectErrorContains!),
        );
      } else {
        assert.equal(lex.processWord(c.input, env), c.expected);
      }
    });
  });

  misc.processWithMatchesPlatform.cases.forEach((c, i) => {
    it(`processWithMatchesPlatform ${i}`, () => {
      assert.equal(lex.processWordWithMatches(c.input, c.envs).result, c.expected);
    });
  });

  misc.getEnv.cases.forEach((c, i) => {
    it(`getEnv ${i}: ${JSON.stringify(c.envs)} ${c.name}`, () => {
      assert.equal(envsFromList(c.envs).get(c.name) ?? '', c.expected);
      // The same lookup through expansion.
      assert.equal(lex.processWord(`$${c.name}`, c.envs), c.expected);
    });
  });
});

// Keep the helpers honest: the harness trims as Go's strings.TrimSpace/TrimLeft do.
it('harness trimming matches Go', () => {
  assert.equal(trimSpace('\u0085 a \u00a0'), 'a');
  assert.equal(trimLeftSpace('\ufeffa'), '\ufeffa');
});
