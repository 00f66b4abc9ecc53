// Self-test of buildkit-build.ts against the real dockerd 20.10 and its embedded BuildKit: the
// image it makes must carry BuildKit's history shape (the classic builder's differs), failures
// must come back as ok:false with BuildKit's text, and the options must reach the frontend.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { buildWithBuildKit, decodeStatusResponse } from './buildkit-build.ts';
import { busyboxImageDir, engineGet, importRootfs, startDockerd } from './docker-engine.ts';
import { requireTool, tempDir } from './tools.ts';

const BASE = 'dray-test/busybox:latest';

async function contextDir(t: TestContext, files: Record<string, string>): Promise<string> {
  const dir = await tempDir(t, 'dray-bkctx-');
  for (const [name, body] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), body);
  }
  return dir;
}

interface HistoryEntry {
  CreatedBy: string;
  Comment: string;
}

test('decodeStatusResponse reads vertexes and logs and skips other fields', () => {
  const str = (no: number, s: string | Buffer) => {
    const b = Buffer.from(s);
    return Buffer.concat([Buffer.from([(no << 3) | 2, b.length]), b]);
  };
  const vertex = Buffer.concat([
    str(1, 'sha256:aa'),
    str(3, '[1/1] RUN x'),
    Buffer.from([(4 << 3) | 0, 1]),
    str(6, Buffer.from([8, 1])),
    Buffer.from([(9 << 3) | 5, 1, 2, 3, 4]), // unknown fixed32: skipped
  ]);
  const log = Buffer.concat([str(1, 'sha256:aa'), Buffer.from([(3 << 3) | 0, 2]), str(4, 'out\n')]);
  const status = str(2, str(1, 'ignored-status'));
  const d = decodeStatusResponse(Buffer.concat([str(1, vertex), status, str(3, log)]));
  assert.deepEqual(d.vertexes, [
    { digest: 'sha256:aa', name: '[1/1] RUN x', cached: true, completed: true, error: '' },
  ]);
  assert.equal(d.logs.length, 1);
  assert.equal(d.logs[0]?.vertex, 'sha256:aa');
  assert.equal(Buffer.from(d.logs[0]!.msg).toString(), 'out\n');
  assert.throws(() => decodeStatusResponse(Buffer.from([(1 << 3) | 2, 9, 1])), /truncated/);
});

test('buildWithBuildKit builds on dockerd 20.10 embedded BuildKit', async (t) => {
  if (!requireTool(t, 'dockerd', 'docker', 'containerd', 'runc', 'tar')) return;
  const engine = await startDockerd(t);
  await importRootfs(engine, await busyboxImageDir(t), BASE);

  await t.test('COPY + RUN: image in the daemon with BuildKit history; rebuild is cached', async (t) => {
    const context = await contextDir(t, {
      Dockerfile: `FROM ${BASE}\nCOPY a /a\nRUN cat /a > /b && echo ran-it\n`,
      a: 'hello\n',
    });
    const r = await buildWithBuildKit(engine, { context, tag: 'dray-ref/two:1' });
    assert.equal(r.ok, true, r.output);
    assert.match(r.imageId ?? '', /^sha256:[0-9a-f]{64}$/);
    const inspect = await engineGet(engine.socketPath, '/images/dray-ref/two:1/json');
    assert.equal(inspect.status, 200, inspect.body);
    const img = JSON.parse(inspect.body) as { Id: string; Comment: string };
    assert.equal(img.Id, r.imageId);
    assert.equal(img.Comment, 'buildkit.dockerfile.v0');
    const hist = JSON.parse(
      (await engineGet(engine.socketPath, '/images/dray-ref/two:1/history')).body,
    ) as HistoryEntry[];
    assert.deepEqual(
      hist.slice(0, 2).map((h) => [h.CreatedBy, h.Comment]),
      [
        ['RUN /bin/sh -c cat /a > /b && echo ran-it # buildkit', 'buildkit.dockerfile.v0'],
        ['COPY a /a # buildkit', 'buildkit.dockerfile.v0'],
      ],
    );
    const run = r.vertexes.find((v) => v.name === '[3/3] RUN cat /a > /b && echo ran-it');
    assert.ok(run, r.output);
    assert.equal(run.log, 'ran-it\n');
    assert.equal(run.cached, false);
    assert.match(r.output, /^#\d+ ran-it$/m);
    const cat = await engine.docker(['run', '--rm', '--network=none', 'dray-ref/two:1', 'cat', '/b']);
    assert.equal(cat.code, 0, cat.stderr);
    assert.equal(cat.stdout, 'hello\n');

    const again = await buildWithBuildKit(engine, { context, tag: 'dray-ref/two:2' });
    assert.equal(again.ok, true, again.output);
    assert.equal(again.imageId, r.imageId);
    assert.equal(again.vertexes.find((v) => v.name.startsWith('[3/3] RUN'))?.cached, true, again.output);
    const fresh = await buildWithBuildKit(engine, { context, tag: 'dray-ref/two:3', noCache: true });
    assert.equal(fresh.ok, true, fresh.output);
    assert.equal(fresh.vertexes.find((v) => v.name.startsWith('[3/3] RUN'))?.cached, false, fresh.output);
  });

  await t.test('unknown instruction: ok:false with the parse error and its line', async (t) => {
    const context = await contextDir(t, { Dockerfile: `FROM ${BASE}\nCOPY a /a\nFROB x\n`, a: 'x' });
    const r = await buildWithBuildKit(engine, { context, tag: 'dray-ref/bad:1' });
    assert.equal(r.ok, false);
    assert.equal(r.imageId, undefined);
    assert.match(r.error ?? '', /dockerfile parse error line 3: unknown instruction: FROB/);
    assert.match(r.output, /^ERROR: .*line 3/m);
    assert.equal((await engineGet(engine.socketPath, '/images/dray-ref/bad:1/json')).status, 404);
  });

  await t.test('failing RUN: ok:false with the exit code; the step log is kept', async (t) => {
    const context = await contextDir(t, { Dockerfile: `FROM ${BASE}\nRUN echo before-fail; exit 3\n` });
    const r = await buildWithBuildKit(engine, { context, tag: 'dray-ref/fail:1' });
    assert.equal(r.ok, false);
    assert.match(r.error ?? '', /exit code: 3/);
    const step = r.vertexes.find((v) => v.name.includes('RUN echo before-fail'));
    assert.equal(step?.log, 'before-fail\n');
    assert.match(step?.error ?? '', /exit code: 3/);
  });

  await t.test('dockerfile path, target, build args and labels reach the frontend', async (t) => {
    const context = await contextDir(t, {
      'sub/My.Dockerfile': `FROM ${BASE} AS one\nARG X=unset\nLABEL from-arg=$X\nFROM one AS two\nLABEL stage=two\n`,
    });
    const r = await buildWithBuildKit(engine, {
      context,
      tag: 'dray-ref/opts:1',
      dockerfile: 'sub/My.Dockerfile',
      target: 'one',
      buildArgs: { X: 'vx' },
      labels: { extra: 'yes' },
    });
    assert.equal(r.ok, true, r.output);
    const img = JSON.parse((await engineGet(engine.socketPath, '/images/dray-ref/opts:1/json')).body) as {
      Config: { Labels: Record<string, string> };
    };
    assert.deepEqual(img.Config.Labels, { 'from-arg': 'vx', extra: 'yes' });
  });

  await t.test('timeout: rejects (a harness failure, not a build result)', async (t) => {
    const context = await contextDir(t, { Dockerfile: `FROM ${BASE}\nRUN sleep 30\n` });
    await assert.rejects(
      buildWithBuildKit(engine, { context, tag: 'dray-ref/slow:1', timeoutMs: 1500 }),
      /build of dray-ref\/slow:1 stopped: TimeoutError/,
    );
  });

  await t.test('a context with .dockerignore is refused (it would not be applied)', async (t) => {
    const context = await contextDir(t, { Dockerfile: `FROM ${BASE}\n`, '.dockerignore': 'x\n' });
    await assert.rejects(buildWithBuildKit(engine, { context, tag: 'dray-ref/ign:1' }), /\.dockerignore/);
  });
});
