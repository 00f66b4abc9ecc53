import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DrayError } from '../../../errors.ts';
import type { ExecOp, FileOp } from '../../../solver/index.ts';
import { convert } from './testing.ts';

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

async function lastExec(text: string, o: Parameters<typeof convert>[1] = {}) {
  const c = await convert(text, o);
  const v = c.vertices.at(-1)!;
  assert.equal(v.op.kind, 'exec');
  return { c, v, op: v.op as ExecOp };
}

test('RUN shell and exec forms; RUN args are never expanded, the name is', async () => {
  const { op, v, c } = await lastExec('FROM busybox\nENV NAME=world\nRUN echo "hello $NAME" \\\n  && true\n');
  assert.deepEqual(op.args, ['/bin/sh', '-c', 'echo "hello $NAME"   && true']);
  assert.deepEqual(op.env, [PATH, 'NAME=world']);
  assert.equal(op.network, 'host');
  assert.deepEqual(op.mounts, [{ type: 'input', dest: '/', input: 0 }]);
  assert.equal(v.name, '[2/2] RUN echo "hello world"   && true');
  assert.equal(
    c.graph.config.history?.at(-1)?.created_by,
    'RUN /bin/sh -c echo "hello $NAME"   && true # buildkit',
  );
  const exec = await lastExec('FROM busybox\nRUN ["echo", "$HOME"]\n');
  assert.deepEqual(exec.op.args, ['echo', '$HOME']);
  assert.equal(exec.c.graph.config.history?.at(-1)?.created_by, 'RUN echo $HOME # buildkit');
});

test('RUN --network overrides the build default; default is host, none is none', async () => {
  assert.equal((await lastExec('FROM busybox\nRUN --network=none x\n')).op.network, 'none');
  assert.equal(
    (await lastExec('FROM busybox\nRUN --network=host x\n', { network: 'none' })).op.network,
    'host',
  );
  assert.equal(
    (await lastExec('FROM busybox\nRUN --network=default x\n', { network: 'none' })).op.network,
    'none',
  );
  assert.equal((await lastExec('FROM busybox\nRUN x\n', { network: 'default' })).op.network, 'host');
});

test('RUN heredocs: a lone heredoc runs its body; a shebang runs as a mounted script; others go to the shell', async () => {
  const plain = await lastExec('FROM busybox\nRUN <<EOF\necho a\necho b\nEOF\n');
  assert.deepEqual(plain.op.args, ['/bin/sh', '-c', 'echo a\necho b\n']);
  assert.equal(plain.v.name, '[2/2] RUN <<EOF (echo a...)');

  const chomp = await lastExec('FROM busybox\nRUN <<-EOF\n\techo a\n\tEOF\n');
  assert.deepEqual(chomp.op.args, ['/bin/sh', '-c', 'echo a\n']);

  const script = await lastExec('FROM busybox\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n');
  assert.deepEqual(script.op.args, ['/bin/sh', '-c', '/dev/pipes/EOF']);
  assert.deepEqual(script.op.mounts, [
    { type: 'input', dest: '/', input: 0 },
    { type: 'input', dest: '/dev/pipes/', input: 1, readonly: true },
  ]);
  const doc = script.c.vertices[script.v.inputs[1]!]!;
  assert.equal(doc.name, '[internal] preparing inline document');
  assert.deepEqual((doc.op as FileOp).actions, [
    { action: 'mkfile', path: '/EOF', mode: 0o755, data: '#!/usr/bin/env python3\nprint(1)\n' },
  ]);

  const shell = await lastExec('FROM busybox\nRUN cat <<EOF > /f\nhello\nEOF\n');
  assert.deepEqual(shell.op.args, ['/bin/sh', '-c', 'cat <<EOF > /f\nhello\nEOF']);
  assert.equal(shell.v.name, '[2/2] RUN cat <<EOF > /f');
});

test('RUN --mount=type=cache: id namespace, sharing, mode/uid/gid, from, relative target', async () => {
  const { op, c, v } = await lastExec(
    [
      'FROM busybox AS seed',
      'FROM busybox',
      'WORKDIR /app',
      'RUN --mount=type=cache,target=/root/.cache/go-build \\',
      '    --mount=type=cache,id=npm,target=node_modules,sharing=locked,uid=1000,mode=0750 \\',
      '    --mount=type=cache,target=/seed,from=seed,source=/data \\',
      '    make',
    ].join('\n'),
  );
  assert.deepEqual(op.mounts, [
    { type: 'input', dest: '/', input: 0 },
    { type: 'cache', dest: '/app/node_modules', id: '/npm', sharing: 'locked', mode: 0o750, uid: 1000 },
    { type: 'cache', dest: '/root/.cache/go-build', id: '//root/.cache/go-build', sharing: 'shared' },
    { type: 'cache', dest: '/seed', id: '//seed', sharing: 'shared', input: 1, selector: '/data' },
  ]);
  assert.equal(op.cwd, '/app');
  // The seed stage is the same image source as this stage's base: one vertex.
  assert.equal(c.vertices[v.inputs[1]!]!.op.kind, 'source');
  const ns = await lastExec('FROM busybox\nRUN --mount=type=cache,target=/c x\n', {
    buildArgs: { BUILDKIT_CACHE_MOUNT_NS: 'proj' },
  });
  assert.equal((ns.op.mounts[1] as { id: string }).id, 'proj//c');
});

test('RUN --mount=type=bind: the context by default (read-only), a stage, rw discards', async () => {
  const { op, c, v } = await lastExec(
    'FROM busybox AS build\nRUN make\nFROM busybox\nRUN --mount=target=/src --mount=type=bind,from=build,source=/out,target=/out,rw make\n',
  );
  assert.deepEqual(op.mounts, [
    { type: 'input', dest: '/', input: 0 },
    { type: 'input', dest: '/out', input: 1, selector: '/out', readonly: false },
    { type: 'input', dest: '/src', input: 2, readonly: true },
  ]);
  assert.equal(c.vertices[v.inputs[2]!]!.name, '[internal] load build context');
});

test('RUN --mount=type=tmpfs and secrets', async () => {
  const { op } = await lastExec(
    [
      'FROM busybox',
      'RUN --mount=type=tmpfs,target=/tmp,size=64m \\',
      '    --mount=type=secret,id=npmrc \\',
      '    --mount=type=secret,id=key,target=/k,required=true,mode=0440,uid=1 \\',
      '    --mount=type=secret,id=tok,env=TOKEN \\',
      '    --mount=type=secret,source=aws,env=AWS,target=/aws \\',
      '    echo $TOKEN',
    ].join('\n'),
  );
  assert.deepEqual(op.mounts, [
    { type: 'input', dest: '/', input: 0 },
    { type: 'tmpfs', dest: '/tmp', size: 64 * 1024 * 1024 },
    { type: 'secret', dest: '/run/secrets/npmrc', id: 'npmrc', optional: true },
    { type: 'secret', dest: '/k', id: 'key', mode: 0o440, uid: 1, gid: 0 },
    { type: 'secret', dest: '/aws', id: 'aws', optional: true },
  ]);
  assert.deepEqual(op.secretEnv, [
    { id: 'tok', name: 'TOKEN', optional: true },
    { id: 'aws', name: 'AWS', optional: true },
  ]);
});

test('RUN --mount errors and unsupported features', async () => {
  const bad = async (line: string) => {
    try {
      await convert(`FROM busybox\n${line}\n`);
    } catch (e) {
      assert.ok(e instanceof DrayError);
      return e.message;
    }
    assert.fail(line);
  };
  assert.equal(await bad('RUN --mount=type=cache,target=/ x'), 'invalid mount target "/"');
  assert.equal(
    await bad('RUN --mount=type=bind,target=/x,uid=1 x'),
    'uid not allowed for "bind" type mounts',
  );
  assert.equal(
    await bad('RUN --mount=type=secret x'),
    'invalid secret mount. one of source, target required',
  );
  assert.match(await bad('RUN --mount=type=ssh x'), /type=ssh is not supported/);
  assert.match(await bad('RUN --security=insecure x'), /insecure is not supported/);
  assert.equal(
    await bad('RUN --device=x y'),
    'device feature is only supported in Dockerfile frontend 1.14.0-labs or later',
  );
});

test('mount values are expanded with the step env, the vertex name masks secret env', async () => {
  const { op, v } = await lastExec(
    'FROM busybox\nARG DIR=/cache\nRUN --mount=type=cache,target=$DIR --mount=type=secret,id=t,env=TOKEN echo $TOKEN $DIR\n',
  );
  assert.equal(op.mounts[1]!.dest, '/cache');
  assert.equal(
    v.name,
    '[stage-0 2/2] RUN --mount=type=cache,target=/cache --mount=type=secret,id=t,env=TOKEN echo **** /cache',
  );
});

test('proxy build args reach every RUN without appearing in history', async () => {
  const { op, c } = await lastExec('FROM busybox\nRUN x\n', {
    buildArgs: { HTTP_PROXY: 'http://p:3128', no_proxy: 'a' },
  });
  assert.deepEqual(op.env, [
    PATH,
    'HTTP_PROXY=http://p:3128',
    'http_proxy=http://p:3128',
    'NO_PROXY=a',
    'no_proxy=a',
  ]);
  assert.equal(c.graph.config.history?.at(-1)?.created_by, 'RUN /bin/sh -c x # buildkit');
});

test('RUN history lists every ARG of the stage, later values replacing earlier ones', async () => {
  const { c } = await lastExec('FROM busybox\nARG A=1 B\nARG A=2\nENV B=env\nRUN x\n');
  assert.equal(c.graph.config.history?.at(-1)?.created_by, 'RUN |2 A=2 B=env /bin/sh -c x # buildkit');
});
