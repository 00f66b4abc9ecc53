// Runs every case of ../shared/conformance/dockerfile-parser: BuildKit's parser test files
// (AST dumps, negative files, line numbers) and the JSON transcriptions of its table tests
// (heredocs, directives, syntax detection, exec-form JSON, name=value, warnings, max line).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DrayError } from '../../../errors.ts';
import {
  chompHeredocContent,
  DirectiveParser,
  detectSyntax,
  dumpNode,
  errorLocations,
  type Heredoc,
  heredocsFromLine,
  parseDirective,
  parseDockerfile,
  parseHeredoc,
  parseJSONArray,
} from './index.ts';
import { parseNameVal } from './line-parsers.ts';

const dir = fileURLToPath(new URL('../../../../../shared/conformance/dockerfile-parser/', import.meta.url));

function subdirs(path: string): string[] {
  return readdirSync(path, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

describe('testfiles: AST dump equals result', () => {
  const cases = subdirs(`${dir}testfiles`);
  it('has the 33 upstream cases', () => assert.equal(cases.length, 33));
  for (const name of cases) {
    it(name, () => {
      const dockerfile = readFileSync(`${dir}testfiles/${name}/Dockerfile`);
      const expected = readFileSync(`${dir}testfiles/${name}/result`, 'utf8');
      assert.equal(`${dumpNode(parseDockerfile(dockerfile).ast)}\n`, expected);
      // A string parses the same as its bytes.
      assert.equal(`${dumpNode(parseDockerfile(dockerfile.toString('utf8')).ast)}\n`, expected);
    });
  }
});

describe('testfiles-negative: parsing fails', () => {
  const cases = subdirs(`${dir}testfiles-negative`);
  it('has the 4 upstream cases', () => assert.equal(cases.length, 4));
  for (const name of cases) {
    it(name, () => {
      const dockerfile = readFileSync(`${dir}testfiles-negative/${name}/Dockerfile`);
      assert.throws(
        () => parseDockerfile(dockerfile),
        (e: unknown) => e instanceof DrayError && e.code === 'DRAY_DOCKERFILE',
      );
    });
  }
});

interface HeredocJSON {
  Name: string;
  Content: string;
  Expand: boolean;
  Chomp: boolean;
  FileDescriptor: number;
}

function fromUpstream(h: HeredocJSON): Heredoc {
  return {
    name: h.Name,
    content: h.Content,
    expand: h.Expand,
    chomp: h.Chomp,
    fileDescriptor: h.FileDescriptor,
  };
}

const heredoc = JSON.parse(readFileSync(`${dir}heredoc.json`, 'utf8')) as {
  extractsHeredoc: {
    dockerfile: string;
    expected: Array<{ childIndex: number; label: string; heredocs: HeredocJSON[] | null }>;
  };
  jsonFormNoHeredoc: { dockerfile: string };
  chomp: { cases: Array<{ input: string; expected: string }> };
  parseHeredocWord: { valid: string[]; invalid: string[]; notHeredoc: string[] };
  heredocsFromLine: { cases: Array<{ line: string; heredocNames: string[] | null }> };
};

describe('heredoc.json', () => {
  describe('extractsHeredoc', () => {
    const { dockerfile, expected } = heredoc.extractsHeredoc;
    const children = parseDockerfile(dockerfile).ast.children;
    for (const c of expected) {
      it(`child ${c.childIndex}: ${c.label}`, () => {
        const child = children[c.childIndex];
        assert.ok(child, `child ${c.childIndex} exists`);
        assert.deepEqual(child.heredocs, (c.heredocs ?? []).map(fromUpstream));
      });
    }
  });

  it('jsonFormNoHeredoc', () => {
    const children = parseDockerfile(heredoc.jsonFormNoHeredoc.dockerfile).ast.children;
    assert.equal(children.length, 4);
    for (const child of children.slice(1)) {
      assert.equal(child.attributes.json, true);
      assert.deepEqual(child.heredocs, []);
    }
  });

  for (const c of heredoc.chomp.cases) {
    it(`chomp ${JSON.stringify(c.input)}`, () => assert.equal(chompHeredocContent(c.input), c.expected));
  }

  describe('parseHeredocWord', () => {
    for (const src of heredoc.parseHeredocWord.valid) {
      it(`valid ${src}`, () => assert.equal(parseHeredoc(src)?.name, 'EOF'));
    }
    for (const src of heredoc.parseHeredocWord.invalid) {
      it(`invalid ${src}`, () => assert.throws(() => parseHeredoc(src), DrayError));
    }
    for (const src of heredoc.parseHeredocWord.notHeredoc) {
      it(`not a heredoc ${JSON.stringify(src)}`, () => assert.equal(parseHeredoc(src), undefined));
    }
  });

  describe('heredocsFromLine', () => {
    // Upstream checks only the heredocs it gets back against the list (so `RUN <<- EOF`,
    // which BuildKit lexes as the words `<<-` and `EOF`, passes with none); do the same.
    for (const c of heredoc.heredocsFromLine.cases) {
      it(c.line, () => {
        const names = heredocsFromLine(c.line).map((h) => h.name);
        assert.deepEqual(names, (c.heredocNames ?? []).slice(0, names.length));
      });
    }
  });
});

interface DirectiveCase {
  name?: string;
  input: string;
  ok: boolean;
  ref?: string;
  value?: string;
  cmdline?: string;
  startLine?: number;
  endLine?: number;
}

const misc = JSON.parse(readFileSync(`${dir}parser-misc.json`, 'utf8')) as {
  jsonArraysOfStrings: {
    valid: Array<{ input: string; expected: string[] }>;
    invalidNotStringArray: string[];
  };
  directiveParser: { cases: Array<{ input: string; expected: Array<{ Name: string; Value: string }> }> };
  detectSyntax: { cases: DirectiveCase[] };
  parseDirective: { cases: DirectiveCase[] };
  parseNameVal: {
    cases: Array<{ cmd: string; input: string; expectedNodeValues?: string[]; expectError?: boolean }>;
  };
  lineNumbers: { file: string; astStartLine: number; astEndLine: number; children: Array<[number, number]> };
  emptyContinuationWarnings: { dockerfile: string };
  maxLineLength: {
    input: { prefix: string; repeatChar: string; repeatCount: number; suffix: string };
    expectedError: string;
  };
};

function checkDirective(
  got: ReturnType<typeof detectSyntax>,
  c: DirectiveCase,
  expectedValue: string | undefined,
): void {
  assert.equal(got !== undefined, c.ok);
  if (expectedValue !== undefined) assert.equal(got?.value ?? '', expectedValue);
  if (c.cmdline !== undefined) assert.equal(got?.cmdline ?? '', c.cmdline);
  if (c.startLine !== undefined) assert.equal(got?.location[0]?.start.line, c.startLine);
  if (c.endLine !== undefined) assert.equal(got?.location.at(-1)?.end.line, c.endLine);
}

describe('parser-misc.json', () => {
  describe('jsonArraysOfStrings', () => {
    for (const c of misc.jsonArraysOfStrings.valid) {
      it(`valid ${c.input}`, () => assert.deepEqual(parseJSONArray(c.input), c.expected));
    }
    for (const input of misc.jsonArraysOfStrings.invalidNotStringArray) {
      it(`not strings ${input}`, () => {
        assert.equal(parseJSONArray(input), 'not-strings');
        assert.throws(() => parseDockerfile(`CMD ${input}`), {
          message: 'when using JSON array syntax, arrays must be comprised of strings only',
        });
      });
    }
  });

  describe('directiveParser', () => {
    for (const c of misc.directiveParser.cases) {
      it(JSON.stringify(c.input), () => {
        const { directives, error } = new DirectiveParser().parseAll(c.input);
        assert.equal(error, undefined);
        assert.deepEqual(
          directives.map((d) => ({ Name: d.name, Value: d.value })),
          c.expected,
        );
      });
    }
  });

  describe('detectSyntax', () => {
    for (const c of misc.detectSyntax.cases) {
      it(JSON.stringify(c.input), () => checkDirective(detectSyntax(c.input), c, c.ref));
    }
  });

  describe('parseDirective', () => {
    for (const c of misc.parseDirective.cases) {
      it(JSON.stringify(c.input), () => checkDirective(parseDirective(c.name ?? '', c.input), c, c.value));
    }
  });

  describe('parseNameVal', () => {
    for (const c of misc.parseNameVal.cases) {
      it(`${c.cmd} ${c.input}`, () => {
        if (c.expectError) {
          assert.throws(() => parseNameVal(c.input, c.cmd, '\\'), {
            message: `${c.cmd} must have two arguments`,
          });
          return;
        }
        const values: string[] = [];
        for (let n = parseNameVal(c.input, c.cmd, '\\'); n; n = n.next) values.push(n.value);
        assert.deepEqual(values, c.expectedNodeValues);
      });
    }
  });

  it('lineNumbers', () => {
    const c = misc.lineNumbers;
    const ast = parseDockerfile(readFileSync(`${dir}${c.file}`)).ast;
    assert.equal(ast.startLine, c.astStartLine);
    assert.equal(ast.endLine, c.astEndLine);
    assert.deepEqual(
      ast.children.map((n) => [n.startLine, n.endLine]),
      c.children,
    );
  });

  it('emptyContinuationWarnings', () => {
    const { warnings } = parseDockerfile(misc.emptyContinuationWarnings.dockerfile);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0]!.message, /Empty continuation line found in/);
    assert.ok(warnings[0]!.message.includes('RUN something     following     more'));
    assert.ok(warnings[1]!.message.includes('RUN another     thing'));
    assert.match(warnings[0]!.detail[0]!, /will become errors in a future release/);
  });

  it('maxLineLength', () => {
    const { prefix, repeatChar, repeatCount, suffix } = misc.maxLineLength.input;
    const text = prefix + repeatChar.repeat(repeatCount) + suffix;
    for (const input of [text, Buffer.from(text)]) {
      assert.throws(
        () => parseDockerfile(input),
        (e: unknown) => {
          assert.ok(e instanceof DrayError);
          assert.equal(e.code, 'DRAY_DOCKERFILE');
          assert.equal(e.message, misc.maxLineLength.expectedError);
          assert.ok(errorLocations(e));
          return true;
        },
      );
    }
  });
});
