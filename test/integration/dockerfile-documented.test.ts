// Dockerfile features the reference BuildKit of dockerfile-equal.test.ts (0.8, in dockerd
// 20.10) predates — heredocs, RUN --network, COPY --link and --exclude, symbolic --chmod,
// ADD --checksum, supplementary groups of USER — and secrets (which need a client session
// that harness does not have). Here dray's image is checked against what the Dockerfile
// reference (moby/buildkit frontend/dockerfile/docs/reference.md) and current BuildKit say,
// written out by hand: exact paths, types, modes, owners and contents.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { type BuildOptions, build, collectProgress, unpack } from '../../src/index.ts';
import { storeBusyboxImage } from '../harness/busybox-image.ts';
import { requireTool, tempDir } from '../harness/tools.ts';
import { describeTree, drayImageSnapshot, failedLine, type TreeEntry } from './image-compare.ts';

const B = 'dray-doc/busybox';
const U = 'dray-doc/users';
const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

/** The tree entries at `paths` (or at and below them), as describeTree lines; absent paths as `<path> absent`. */
function at(tree: TreeEntry[], ...paths: string[]): string[] {
  return paths.map((p) => {
    const e = tree.find((x) => x.path === p);
    return e ? describeTree([e])[0]! : `${p} absent`;
  });
}

/** A describeTree line for a file with `content`. */
function file(path: string, content: string, mode = 0o644, owner = '0:0'): string {
  return describeTree([
    {
      path,
      type: 'file',
      mode,
      uid: Number(owner.split(':')[0]),
      gid: Number(owner.split(':')[1]),
      size: Buffer.byteLength(content),
      sha256: sha(content),
    },
  ])[0]!;
}

function dir(path: string, mode = 0o755, owner = '0:0'): string {
  return `${path} dir ${mode.toString(8).padStart(4, '0')} ${owner} 0`;
}

test('Dockerfile features checked against the reference (dray only)', async (t) => {
  if (!requireTool(t, 'runc', 'tar')) return;
  const dockerConfig = await tempDir(t, 'dray-doc-config-');
  const oldConfig = process.env.DOCKER_CONFIG;
  process.env.DOCKER_CONFIG = dockerConfig;
  t.after(() => {
    if (oldConfig === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = oldConfig;
  });
  const root = await tempDir(t, 'dray-doc-root-');
  await storeBusyboxImage(t, root, `docker.io/${B}:latest`);
  await storeBusyboxImage(t, root, `docker.io/${U}:latest`, {
    extraFiles: async (d) => {
      await writeFile(join(d, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n');
      await writeFile(join(d, 'etc/group'), 'root:x:0:\nstaff:x:50:app\napp:x:1000:\n');
    },
  });
  let n = 0;

  /** Builds `dockerfile` with `files` as context; resolves with the image's tree (or rejects as build does). */
  const buildCase = async (
    t: TestContext,
    dockerfile: string,
    files: Record<string, string | { content: string; mode: number }> = {},
    o: Partial<BuildOptions> = {},
  ) => {
    const ctx = await tempDir(t, 'dray-doc-ctx-');
    const all: Record<string, string | { content: string; mode: number }> = {
      Dockerfile: dockerfile,
      ...files,
    };
    for (const [p, f] of Object.entries(all)) {
      await mkdir(join(ctx, p, '..'), { recursive: true });
      if (typeof f === 'string') await writeFile(join(ctx, p), f);
      else await writeFile(join(ctx, p), f.content, { mode: f.mode });
    }
    const name = `docker.io/dray-doc/case${n++}:latest`;
    await build({ root, context: ctx, tags: [name], network: 'none', ...o });
    return { name, tree: (await drayImageSnapshot(t, root, name)).tree };
  };

  /** Builds a Dockerfile that must fail; resolves with the line its failed step is on. */
  const failingLine = async (t: TestContext, dockerfile: string, o: Partial<BuildOptions> = {}) => {
    const progress = collectProgress();
    const err = await buildCase(t, dockerfile, {}, { ...o, progress }).then(
      () => assert.fail('the build succeeded'),
      (e: unknown) => e as Error & { step?: string },
    );
    const step =
      err.step ?? progress.events.find((e) => e.error !== undefined && e.name?.startsWith('['))?.name;
    return { line: failedLine(err.message, step, dockerfile), message: err.message };
  };

  await t.test(
    'heredocs: RUN script, several heredocs, COPY with and without expansion, <<- strips tabs',
    async (t) => {
      const { tree } = await buildCase(
        t,
        `FROM ${B}
ARG FOO=bar
RUN <<EOF
echo hello > /heredoc-run.txt
echo "$FOO" >> /heredoc-run.txt
EOF
RUN <<FILE1 cat > /file1 && <<FILE2 cat > /file2
one
FILE1
two
FILE2
COPY <<EOF /greeting.txt
hello \${FOO}
EOF
COPY <<-"EOT" /script.sh
\techo "hello \${FOO}"
EOT
COPY --chmod=0755 <<EOF /bin-script
#!/bin/sh
EOF
`,
      );
      assert.deepEqual(
        at(tree, 'heredoc-run.txt', 'file1', 'file2', 'greeting.txt', 'script.sh', 'bin-script'),
        [
          file('heredoc-run.txt', 'hello\nbar\n'),
          file('file1', 'one\n'),
          file('file2', 'two\n'),
          file('greeting.txt', 'hello bar\n'),
          // biome-ignore lint/suspicious/noTemplateCurlyInString: the script holds ${FOO} unexpanded
          file('script.sh', 'echo "hello ${FOO}"\n'),
          file('bin-script', '#!/bin/sh\n', 0o755),
        ],
      );
    },
  );

  await t.test('RUN --network=none|host|default', async (t) => {
    const ifaces = (text: string) =>
      `${text
        .split('\n')
        .slice(2)
        .map((l) => l.split(':')[0]?.trim())
        .filter((x) => x)
        .sort()
        .join('\n')}\n`;
    const list = `awk -F: 'NR>2{gsub(/ /,"",$1); print $1}' /proc/net/dev | sort`;
    const { tree } = await buildCase(
      t,
      `FROM ${B}
RUN --network=none ${list} > /none.txt
RUN --network=host ${list} > /host.txt
RUN --network=default ${list} > /default.txt
`,
      {},
      { network: 'host' },
    );
    const host = ifaces(await readFile('/proc/net/dev', 'utf8'));
    assert.notEqual(host, 'lo\n', 'the host has more than lo');
    assert.deepEqual(at(tree, 'none.txt', 'host.txt', 'default.txt'), [
      file('none.txt', 'lo\n'),
      file('host.txt', host),
      file('default.txt', host), // default = the build's network, host here
    ]);
  });

  await t.test('COPY --link does not follow a symlink in the destination; plain COPY does', async (t) => {
    const { tree } = await buildCase(
      t,
      `FROM ${B}
RUN mkdir /target && ln -s /target /lnk && ln -s /target /lnk2
COPY a.txt /lnk/plain.txt
COPY --link a.txt /lnk2/linked.txt
`,
      { 'a.txt': 'a\n' },
    );
    assert.deepEqual(
      at(tree, 'lnk', 'lnk2', 'lnk2/linked.txt', 'target', 'target/plain.txt', 'target/linked.txt'),
      [
        'lnk symlink 0777 0:0 0 -> /target',
        dir('lnk2'),
        file('lnk2/linked.txt', 'a\n'),
        dir('target'),
        file('target/plain.txt', 'a\n'),
        'target/linked.txt absent',
      ],
    );
  });

  await t.test('COPY --exclude (several patterns, with wildcards in the source)', async (t) => {
    const { tree } = await buildCase(
      t,
      `FROM ${B}
COPY --exclude=*.log --exclude=secret . /app/
COPY --exclude=*.txt hom* /mydir/
`,
      { 'a.txt': 'a\n', 'x.log': 'x\n', 'secret/s': 's\n', 'home.txt': 'h\n', 'homer.md': 'm\n' },
    );
    assert.deepEqual(
      tree.filter((e) => e.path.startsWith('app/') || e.path.startsWith('mydir/')).map((e) => e.path),
      ['app/Dockerfile', 'app/a.txt', 'app/home.txt', 'app/homer.md', 'mydir/homer.md'],
    );
  });

  await t.test('COPY --chmod symbolic: u=rwX,go=rX, +x, g=u', async (t) => {
    const { tree } = await buildCase(
      t,
      `FROM ${B}
COPY --chmod=u=rwX,go=rX dir /sym/
COPY --chmod=+x a.txt /plusx
COPY --chmod=g=u private.txt /gu
`,
      {
        'dir/x.txt': { content: 'x\n', mode: 0o600 },
        'dir/run.sh': { content: 'run\n', mode: 0o700 },
        'dir/sub/y.txt': { content: 'y\n', mode: 0o640 },
        'a.txt': { content: 'a\n', mode: 0o644 },
        'private.txt': { content: 'p\n', mode: 0o600 },
      },
    );
    assert.deepEqual(at(tree, 'sym', 'sym/x.txt', 'sym/run.sh', 'sym/sub', 'sym/sub/y.txt', 'plusx', 'gu'), [
      dir('sym'),
      file('sym/x.txt', 'x\n', 0o644),
      file('sym/run.sh', 'run\n', 0o755),
      dir('sym/sub'),
      file('sym/sub/y.txt', 'y\n', 0o644),
      file('plusx', 'a\n', 0o755),
      file('gu', 'p\n', 0o660),
    ]);
  });

  await t.test(
    'ADD --checksum of an http URL: a match is added (mode 0600), a mismatch fails at its line',
    async (t) => {
      const body = 'checked body\n';
      const server = createServer((_req, res) => {
        res.writeHead(200, { 'content-length': Buffer.byteLength(body) }).end(body);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/f.txt`;
      const { tree } = await buildCase(t, `FROM ${B}\nADD --checksum=${sha(body)} ${url} /checked.txt\n`);
      assert.deepEqual(at(tree, 'checked.txt'), [file('checked.txt', body, 0o600)]);
      const bad = await failingLine(t, `FROM ${B}\nRUN true\nADD --checksum=${sha('other')} ${url} /x\n`);
      assert.equal(bad.line, 3, bad.message);
      assert.match(bad.message, /checksum|digest/i);
    },
  );

  await t.test('USER: RUN gets the supplementary groups of /etc/group', async (t) => {
    const { tree } = await buildCase(
      t,
      `FROM ${U}\nUSER app\nRUN id -G | tr ' ' '\\n' | sort -un | tr '\\n' ' ' > /tmp/groups.txt\n`,
    );
    assert.deepEqual(at(tree, 'tmp/groups.txt'), [file('tmp/groups.txt', '50 1000 ', 0o644, '1000:1000')]);
  });

  await t.test('secrets: readable in RUN (file, target/mode/uid, env), absent from the image', async (t) => {
    const secretText = 'sup3r-s3cret-value';
    const secretFile = join(await tempDir(t, 'dray-doc-secret-'), 'tok');
    await writeFile(secretFile, secretText);
    process.env.DRAY_DOC_SECRET = `${secretText}-env`;
    t.after(() => delete process.env.DRAY_DOC_SECRET);
    const secrets = { tok: { file: secretFile }, fromenv: { env: 'DRAY_DOC_SECRET' } };
    const { name, tree } = await buildCase(
      t,
      `FROM ${B}
RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /len.txt
RUN --mount=type=secret,id=tok,target=/s,mode=0400,uid=1000,gid=1000 stat -c '%a %u %g' /s > /stat.txt
RUN --mount=type=secret,id=fromenv,env=TOKEN_ENV sh -c 'echo \${#TOKEN_ENV}' > /envlen.txt
RUN --mount=type=secret,id=not-given true
`,
      {},
      { secrets },
    );
    assert.deepEqual(at(tree, 'len.txt', 'stat.txt', 'envlen.txt', 'run', 's'), [
      file('len.txt', `${secretText.length}\n`),
      file('stat.txt', '400 1000 1000\n'),
      file('envlen.txt', `${secretText.length + 4}\n`),
      'run absent', // the mount stubs go too, as in current BuildKit
      's absent',
    ]);
    const out = await tempDir(t, 'dray-doc-unpack-');
    await unpack(name, out, { root });
    const leaks: string[] = [];
    const walk = async (d: string) => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile() && (await readFile(p)).includes(secretText)) leaks.push(p);
      }
    };
    await walk(out);
    assert.deepEqual(leaks, []);
  });

  await t.test('secrets: a missing required secret fails at its line', async (t) => {
    const missing = await failingLine(
      t,
      `FROM ${B}\nRUN true\nRUN --mount=type=secret,id=absent,required=true true\n`,
    );
    assert.match(missing.message, /absent/);
    assert.equal(missing.line, 3, missing.message);
  });
});
