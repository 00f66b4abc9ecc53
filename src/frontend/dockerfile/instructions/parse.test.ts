import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DrayError } from '../../../errors.ts';
import { errorLocations, parseDockerfile } from '../parser/index.ts';
import { parseCommand, parseInstruction, parseStages } from './parse.ts';
import type { Command, Stage } from './types.ts';

function stagesOf(text: string) {
  return parseStages(parseDockerfile(text).ast);
}

function only(text: string): Command {
  const { stages } = stagesOf(`FROM scratch\n${text}`);
  const c = stages[0]!.commands[0];
  assert.ok(c);
  return c;
}

function parseError(text: string): DrayError {
  try {
    stagesOf(text);
  } catch (e) {
    assert.ok(e instanceof DrayError, String(e));
    assert.equal(e.code, 'DRAY_DOCKERFILE');
    return e;
  }
  assert.fail(`expected ${JSON.stringify(text)} to fail`);
}

test('stages: meta ARGs before the first FROM, commands grouped under their FROM', () => {
  const { stages, metaArgs } = stagesOf(
    'ARG A=1\nARG B\nFROM busybox:$A AS Build\nRUN make\nFROM scratch\nCOPY --from=build /out /\n',
  );
  assert.deepEqual(
    metaArgs.map((a) => a.args),
    [[{ key: 'A', value: '1', docComment: '' }], [{ key: 'B', docComment: '' }]],
  );
  assert.equal(stages.length, 2);
  const s0 = stages[0] as Stage;
  assert.equal(s0.name, 'build'); // lower-cased
  assert.equal(s0.baseName, 'busybox:$A'); // expanded later
  assert.equal(s0.sourceCode, 'FROM busybox:$A AS Build');
  assert.deepEqual(s0.location, { startLine: 3, endLine: 3 });
  assert.deepEqual(
    stages[1]!.commands.map((c) => c.kind),
    ['copy'],
  );
});

test('errors: BuildKit wording with the line number', () => {
  const cases: Array<[string, string, number]> = [
    [
      'FROM a\nRUNN x\n',
      'dockerfile parse error on line 2: unknown instruction: RUNN (did you mean RUN?)',
      2,
    ],
    [
      'FROM a\nCOPY --frm=x a b\n',
      'dockerfile parse error on line 2: unknown flag: --frm (did you mean from?)',
      2,
    ],
    [
      'FROM a\nCOPY --from=x --from=y a b\n',
      'dockerfile parse error on line 2: duplicate flag specified: --from',
      2,
    ],
    ['FROM a\nCOPY --from a b\n', 'dockerfile parse error on line 2: missing a value on flag: --from', 2],
    [
      'FROM a\nCOPY --link=maybe a b\n',
      'dockerfile parse error on line 2: expecting boolean value for flag --link, not: maybe',
      2,
    ],
    [
      'FROM a\n\nCOPY a\n',
      'dockerfile parse error on line 3: COPY requires at least two arguments, but only one was provided. Destination could not be determined',
      3,
    ],
    [
      'FROM a AS 1x\n',
      `dockerfile parse error on line 1: invalid name for build stage: "1x", name can't start with a number or contain symbols`,
      1,
    ],
    ['FROM a b\n', 'dockerfile parse error on line 1: FROM requires either one or three arguments', 1],
    [
      'FROM a\nONBUILD ONBUILD RUN x\n',
      "dockerfile parse error on line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
      2,
    ],
    [
      'FROM a\nONBUILD FROM b\n',
      "dockerfile parse error on line 2: FROM isn't allowed as an ONBUILD trigger",
      2,
    ],
    [
      'FROM a\nSHELL /bin/sh -c\n',
      'dockerfile parse error on line 2: SHELL requires the arguments to be in JSON form',
      2,
    ],
    ['FROM a\nWORKDIR\n', 'dockerfile parse error on line 2: WORKDIR requires exactly one argument', 2],
    [
      'FROM a\nRUN --network=bridge x\n',
      'dockerfile parse error on line 2: invalid network mode "bridge"',
      2,
    ],
    ['FROM a\nRUN --security=x y\n', 'dockerfile parse error on line 2: security "x" is not valid', 2],
    [
      'FROM a\nRUN --mount=type=bind,from=$X,target=/x y\n',
      "dockerfile parse error on line 2: 'from' doesn't support variable expansion, define alias stage instead",
      2,
    ],
    [
      'FROM a\nRUN --mount=a\\"b z\n',
      'dockerfile parse error on line 2: failed to parse csv mounts: parse error on line 1, column 2: bare " in non-quoted-field',
      2,
    ],
    [
      'FROM a\nHEALTHCHECK --interval=1 CMD x\n',
      'dockerfile parse error on line 2: time: missing unit in duration "1"',
      2,
    ],
    [
      'FROM a\nHEALTHCHECK --timeout=10us CMD x\n',
      'dockerfile parse error on line 2: Interval "timeout" cannot be less than 1ms',
      2,
    ],
    [
      'FROM a\nHEALTHCHECK --retries=-1 CMD x\n',
      'dockerfile parse error on line 2: --retries cannot be negative (-1)',
      2,
    ],
    [
      'FROM a\nHEALTHCHECK NONE x\n',
      'dockerfile parse error on line 2: HEALTHCHECK NONE takes no arguments',
      2,
    ],
    [
      'FROM a\nHEALTHCHECK FOO x\n',
      'dockerfile parse error on line 2: Unknown type "FOO" in HEALTHCHECK (try CMD)',
      2,
    ],
    [
      'FROM a\nCOPY a <<EOF\nx\nEOF\n',
      'dockerfile parse error on line 2: COPY cannot accept a heredoc as a destination',
      2,
    ],
    ['FROM a\nARG =x\n', 'dockerfile parse error on line 2: ARG names can not be blank', 2],
    ['FROM a\nEXPOSE --x 80\n', 'dockerfile parse error on line 2: unknown flag: --x', 2],
  ];
  for (const [text, message, line] of cases) {
    const e = parseError(text);
    assert.equal(e.message, message, text);
    assert.equal(errorLocations(e)?.[0]?.[0]?.start.line, line, text);
  }
});

test('an instruction before the first FROM other than ARG has no stage', () => {
  const e = parseError('ENV a=b\nFROM x\n');
  assert.equal(e.message, 'no build stage in current context');
  assert.equal(errorLocations(e)?.[0]?.[0]?.start.line, 1);
});

test('parseInstruction reports plain messages; parseCommand refuses FROM', () => {
  const { ast } = parseDockerfile('COPY a\nFROM x\n');
  assert.throws(() => parseInstruction(ast.children[0]!), {
    message:
      'COPY requires at least two arguments, but only one was provided. Destination could not be determined',
  });
  assert.throws(() => parseCommand(ast.children[1]!), {
    message: '*instructions.Stage is not a command type',
  });
});

test('STOPSIGNAL and ARG ignore flags (upstream never parses them)', () => {
  assert.equal((only('STOPSIGNAL --x SIGTERM') as { signal: string }).signal, 'SIGTERM');
  const arg = only('ARG --x=1 A');
  assert.equal(arg.kind, 'arg');
});

test('ENV/LABEL pairs, legacy form flagged', () => {
  const env = only('ENV a=1 b="2 3"');
  assert.equal(env.kind, 'env');
  if (env.kind === 'env')
    assert.deepEqual(env.env, [
      { key: 'a', value: '1', noDelim: false },
      { key: 'b', value: '"2 3"', noDelim: false },
    ]);
  const legacy = only('ENV a b c');
  if (legacy.kind === 'env') assert.deepEqual(legacy.env, [{ key: 'a', value: 'b c', noDelim: true }]);
  const label = only('LABEL "x y"=z');
  if (label.kind === 'label') assert.deepEqual(label.labels, [{ key: '"x y"', value: 'z', noDelim: false }]);
});

test('COPY/ADD flags, sources, heredoc contents', () => {
  const c = only(
    'COPY --from=build --chown=1:2 --chmod=755 --link --exclude=*.md --exclude=x --parents a b /d/',
  );
  assert.equal(c.kind, 'copy');
  if (c.kind !== 'copy') return;
  assert.equal(c.from, 'build');
  assert.equal(c.chown, '1:2');
  assert.equal(c.chmod, '755');
  assert.equal(c.link, true);
  assert.equal(c.parents, true);
  assert.deepEqual(c.excludePatterns, ['*.md', 'x']);
  assert.deepEqual(c.sourcePaths, ['a', 'b']);
  assert.equal(c.destPath, '/d/');

  const h = only('COPY <<EOF <<-"EOT" /d/\nhello $X\nEOF\n\tworld\n\tEOT\n');
  if (h.kind !== 'copy') return assert.fail();
  assert.deepEqual(h.sourcePaths, []);
  assert.deepEqual(h.sourceContents, [
    { path: 'EOF', data: 'hello $X\n', expand: true },
    { path: 'EOT', data: 'world\n', expand: false },
  ]);

  const add = only('ADD --checksum=sha256:x --unpack=false --keep-git-dir https://x/y /z');
  if (add.kind !== 'add') return assert.fail();
  assert.equal(add.checksum, 'sha256:x');
  assert.equal(add.unpack, false);
  assert.equal(add.keepGitDir, true);
  const plain = only('ADD a b');
  if (plain.kind !== 'add') return assert.fail();
  assert.equal(plain.unpack, undefined);
  assert.equal(plain.keepGitDir, undefined);
});

test('RUN/CMD/ENTRYPOINT: shell form joined, exec form kept, ENTRYPOINT [] is none', () => {
  const run = only('RUN --mount=type=cache,target=/c --network=none echo  "a b"');
  if (run.kind !== 'run') return assert.fail();
  assert.deepEqual(run.cmdLine, ['echo  "a b"']);
  assert.equal(run.prependShell, true);
  assert.equal(run.network, 'none');
  assert.equal(run.security, 'sandbox');
  assert.deepEqual(run.mountSpecs, ['type=cache,target=/c']);
  const exec = only('RUN ["echo", "a b"]');
  if (exec.kind !== 'run') return assert.fail();
  assert.deepEqual(exec.cmdLine, ['echo', 'a b']);
  assert.equal(exec.prependShell, false);
  const ep = only('ENTRYPOINT []');
  if (ep.kind !== 'entrypoint') return assert.fail();
  assert.equal(ep.cmdLine, undefined);
  const cmd = only('CMD []');
  if (cmd.kind !== 'cmd') return assert.fail();
  assert.deepEqual(cmd.cmdLine, []);
  const hd = only('RUN <<EOF\necho hi\nEOF\n');
  if (hd.kind !== 'run') return assert.fail();
  assert.deepEqual(hd.files, [{ name: 'EOF', data: 'echo hi\n', chomp: false }]);
});

test('HEALTHCHECK: CMD-SHELL for shell form, durations in ns', () => {
  const h = only('HEALTHCHECK --interval=1m30s --timeout=1.5s --start-period=0 --retries=3 CMD curl -f x');
  if (h.kind !== 'healthcheck') return assert.fail();
  assert.deepEqual(h.health, {
    test: ['CMD-SHELL', 'curl -f x'],
    interval: 90e9,
    timeout: 1.5e9,
    startPeriod: 0,
    startInterval: 0,
    retries: 3,
  });
  const j = only('HEALTHCHECK CMD ["curl", "x"]');
  if (j.kind !== 'healthcheck') return assert.fail();
  assert.deepEqual(j.health.test, ['CMD', 'curl', 'x']);
  const n = only('healthcheck none');
  if (n.kind !== 'healthcheck') return assert.fail();
  assert.deepEqual(n.health.test, ['NONE']);
});

test('EXPOSE sorts its words as written; VOLUME trims; ONBUILD keeps the trigger text', () => {
  const e = only('EXPOSE 80 443/udp 8080');
  if (e.kind !== 'expose') return assert.fail();
  assert.deepEqual(e.ports, ['443/udp', '80', '8080']);
  const v = only('VOLUME ["/a", " /b "]');
  if (v.kind !== 'volume') return assert.fail();
  assert.deepEqual(v.volumes, ['/a', '/b']);
  const o = only('  onbuild   RUN echo "hi"');
  if (o.kind !== 'onbuild') return assert.fail();
  assert.equal(o.expression, 'RUN echo "hi"');
  const oh = only('ONBUILD RUN <<EOF\necho x\nEOF\n');
  if (oh.kind !== 'onbuild') return assert.fail();
  assert.equal(oh.expression, 'RUN <<EOF\necho x\nEOF');
});

test('doc comments of stages and ARGs', () => {
  const { stages } = stagesOf(
    '# build compiles the app\nFROM a AS build\n# VERSION the release\nARG VERSION=1\n',
  );
  assert.equal(stages[0]!.docComment, 'compiles the app');
  const arg = stages[0]!.commands[0]!;
  if (arg.kind !== 'arg') return assert.fail();
  assert.equal(arg.args[0]!.docComment, 'the release');
});
