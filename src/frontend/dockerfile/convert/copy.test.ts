import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DrayError } from '../../../errors.ts';
import type { CopyAction, FileOp, MergeOp, SourceOp } from '../../../solver/index.ts';
import { isGitSource, isHttpSource, parseChmod } from './copy.ts';
import { convert } from './testing.ts';

async function lastFile(text: string, o: Parameters<typeof convert>[1] = {}) {
  const c = await convert(text, o);
  const v = c.vertices.at(-1)!;
  return { c, v, op: v.op as FileOp, actions: (v.op as FileOp).actions as CopyAction[] };
}

const local = {
  followSymlinks: true,
  dirCopyContents: true,
  createDestPath: true,
  allowWildcard: true,
  allowEmptyWildcard: true,
};

test('COPY from the context: one shared context source, sources absolute, dest against WORKDIR', async () => {
  const { c, v, actions } = await lastFile('FROM busybox\nWORKDIR /app\nCOPY a ./b/ *.txt dir/. .\n');
  assert.deepEqual(
    actions.map((a) => [a.src, a.dest]),
    [
      ['/a', '/app/'],
      ['/b', '/app/'],
      ['/*.txt', '/app/'],
      ['/dir', '/app/'],
    ],
  );
  assert.deepEqual(
    { ...actions[0], src: undefined, dest: undefined, input: undefined, action: undefined },
    {
      ...local,
      src: undefined,
      dest: undefined,
      input: undefined,
      action: undefined,
    },
  );
  const ctx = c.vertices[v.inputs[actions[0]!.input]!]!;
  assert.deepEqual(ctx.op, { kind: 'source', source: { type: 'local', name: 'context' } });
  assert.equal(ctx.name, '[internal] load build context');
  assert.equal(c.graph.config.history?.at(-1)?.created_by, 'COPY a ./b/ *.txt dir/. . # buildkit');
  const both = await convert('FROM busybox\nCOPY a /a\nCOPY b /b\n', {
    excludes: ['*.log'],
    contextName: 'ctx',
  });
  const sources = both.vertices.filter(
    (x) => x.op.kind === 'source' && (x.op as SourceOp).source.type === 'local',
  );
  assert.deepEqual(
    sources.map((x) => x.op),
    [{ kind: 'source', source: { type: 'local', name: 'ctx', exclude: ['*.log'] } }],
  );
});

test('COPY destination forms keep a trailing slash or /.; relative to an empty workdir is /', async () => {
  const dests = async (line: string) =>
    (await lastFile(`FROM scratch\n${line}\n`)).actions.map((a) => a.dest);
  assert.deepEqual(await dests('COPY a b'), ['/b']);
  assert.deepEqual(await dests('COPY a b/'), ['/b/']);
  assert.deepEqual(await dests('COPY a /x/./y/..//z/.'), ['/x/z/.']);
  assert.deepEqual(await dests('COPY a .'), ['/']);
  const noWorkdir = await lastFile('FROM nowd\nCOPY a rel/\n', {
    images: {
      'docker.io/library/nowd:latest': {
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [] },
        config: {},
        history: [{ created_by: 'x' }],
      },
    },
  });
  assert.deepEqual(
    noWorkdir.actions.map((a) => a.dest),
    ['/rel/'],
  );
});

test('COPY --chown, --chmod (octal normalised, symbolic kept), --exclude, history flags', async () => {
  const { actions, c } = await lastFile(
    'FROM busybox\nARG U=app\nCOPY --chown=$U:staff --chmod=755 --exclude=*.md a /a\n',
  );
  assert.deepEqual(actions[0]!.chown, { user: 'app', group: 'staff' });
  assert.equal(actions[0]!.chmod, '0755');
  assert.deepEqual(actions[0]!.exclude, ['*.md']);
  assert.equal(
    c.graph.config.history?.at(-1)?.created_by,
    'COPY --chown=app:staff --chmod=755 a /a # buildkit',
  );
  assert.equal(parseChmod('4755'), '04755');
  assert.equal(parseChmod('0'), '0000');
  assert.equal(parseChmod('u+rwx,g=rx,o-w'), 'u+rwx,g=rx,o-w');
  assert.throws(() => parseChmod('10000'), {
    message: "invalid chmod parameter: '10000'. it should be octal string and between 0 and 07777",
  });
  assert.throws(() => parseChmod('0789'), {
    message: "invalid chmod parameter: '0789'. it should be octal string and between 0 and 07777",
  });
  assert.throws(() => parseChmod('u+q'), { message: 'invalid syntax' });
  assert.throws(() => parseChmod('u'), { message: 'invalid syntax' });
});

test('COPY --from a stage reads from its filesystem, paths from its root', async () => {
  const { c, v, actions, op } = await lastFile(
    'FROM busybox AS build\nWORKDIR /src\nRUN make\nFROM scratch\nCOPY --from=build out/app /usr/bin/\n',
  );
  assert.equal(op.base, undefined, 'scratch base');
  assert.equal(actions[0]!.src, '/out/app');
  assert.equal(c.vertices[v.inputs[actions[0]!.input]!]!.name, '[build 3/3] RUN make');
  assert.equal(c.graph.config.history?.at(-1)?.created_by, 'COPY out/app /usr/bin/ # buildkit');
});

test('COPY --link: copy onto scratch merged over the stage, named LINK; not with --chmod', async () => {
  const c = await convert('FROM busybox\nCOPY --link a /a\n');
  const merge = c.vertices.at(-1)!;
  assert.equal((merge.op as MergeOp).kind, 'merge');
  assert.equal(merge.name, '[2/2] LINK COPY --link a /a');
  const layer = c.vertices[merge.inputs[1]!]!;
  assert.equal(layer.name, '[2/2] COPY --link a /a');
  assert.equal((layer.op as FileOp).base, undefined);
  const chmod = await lastFile('FROM busybox\nCOPY --link --chmod=600 a /a\n');
  assert.equal(chmod.op.kind, 'file');
  assert.notEqual(chmod.op.base, undefined);
});

test('COPY --parents: the source root with an include pattern, or a /./ pivot', async () => {
  const { actions } = await lastFile('FROM scratch\nCOPY --parents src/a/b.go ./docs/./x/*.md /dst/\n');
  assert.deepEqual(
    actions.map((a) => [a.src, a.include, a.requiredPaths]),
    [
      ['/', ['src/a/b.go'], ['/src/a/b.go']],
      ['/docs', ['x/*.md'], undefined],
    ],
  );
});

test('COPY heredoc: an inline document copied in; expanded unless the delimiter is quoted', async () => {
  const { c, v, actions } = await lastFile(
    'FROM busybox\nARG V=1\nCOPY <<EOF <<"RAW" /etc/\nv=$V\nEOF\nv=$V\nRAW\n',
  );
  assert.deepEqual(
    actions.map((a) => [a.src, a.dest]),
    [
      ['/EOF', '/etc/'],
      ['/RAW', '/etc/'],
    ],
  );
  const docs = actions.map((a) => c.vertices[v.inputs[a.input]!]!);
  assert.deepEqual(
    docs.map((d) => [d.name, (d.op as FileOp).actions]),
    [
      [
        '[internal] preparing inline document',
        [{ action: 'mkfile', path: '/EOF', mode: 0o644, data: 'v=1\n' }],
      ],
      [
        '[internal] preparing inline document',
        [{ action: 'mkfile', path: '/RAW', mode: 0o644, data: 'v=$V\n' }],
      ],
    ],
  );
  assert.equal(c.graph.config.history?.at(-1)?.created_by, 'COPY <<EOF <<RAW /etc/ # buildkit');
});

test('ADD: local archives are extracted unless --unpack=false; URLs download with a checksum', async () => {
  const tar = await lastFile('FROM busybox\nADD app.tar.gz /opt/\n');
  assert.deepEqual(tar.actions[0], {
    action: 'copy',
    input: 1,
    src: '/app.tar.gz',
    dest: '/opt/',
    ...local,
    extractArchive: true,
  });
  const keep = await lastFile('FROM busybox\nADD --unpack=false app.tar.gz /opt/\n');
  assert.equal(keep.actions[0]!.extractArchive, undefined);
  const sum = `sha256:${'a'.repeat(64)}`;
  const url = await lastFile(
    `FROM busybox\nADD --checksum=${sum} https://example.com/dl/tool?x=1 /usr/local/bin/\n`,
  );
  const http = url.c.vertices[url.v.inputs[url.actions[0]!.input]!]!;
  assert.deepEqual(http.op, {
    kind: 'source',
    source: { type: 'http', url: 'https://example.com/dl/tool?x=1', checksum: sum, filename: 'tool' },
  });
  assert.equal(http.name, `[2/2] ADD --checksum=${sum} https://example.com/dl/tool?x=1 /usr/local/bin/`);
  assert.deepEqual(url.actions[0], {
    action: 'copy',
    input: 1,
    src: '/tool',
    dest: '/usr/local/bin/',
    createDestPath: true,
  });
  const bare = await lastFile('FROM busybox\nADD https://example.com/ /x\n');
  assert.equal(bare.actions[0]!.src, '/__unnamed__');
});

test('COPY/ADD errors', async () => {
  const bad = async (line: string) => {
    try {
      await convert(`FROM busybox\n${line}\n`);
    } catch (e) {
      assert.ok(e instanceof DrayError);
      return e.message;
    }
    assert.fail(line);
  };
  assert.equal(await bad('COPY https://example.com/x /x'), "source can't be a URL for COPY");
  assert.equal(await bad('COPY git@github.com:moby/buildkit.git /x'), "source can't be a git ref for COPY");
  assert.equal(
    await bad('COPY --chmod=9 a /x'),
    "invalid chmod parameter: '9'. it should be octal string and between 0 and 07777",
  );
  assert.equal(await bad('ADD --checksum=sha256:abc a /x'), 'checksum requires HTTP(S) or Git sources');
  assert.equal(
    await bad('ADD --checksum=sha256:abc https://x/a https://x/b /x/'),
    "checksum can't be specified for multiple sources",
  );
  assert.equal(await bad('ADD --checksum=sha256:abc https://x/a /x'), 'invalid checksum digest length');
  assert.match(await bad('ADD https://github.com/moby/buildkit.git /src'), /git repository is not supported/);
});

test('git and http source detection', () => {
  assert.equal(isGitSource('https://github.com/a/b.git'), true);
  assert.equal(isGitSource('https://github.com/a/b.git#main:dir'), true);
  assert.equal(isGitSource('git@github.com:a/b.git'), true);
  assert.equal(isGitSource('ssh://git@host/a'), true);
  assert.equal(isGitSource('git://host/a'), true);
  assert.equal(isGitSource('github.com/a/b'), false);
  assert.equal(isGitSource('./x@y:z'), false);
  assert.equal(isGitSource('https://example.com/file.tgz'), false);
  assert.equal(isHttpSource('https://example.com/file.tgz'), true);
  assert.equal(isHttpSource('https://github.com/a/b.git'), false);
  assert.equal(isHttpSource('ftp://x/y'), false);
});
