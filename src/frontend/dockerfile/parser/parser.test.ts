// Unit tests of the parser beyond the conformance files: BuildKit's error wording and the
// lines errors point at, directives, comments, continuations, heredocs, flags, CRLF input
// and the size limit. Expected dumps were checked against BuildKit's own parser.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DrayError } from '../../../errors.ts';
import {
  dumpNode,
  errorLocations,
  instructionError,
  newNode,
  nodeArgs,
  type ParseResult,
  parseDockerfile,
  parseFlags,
  suggestName,
  unknownInstructionError,
} from './index.ts';

function parseError(text: string, o?: { rejectUnknownInstructions?: boolean }): DrayError {
  try {
    parseDockerfile(text, o);
  } catch (e) {
    assert.ok(e instanceof DrayError);
    assert.equal(e.code, 'DRAY_DOCKERFILE');
    return e;
  }
  assert.fail('expected a parse error');
}

function lines(e: DrayError): number[] {
  return (errorLocations(e)?.[0] ?? []).map((r) => r.start.line);
}

function dump(r: ParseResult): string {
  return dumpNode(r.ast);
}

describe('errors', () => {
  const cases: Array<[string, string, string, number[]]> = [
    ['empty file', '', 'file with no instructions', [0]],
    ['only comments', '# a\n\n# b\n', 'file with no instructions', [3]],
    ['ENV without value', 'FROM a\n\nENV PATH\n', 'ENV must have two arguments', [3]],
    ['LABEL without value', 'FROM a\nLABEL foo\n', 'LABEL must have two arguments', [2]],
    [
      'name=value form',
      'FROM a\nENV a=b \\\n  c\n',
      `Syntax error - can't find = in "c". Must be of the form: name=value`,
      [2, 3],
    ],
    ['bad escape directive', '# escape=x\nFROM a\n', "invalid escape token 'x' does not match ` or \\", [1]],
    [
      'repeated directive',
      '# escape=`\n# escape=\\\nFROM a\n',
      'only one escape parser directive can be used',
      [2],
    ],
    ['unterminated heredoc', 'FROM a\nRUN <<EOF\necho\n', 'unterminated heredoc', [2, 3]],
    [
      'exec form with a number',
      'FROM a\nCMD ["a", 1]\n',
      'when using JSON array syntax, arrays must be comprised of strings only',
      [2],
    ],
  ];
  for (const [name, text, message, where] of cases) {
    it(name, () => {
      const e = parseError(text);
      assert.equal(e.message, message);
      assert.deepEqual(lines(e), where);
      assert.ok(e.hint);
    });
  }

  it('unknown instructions are kept by default, as upstream', () => {
    assert.equal(dump(parseDockerfile('FROM a\nRUNN x\nfoo\n')), '(from "a")\n(runn "")\n(foo "")');
  });

  it('rejectUnknownInstructions reports the first one with a suggestion', () => {
    const e = parseError('FROM a\n\nRUNN x\n', { rejectUnknownInstructions: true });
    assert.equal(
      e.message,
      'dockerfile parse error on line 3: unknown instruction: RUNN (did you mean RUN?)',
    );
    assert.deepEqual(lines(e), [3]);
    const lower = parseError('from a\ncopi x y\n', { rejectUnknownInstructions: true });
    assert.equal(
      lower.message,
      'dockerfile parse error on line 2: unknown instruction: copi (did you mean copy?)',
    );
    const far = parseError('FROM a\nBADCMD\n', { rejectUnknownInstructions: true });
    assert.equal(far.message, 'dockerfile parse error on line 2: unknown instruction: BADCMD');
  });

  it('the instruction-layer helpers word errors as BuildKit', () => {
    const node = parseDockerfile('FROM a\nRUN \\\n  x\n').ast.children[1]!;
    assert.equal(instructionError(node, 'boom').message, 'dockerfile parse error on line 2: boom');
    assert.deepEqual(lines(instructionError(node, 'boom')), [2, 3]);
    assert.equal(
      unknownInstructionError(newNode({ value: 'ENTRYPIONT', startLine: 7 })).message,
      'dockerfile parse error on line 7: unknown instruction: ENTRYPIONT (did you mean ENTRYPOINT?)',
    );
    assert.equal(suggestName('form', ['from', 'mount'], true), 'from');
    assert.equal(suggestName('from', ['from'], true), undefined);
    assert.equal(suggestName('Zzzzz', ['from'], true), undefined);
  });
});

describe('size limit', () => {
  const label = (n: number) => `FROM a\nLABEL x=${'a'.repeat(n - 'LABEL x='.length)}`;
  it('accepts a 65535-byte line plus newline, rejects one byte more', () => {
    assert.doesNotThrow(() => parseDockerfile(`${label(65535)}\n`));
    assert.equal(
      parseError(`${label(65536)}\n`).message,
      'dockerfile line greater than max allowed size of 65535',
    );
  });
  it('a last line without newline must be shorter than 65536 bytes', () => {
    assert.doesNotThrow(() => parseDockerfile(label(65535)));
    assert.throws(() => parseDockerfile(label(65536)), /max allowed size of 65535/);
    assert.throws(() => parseDockerfile(Buffer.from(label(65536))), /max allowed size of 65535/);
  });
  it('counts UTF-8 bytes', () => {
    const line = `FROM a\nLABEL x=${'é'.repeat(32763)}\n`; // 8 + 65526 + 1 bytes
    assert.doesNotThrow(() => parseDockerfile(line));
    assert.throws(() => parseDockerfile(line.replace('x=', 'xyzw=')), /max allowed size/);
  });
  it('a first line over the limit leaves no instructions', () => {
    assert.equal(parseError(`LABEL x=${'a'.repeat(70000)}\nFROM a\n`).message, 'file with no instructions');
  });
});

describe('directives', () => {
  it('reads escape, syntax and check from the top', () => {
    const r = parseDockerfile(
      '# syntax=docker/dockerfile:1 x\n# ESCAPE = `\n# check=skip=all;error=true\nFROM a `\n  b\n',
    );
    assert.equal(r.escapeToken, '`');
    assert.equal(r.directives.escape, '`');
    assert.equal(r.directives.syntax, 'docker/dockerfile:1');
    assert.equal(r.directives.check, 'skip=all;error=true');
    assert.deepEqual(
      r.directives.list.map((d) => [d.name, d.value, d.location[0]!.start.line]),
      [
        ['syntax', 'docker/dockerfile:1 x', 1],
        ['escape', '`', 2],
        ['check', 'skip=all;error=true', 3],
      ],
    );
    assert.equal(dump(r), '(from "a" "b")');
  });

  it('a shebang line ends the directives of the parser', () => {
    const r = parseDockerfile('#!/bin/sh\n# escape=`\nFROM a\nRUN a `\n b\n');
    assert.equal(r.escapeToken, '\\');
    assert.equal(dump(r), '(from "a")\n(run "a `")\n(b "")');
    assert.deepEqual(r.ast.children[0]!.prevComment, ['!/bin/sh', 'escape=`']);
  });

  it('an unclosed quote on a RUN line means no heredocs, not an error (upstream)', () => {
    assert.deepEqual(parseDockerfile('FROM a\nRUN <<"EOF x\n').ast.children[1]!.heredocs, []);
  });

  it('a byte-order mark before the first directive is ignored', () => {
    for (const input of [
      '\ufeff# escape=`\nFROM a `\n  b\n',
      Buffer.from('\ufeff# escape=`\nFROM a `\n  b\n'),
    ]) {
      const r = parseDockerfile(input);
      assert.equal(r.escapeToken, '`');
      assert.equal(dump(r), '(from "a" "b")');
    }
  });

  it('comments before an instruction are kept; directives and "#" lines are not', () => {
    const r = parseDockerfile('# syntax=x\n# ESCAPE = `\n\n# a comment\n\n# b\nFROM a\n#\n# c\nRUN x\n');
    assert.deepEqual(
      r.ast.children.map((c) => c.prevComment),
      [['a comment', 'b'], ['c']],
    );
    assert.equal(r.directives.escape, '`');
  });
});

describe('continuations', () => {
  it('joins lines, drops comment lines and warns on empty ones', () => {
    const r = parseDockerfile('FROM a\nRUN x \\\n  # note\n\n  y\n');
    assert.equal(dump(r), '(from "a")\n(run "x   y")');
    assert.deepEqual(
      r.warnings.map((w) => [w.message, w.line]),
      [['Empty continuation line found in: RUN x   y', 5]],
    );
    assert.equal(r.warnings[0]!.url, 'https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/');
    assert.deepEqual([r.ast.children[1]!.startLine, r.ast.children[1]!.endLine], [2, 5]);
  });

  it('a continuation at the end of the file ends the instruction', () => {
    const r = parseDockerfile('FROM a\nRUN x \\\n\n');
    assert.equal(dump(r), '(from "a")\n(run "x")');
    assert.equal(r.ast.children[1]!.original, 'RUN x ');
    assert.equal(r.warnings.length, 1);
  });

  it('reads CRLF files', () => {
    const r = parseDockerfile('FROM a\r\nRUN a \\\r\n  b\r\nCOPY <<EOF /x\r\nhi\r\nEOF\r\n');
    assert.equal(dump(r), '(from "a")\n(run "a   b")\n(copy "<<EOF" "/x")');
    assert.deepEqual(r.ast.children[2]!.heredocs, [
      { name: 'EOF', content: 'hi\r\n', expand: true, chomp: false, fileDescriptor: 0 },
    ]);
  });
});

describe('heredocs', () => {
  const r = parseDockerfile(
    'FROM a\nONBUILD RUN <<EOF\nbody\nEOF\nRUN <<- EOF\nCOPY 2<<"A" <<-B /d\na $x\nA\n\tb\n\tB\nCMD ["<<X"]\n',
  );
  const [, onbuild, dashSpace, copy, cmd] = r.ast.children;
  it('ONBUILD RUN takes heredocs', () => {
    assert.deepEqual(onbuild!.heredocs, [
      { name: 'EOF', content: 'body\n', expand: true, chomp: false, fileDescriptor: 0 },
    ]);
    assert.deepEqual([onbuild!.startLine, onbuild!.endLine], [2, 4]);
  });
  it('`<<- EOF` (blank after the dash) is not a heredoc upstream', () => {
    assert.deepEqual(dashSpace!.heredocs, []);
  });
  it('several heredocs, descriptors, quoting and chomp', () => {
    assert.deepEqual(copy!.heredocs, [
      { name: 'A', content: 'a $x\n', expand: false, chomp: false, fileDescriptor: 2 },
      { name: 'B', content: '\tb\n', expand: true, chomp: true, fileDescriptor: 0 },
    ]);
    assert.deepEqual([copy!.startLine, copy!.endLine], [6, 10]);
  });
  it('exec form never has heredocs', () => {
    assert.equal(cmd!.attributes.json, true);
    assert.deepEqual(cmd!.heredocs, []);
  });
  it('dump', () => {
    assert.equal(
      dump(r),
      '(from "a")\n(onbuild (run "<<EOF"))\n(run "<<- EOF")\n(copy "2<<\\"A\\"" "<<-B" "/d")\n(cmd "<<X")',
    );
  });
});

describe('flags', () => {
  const r = parseDockerfile(
    'FROM a\nCOPY --chown=é --from="b c" -- --x y\nRUN --mount=type=cache,target=/x --mount=type=secret,id=s echo\nCMD ["a", "\\u00a0\\u0001"]\n',
  );
  const [, copy, run] = r.ast.children;
  it('are split off as upstream, bytes and all', () => {
    assert.equal(
      dump(r),
      '(from "a")\n(copy ["--chown=Ã©" "--from=b c"] "--x" "y")\n' +
        '(run ["--mount=type=cache,target=/x" "--mount=type=secret,id=s"] "echo")\n(cmd "a" "\\u00a0\\x01")',
    );
  });
  it('parseFlags types the values', () => {
    const spec = { from: { type: 'string' }, chown: { type: 'string' }, link: { type: 'bool' } } as const;
    const f = parseFlags(copy!, spec);
    assert.deepEqual(f.values, { from: 'b c', chown: 'Ã©', link: false });
    assert.deepEqual(f.used, ['chown', 'from']);
    const m = parseFlags(run!, {
      mount: { type: 'strings' },
      network: { type: 'string', default: 'default' },
    });
    assert.deepEqual(m.values, { mount: ['type=cache,target=/x', 'type=secret,id=s'], network: 'default' });
    assert.deepEqual(
      parseFlags(['--link', '--keep=FALSE'], {
        link: { type: 'bool' },
        keep: { type: 'bool', default: true },
      }).values,
      {
        link: true,
        keep: false,
      },
    );
  });
  it('parseFlags words errors as BuildKit', () => {
    const spec = { from: { type: 'string' }, link: { type: 'bool' }, mount: { type: 'strings' } } as const;
    const cases: Array<[string[], string]> = [
      [['--frm=x'], 'unknown flag: --frm (did you mean from?)'],
      [['--zzzzzz'], 'unknown flag: --zzzzzz'],
      [['--from=a', '--from=b'], 'duplicate flag specified: --from'],
      [['--from'], 'missing a value on flag: --from'],
      [['--mount'], 'missing a value on flag: --mount'],
      [['--link='], 'missing a value on flag: --link'],
      [['--link=yes'], 'expecting boolean value for flag --link, not: yes'],
      [['-x'], 'arg should start with -- : -x'],
    ];
    for (const [flags, message] of cases) {
      assert.throws(() => parseFlags(flags, spec), { message });
    }
    assert.throws(() => parseFlags(copy!, { from: { type: 'string' } }), {
      message: 'dockerfile parse error on line 2: unknown flag: --chown',
    });
  });
});

describe('exec form JSON decodes as Go does', () => {
  it('a number beyond float64 makes it shell form', () => {
    assert.equal(dump(parseDockerfile('CMD ["a", 1e400]\n')), '(cmd "[\\"a\\", 1e400]")');
  });
  it('nesting deeper than 10000 is not JSON; up to it, not strings', () => {
    const nest = (n: number) => `CMD [${'['.repeat(n)}${']'.repeat(n)}]\n`;
    assert.equal(parseDockerfile(nest(10000)).ast.children[0]!.attributes.json, false);
    assert.throws(() => parseDockerfile(nest(9998)), /arrays must be comprised of strings only/);
  });
  it('a lone surrogate escape decodes to U+FFFD', () => {
    assert.deepEqual(nodeArgs(parseDockerfile('CMD ["\\ud800x"]\n').ast.children[0]!), ['\ufffdx']);
  });
});

describe('nodes', () => {
  it('nodeArgs flattens ONBUILD as the instruction layer does', () => {
    const [onbuild, env] = parseDockerfile('ONBUILD RUN a b\nENV k=v x=y\n').ast.children;
    assert.deepEqual(nodeArgs(onbuild!), ['RUN', 'a b']);
    assert.deepEqual(nodeArgs(env!), ['k', 'v', '=', 'x', 'y', '=']);
  });
  it('keeps the original line, flags and json attribute', () => {
    const [run] = parseDockerfile('RUN --network=none \\\n  ["a", "b"]\n').ast.children;
    assert.equal(run!.original, 'RUN --network=none   ["a", "b"]');
    assert.deepEqual(run!.flags, ['--network=none']);
    assert.equal(run!.attributes.json, true);
    assert.deepEqual(nodeArgs(run!), ['a', 'b']);
  });
});
