import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { storeBusyboxImage } from '../harness/busybox-image.ts';
import { requireTool, tempDir } from '../harness/tools.ts';
import { runCli } from './helpers.ts';

// `dray build` as users run it: the README's examples, the files docker build writes
// (--iidfile, --metadata-file), -q, errors with the Dockerfile line, why a step reran,
// and `dray history` with whole logs.

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));

test('dray build', async (t) => {
  if (!requireTool(t, 'runc')) return;
  const root = await tempDir(t, 'dray-root-');
  const config = await tempDir(t, 'dray-config-');
  const work = await tempDir(t, 'dray-build-');
  const cli = (args: string[]) => runCli(args, { root, config });

  await t.test('FROM scratch example, -q, --iidfile and --metadata-file', async () => {
    const iid = join(work, 'iid');
    const meta = join(work, 'meta.json');
    const r = await cli([
      'build',
      '-q',
      '--iidfile',
      iid,
      '--metadata-file',
      meta,
      '-t',
      'hello',
      join(examples, 'hello'),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    assert.match(id, /^sha256:[a-f0-9]{64}$/);
    assert.equal(await readFile(iid, 'utf8'), id);
    const m = JSON.parse(await readFile(meta, 'utf8')) as Record<string, string>;
    assert.equal(m['containerimage.config.digest'], id);
    assert.match(m['containerimage.digest'] ?? '', /^sha256:/);
    assert.equal(m['image.name'], 'docker.io/library/hello:latest');
    const inspect = await cli(['inspect', 'hello']);
    const [doc] = JSON.parse(inspect.stdout) as Array<{
      Config: { config: { Cmd: string[]; Env: string[] }; history: Array<{ created_by: string }> };
    }>;
    assert.deepEqual(doc?.Config.config.Cmd, ['/greeting.txt']);
    assert.ok(doc?.Config.config.Env.includes('GREETING_FILE=/greeting.txt'));
    assert.ok(doc?.Config.history.some((h) => h.created_by === 'COPY greeting.txt /greeting.txt # buildkit'));
  });

  await t.test('RUN steps on a base; warm rebuild is all CACHED; a changed file says why', async () => {
    await storeBusyboxImage(t, root, 'docker.io/local/busybox:latest');
    const app = join(work, 'app');
    await cp(join(examples, 'app'), app, { recursive: true });
    const cold = await cli(['build', '--progress=plain', '-t', 'app', app]);
    assert.equal(cold.code, 0, cold.stdout + cold.stderr);
    assert.match(cold.stderr, /#\d+ \[4\/4\] RUN wc -l \*\.txt/);
    assert.match(cold.stderr, /\d+ notes\.txt/);
    const warm = await cli(['build', '--progress=plain', '-t', 'app', app]);
    assert.equal(warm.code, 0);
    assert.match(warm.stderr, /RUN wc -l[^\n]*\n#\d+ CACHED/);
    assert.doesNotMatch(warm.stderr, /cache miss/);
    await writeFile(join(app, 'todo.txt'), 'alpha\nbeta\n');
    const incr = await cli(['build', '--progress=plain', '-t', 'app', app]);
    assert.equal(incr.code, 0);
    assert.match(incr.stderr, /COPY \*\.txt \.\/ — cache miss: todo\.txt changed/);
    assert.match(incr.stderr, /RUN wc -l \*\.txt[^\n]* — cache miss: \[3\/4\] COPY \*\.txt \.\/ changed/);
    const args = await cli([
      'build',
      '--progress=plain',
      '--build-arg',
      'BASE=docker.io/local/busybox:latest',
      '-t',
      'app',
      app,
    ]);
    assert.equal(args.code, 0, args.stderr);

    const history = await cli(['history']);
    assert.equal(history.code, 0);
    assert.match(history.stdout, /^BUILD ID\s+NAME\s+STATUS/);
    const ids = (await cli(['history', '-q'])).stdout.trim().split('\n');
    assert.ok(ids.length >= 4);
    const logs = await cli(['history', 'logs', ids[1] as string, 'RUN wc']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /notes\.txt/);
    const bad = await cli(['history', 'logs', 'nosuchbuild']);
    assert.notEqual(bad.code, 0);
  });

  await t.test('a bad Dockerfile fails with its line number and changes nothing', async () => {
    const ctx = join(work, 'bad');
    await cp(join(examples, 'hello'), ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY greeting.txt /\nRUNN echo\n');
    const before = (await cli(['images', '-q'])).stdout;
    const r = await cli(['build', '-t', 'bad', ctx]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /dockerfile parse error on line 3: unknown instruction: RUNN/);
    assert.equal((await cli(['images', '-q'])).stdout, before);
    const failing = join(work, 'failing');
    await cp(join(examples, 'hello'), failing, { recursive: true });
    await writeFile(join(failing, 'Dockerfile'), 'FROM local/busybox\nRUN echo about to fail && exit 7\n');
    const f = await cli(['build', '--progress=plain', failing]);
    assert.equal(f.code, 1);
    assert.match(f.stderr, /did not complete successfully: exit code: 7/);
    assert.match(f.stderr, /about to fail/);
    const platform = await cli(['build', '--platform', 'linux/s390x', failing]);
    assert.equal(platform.code, 2);
    assert.match(platform.stderr, /host platform only/);
  });
});
