import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decompressStream, readTar } from '../../src/archive/index.ts';
import {
  ContentStore,
  collectProgress,
  copy,
  HistoryStore,
  image,
  isDrayError,
  type LayerRef,
  local,
  marshalGraph,
  merge,
  mkdir as mkdirAction,
  type State,
  solve,
} from '../../src/index.ts';
import { storeBusyboxImage } from '../harness/busybox-image.ts';
import { requireTool, runCommand, tempDir } from '../harness/tools.ts';

// The build engine against real runc and real overlayfs (and the copying fallback): the
// issue's acceptance tests, once per snapshotter.

const fixture = fileURLToPath(new URL('./fixtures/solve-graph.ts', import.meta.url));
const kinds = ['overlay', 'copy'] as const;

async function layerEntries(
  root: string,
  r: { layers: readonly LayerRef[] },
  index = -1,
): Promise<Map<string, string>> {
  const content = await ContentStore.open(root);
  const l = r.layers.at(index);
  assert.ok(l, 'a layer');
  const out = new Map<string, string>();
  for await (const e of readTar(await decompressStream(await content.open(l.blob)))) {
    let text = '';
    for await (const c of e.body) text += c.toString();
    out.set(e.header.name.replace(/\/$/, ''), e.header.type === 'file' ? text : e.header.type);
  }
  return out;
}

async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').filter((l) => l.includes(dir));
}

async function runcList(root: string): Promise<string> {
  const r = await runCommand('runc', ['--root', join(root, 'executor', 'runc'), 'list', '-q']);
  return r.stdout.trim();
}

function runStep(base: State, script: string, o: Parameters<State['run']>[1] = {}): State {
  return base.run(['/bin/sh', '-c', script], { name: `RUN ${script}`, env: ['PATH=/bin'], ...o });
}

for (const kind of kinds) {
  test(`build engine with ${kind} snapshots`, async (t: TestContext) => {
    if (!requireTool(t, 'runc')) return;
    const root = await tempDir(t, `dray-solver-${kind}-`);
    const base = image('docker.io/library/busybox:latest');
    await storeBusyboxImage(t, root);
    const opts = { root, snapshotter: kind } as const;

    await t.test('a step that creates, changes and deletes files yields that layer', async () => {
      const prep = runStep(
        base,
        'mkdir -p /data/gone /data/keep && echo old > /data/keep/f && echo x > /data/gone/y && echo z > /data/rm',
      );
      const step = runStep(
        prep,
        'echo new > /data/keep/f && echo added > /data/keep/g && rm -rf /data/gone && rm /data/rm',
      );
      const r = await solve(step, opts);
      const entries = await layerEntries(root, r);
      assert.equal(entries.get('data/keep/f'), 'new\n');
      assert.equal(entries.get('data/keep/g'), 'added\n');
      assert.ok(entries.has('data/.wh.gone'), 'whiteout for the deleted directory');
      assert.ok(entries.has('data/.wh.rm'), 'whiteout for the deleted file');
      assert.ok(!entries.has('data/gone/y'), 'no entries under a deleted directory');
      assert.ok(!entries.has('bin/busybox'), 'unchanged base files are not in the layer');
      // the result stacks on the base: three layers (base, prep, step)
      assert.equal(r.layers.length, 3);
    });

    await t.test('rm -rf and recreate a directory makes it opaque', async () => {
      const prep = runStep(base, 'mkdir -p /o && echo 1 > /o/a');
      const r = await solve(runStep(prep, 'rm -rf /o && mkdir /o && echo 2 > /o/b'), opts);
      const entries = await layerEntries(root, r);
      assert.equal(entries.get('o/b'), '2\n');
      assert.ok(entries.has('o/.wh..wh..opq') || entries.has('o/.wh.a'), [...entries.keys()].join(','));
    });

    await t.test('user by name and number, env and cwd', async () => {
      const withUser = runStep(
        base,
        'echo "app:x:1234:2345:app:/home/app:/bin/sh" >> /etc/passwd && echo "appgrp:x:2345:" >> /etc/group && echo "extra:x:3456:app" >> /etc/group',
      );
      const byName = runStep(withUser, 'id > /tmp/out-name && echo "$HOME $FOO $(pwd)" > /tmp/env-out', {
        user: 'app',
        env: ['PATH=/bin', 'FOO=bar'],
        cwd: '/work/dir',
      });
      const check = runStep(byName, 'cat /tmp/out-name /tmp/env-out > /summary', {});
      const byNumber = runStep(check, 'id > /tmp/out-num', { user: '5000:6000' });
      const r = await solve(byNumber, opts);
      const content = await ContentStore.open(root);
      const find = async (path: string): Promise<string | undefined> => {
        for (let i = r.layers.length - 1; i >= 0; i--) {
          for await (const e of readTar(await decompressStream(await content.open(r.layers[i]!.blob)))) {
            let text = '';
            for await (const c of e.body) text += c.toString();
            if (e.header.name === path) return text;
          }
        }
        return undefined;
      };
      const summary = await find('summary');
      assert.match(summary ?? '', /uid=1234\(app\) gid=2345\(appgrp\) groups=2345\(appgrp\),3456\(extra\)/);
      assert.match(summary ?? '', /\/home\/app bar \/work\/dir/);
      assert.match((await find('tmp/out-num')) ?? '', /uid=5000 gid=6000/);
    });

    await t.test('a failing step reports its name, exit code and last output lines', async () => {
      const failing = runStep(base, 'echo first line; echo "it broke" >&2; exit 3');
      const progress = collectProgress();
      await assert.rejects(solve(failing, { ...opts, progress }), (e: unknown) => {
        assert.ok(isDrayError(e, 'DRAY_EXEC_FAILED'));
        assert.match(e.message, /did not complete successfully: exit code: 3/);
        assert.match(e.message, /RUN echo first line/);
        assert.match(e.message, /it broke/);
        return true;
      });
      const ended = progress.events.find((e) => e.error);
      assert.ok(ended, 'progress shows an error');
      assert.ok(
        progress.events.some((e) => e.id === ended.id && e.name?.includes('exit 3')),
        'on the failing step',
      );
      assert.deepEqual(await mountsUnder(root), []);
    });

    await t.test('two concurrent solves sharing a vertex run it once', async () => {
      const shared = runStep(base, `echo run >> /cache/count; sleep 0.3; echo ${kind}-shared > /shared`, {
        mounts: [{ type: 'cache', dest: '/cache', id: `count-${kind}`, sharing: 'shared' }],
      });
      const a = runStep(shared, 'echo a > /a');
      const b = runStep(shared, 'echo b > /b');
      await Promise.all([solve(a, opts), solve(b, opts)]);
      const counter = runStep(base, 'cat /cache/count > /count', {
        noCache: true,
        mounts: [{ type: 'cache', dest: '/cache', id: `count-${kind}`, sharing: 'shared' }],
      });
      const r = await solve(counter, opts);
      assert.equal((await layerEntries(root, r)).get('count'), 'run\n');
    });

    await t.test(
      'a warm solve in a new process runs nothing; a changed context file reruns only its dependents',
      async () => {
        const ctx = await tempDir(t, 'dray-ctx-');
        for (let i = 0; i < 20; i++) await writeFile(join(ctx, `f${i}.txt`), `file ${i}\n`);
        await mkdir(join(ctx, 'sub'));
        await writeFile(join(ctx, 'sub', 'other.txt'), 'other\n');
        const context = local('context');
        const copied = base.file([copy(context, '/f1.txt', '/app/'), mkdirAction('/app/data', 0o755)], {
          name: 'COPY f1.txt /app/',
        });
        const built = runStep(copied, 'cat /app/f1.txt > /app/out');
        const graphFile = join(await tempDir(t), 'graph.json');
        await writeFile(graphFile, JSON.stringify(marshalGraph(built.vertex!)));
        const runChild = async () => {
          const r = await runCommand(process.execPath, [fixture, root, graphFile, kind, ctx], {
            timeoutMs: 120_000,
          });
          assert.equal(r.code, 0, r.stdout + r.stderr);
          const last = r.stdout.trim().split('\n').at(-1) ?? '';
          return JSON.parse(last) as { vertices: Array<{ name?: string; cached?: boolean }> };
        };
        const cold = await runChild();
        assert.ok(cold.vertices.some((v) => v.name?.startsWith('RUN') && v.cached === false));
        const warm = await runChild();
        // Nothing runs: the last step is a hit, so the steps under it are not even looked at.
        for (const v of warm.vertices.filter((x) => x.name?.startsWith('RUN') || x.name?.startsWith('COPY')))
          assert.notEqual(v.cached, false, `${v.name} ran again`);
        assert.equal(warm.vertices.find((v) => v.name?.startsWith('RUN'))?.cached, true);
        // an unrelated file changes: still cached (copies are keyed by what they select)
        await writeFile(join(ctx, 'f2.txt'), 'changed\n');
        const unrelated = await runChild();
        assert.ok(
          unrelated.vertices.filter((x) => x.name?.startsWith('RUN')).every((v) => v.cached !== false),
        );
        // the copied file changes: the copy and the step after it run
        await writeFile(join(ctx, 'f1.txt'), 'changed\n');
        const changed = await runChild();
        assert.equal(changed.vertices.find((v) => v.name?.startsWith('COPY'))?.cached, false);
        assert.equal(changed.vertices.find((v) => v.name?.startsWith('RUN'))?.cached, false);
      },
    );

    await t.test('SIGINT mid-step leaves no mounts and no runc container', async () => {
      const slow = runStep(base, `echo ${kind}-${Date.now()}; sleep 100`);
      const graphFile = join(await tempDir(t), 'slow.json');
      await writeFile(graphFile, JSON.stringify(marshalGraph(slow.vertex!)));
      const child = spawn(process.execPath, [fixture, root, graphFile, kind], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      await new Promise<void>((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`step never started: ${out}`)), 60_000);
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.includes('started RUN')) {
            clearTimeout(timer);
            res();
          }
        });
      });
      await new Promise((r) => setTimeout(r, 500)); // let runc start the process
      const t0 = Date.now();
      child.kill('SIGINT');
      const code = await new Promise<number | null>((r) => child.on('close', r));
      assert.ok(Date.now() - t0 < 10_000, 'stopped promptly');
      assert.equal(code, 130, out);
      assert.equal(await runcList(root), '');
      assert.deepEqual(await mountsUnder(root), []);
      const builds = await new HistoryStore(root).list();
      assert.equal(builds[0]?.status, 'canceled');
    });

    await t.test('merge stacks layers; build history keeps whole logs', async () => {
      const a = runStep(base, 'echo a > /a');
      const big = runStep(
        base,
        'i=0; while [ $i -lt 100000 ]; do echo "line $i of a long log"; i=$((i+1)); done',
      );
      const r = await solve(merge([a, big]), opts);
      assert.equal(r.layers.length, 4);
      const history = new HistoryStore(root);
      const build = await history.get(r.buildId);
      const step = build.vertices.find((v) => v.name?.includes('while'));
      assert.ok(step);
      const log = await readFile(history.logPath(build.id, step.step), 'utf8');
      assert.ok(
        log.length > 2 * 1024 * 1024,
        `log kept whole past BuildKit's 2 MiB clip (${log.length} bytes)`,
      );
      assert.match(log, /line 99999 of a long log/);
    });
    assert.deepEqual(await mountsUnder(root), []);
  });
}

test('two processes solving the same step run it once', async (t) => {
  if (!requireTool(t, 'runc')) return;
  const root = await tempDir(t, 'dray-solver-2proc-');
  await storeBusyboxImage(t, root);
  const step = runStep(
    image('docker.io/library/busybox:latest'),
    'echo ran >> /cache/count; sleep 1; echo done > /out',
    {
      mounts: [{ type: 'cache', dest: '/cache', id: 'two-processes', sharing: 'shared' }],
    },
  );
  const graphFile = join(await tempDir(t), 'graph.json');
  await writeFile(graphFile, JSON.stringify(marshalGraph(step.vertex!)));
  const child = () =>
    runCommand(process.execPath, [fixture, root, graphFile, 'overlay'], { timeoutMs: 120_000 });
  const [a, b] = await Promise.all([child(), child()]);
  assert.equal(a.code, 0, a.stdout + a.stderr);
  assert.equal(b.code, 0, b.stdout + b.stderr);
  const count = runStep(image('docker.io/library/busybox:latest'), 'cat /cache/count > /count', {
    noCache: true,
    mounts: [{ type: 'cache', dest: '/cache', id: 'two-processes', sharing: 'shared' }],
  });
  const r = await solve(count, { root, snapshotter: 'overlay' });
  assert.equal(
    (await layerEntries(root, r)).get('count'),
    'ran\n',
    "the second process took the first one's result",
  );
});
