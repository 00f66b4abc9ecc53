import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DrayError } from '../../../errors.ts';
import type { ExecOp, FileOp, SourceOp } from '../../../solver/index.ts';
import { errorLocations } from '../parser/index.ts';
import { convert, fakeDigest, imageConfig } from './testing.ts';

const busybox = `docker.io/library/busybox:latest@${fakeDigest('docker.io/library/busybox:latest')}`;
const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

async function convertError(text: string, o: Parameters<typeof convert>[1] = {}): Promise<DrayError> {
  try {
    await convert(text, o);
  } catch (e) {
    assert.ok(e instanceof DrayError, String(e));
    return e;
  }
  assert.fail('expected the conversion to fail');
}

function lineOf(e: unknown): number | undefined {
  return errorLocations(e)?.[0]?.[0]?.start.line;
}

test('single stage: vertex names [n/N], FROM pinned by digest, meta with instruction and line', async () => {
  const c = await convert('FROM busybox\nWORKDIR /app\nCOPY . .\nRUN make\n');
  assert.deepEqual(c.names, [
    `[1/4] FROM ${busybox}`,
    '[2/4] WORKDIR /app',
    '[internal] load build context',
    '[3/4] COPY . .',
    '[4/4] RUN make',
  ]);
  const from = c.named(`[1/4] FROM ${busybox}`);
  assert.deepEqual(from.op, {
    kind: 'source',
    source: { type: 'image', ref: busybox, platform: { os: 'linux', architecture: 'amd64' } },
  });
  assert.deepEqual(from.meta, { instruction: 'FROM busybox', line: '1', stage: '0' });
  assert.deepEqual(c.named('[4/4] RUN make').meta, { instruction: 'RUN make', line: '4', stage: '0' });
  assert.deepEqual(c.calls, [
    {
      ref: 'docker.io/library/busybox:latest',
      platform: { os: 'linux', architecture: 'amd64' },
      pull: false,
    },
  ]);
  assert.deepEqual(c.graph.stages, ['0']);
});

test('multi-stage: stage names prefix vertices; unnamed stages are stage-N', async () => {
  const c = await convert(
    'FROM busybox AS build\nRUN make\nFROM alpine\nCOPY --from=build /out /out\nRUN true\n',
  );
  const alpine = `docker.io/library/alpine:latest@${fakeDigest('docker.io/library/alpine:latest')}`;
  assert.deepEqual([...c.names].sort(), [
    `[build 1/2] FROM ${busybox}`,
    '[build 2/2] RUN make',
    `[stage-1 1/3] FROM ${alpine}`,
    '[stage-1 2/3] COPY --from=build /out /out',
    '[stage-1 3/3] RUN true',
  ]);
  assert.deepEqual(c.graph.stages, ['build', '1']);
});

test('steps are numbered with Go width (1+log10 of the total)', async () => {
  const runs = Array.from({ length: 11 }, (_, i) => `RUN echo ${i}`).join('\n');
  const c = await convert(`FROM busybox\n${runs}\n`);
  assert.equal(c.names[0], `[ 1/12] FROM ${busybox}`);
  assert.equal(c.names[11], '[12/12] RUN echo 10');
  const ten = await convert(`FROM busybox\n${Array.from({ length: 9 }, (_, i) => `RUN ${i}`).join('\n')}\n`);
  assert.equal(ten.names[0], `[ 1/10] FROM ${busybox}`);
  const nine = await convert(`FROM busybox\n${Array.from({ length: 8 }, (_, i) => `RUN ${i}`).join('\n')}\n`);
  assert.equal(nine.names[0], `[1/9] FROM ${busybox}`);
});

test('a lone stage that mounts or copies from an image keeps its stage-0 name (upstream quirk)', async () => {
  const c = await convert('FROM busybox\nRUN --mount=type=cache,target=/c make\n');
  assert.deepEqual(c.names, [
    `[stage-0 1/2] FROM ${busybox}`,
    '[stage-0 2/2] RUN --mount=type=cache,target=/c make',
  ]);
});

test('only the stages the target needs are resolved and converted', async () => {
  const text = [
    'FROM golang AS build',
    'RUN go build',
    'FROM node AS unused',
    'RUN npm i',
    'FROM alpine AS final',
    'COPY --from=build /app /app',
    'FROM busybox AS other',
  ].join('\n');
  const c = await convert(text, { target: 'final' });
  assert.deepEqual(
    c.calls.map((x) => x.ref),
    ['docker.io/library/golang:latest', 'docker.io/library/alpine:latest'],
  );
  assert.deepEqual(c.graph.stages, ['build', 'final']);
  assert.ok(!c.names.some((n) => n.includes('npm')));
  const last = await convert(text);
  assert.deepEqual(last.graph.stages, ['other']);
  assert.deepEqual(
    last.calls.map((x) => x.ref),
    ['docker.io/library/busybox:latest'],
  );
});

test('independent stages are independent subgraphs', async () => {
  const c = await convert(
    'FROM busybox AS a\nRUN a\nFROM busybox AS b\nRUN b\nFROM scratch\nCOPY --from=a /a /\nCOPY --from=b /b /\n',
  );
  const runA = c.named('[a 2/2] RUN a');
  const runB = c.named('[b 2/2] RUN b');
  const idx = (n: string) => c.vertices.findIndex((v) => v.name === n);
  // RUN b does not depend on RUN a (or the reverse).
  assert.ok(!runB.inputs.includes(idx('[a 2/2] RUN a')));
  assert.ok(!runA.inputs.includes(idx('[b 2/2] RUN b')));
});

test('--target: case-insensitive; unknown names fail with a suggestion', async () => {
  const c = await convert('FROM busybox AS Build\nRUN x\nFROM scratch\n', { target: 'BUILD' });
  assert.deepEqual(c.graph.stages, ['build']);
  const e = await convertError('FROM busybox AS build\nFROM scratch\n', { target: 'bulid' });
  assert.equal(e.code, 'DRAY_BUILD');
  assert.equal(e.message, 'target stage "bulid" could not be found (did you mean build?)');
});

test('FROM a previous stage inherits its filesystem, config, env and ARGs', async () => {
  const c = await convert(
    'FROM busybox AS base\nARG V=1\nENV E=2\nWORKDIR /w\nUSER u\nFROM base\nRUN echo\n',
  );
  const run = c.named('[stage-1 1/1] RUN echo');
  const op = run.op as ExecOp;
  // The base's ARG stays in the environment; config Env entries move behind it (EnvList order).
  assert.deepEqual(op.env, ['V=1', PATH, 'E=2']);
  assert.equal(op.cwd, '/w');
  assert.equal(op.user, 'u');
  assert.deepEqual(c.graph.config.config?.Env, [PATH, 'E=2']);
  assert.equal(c.graph.config.history?.at(-1)?.created_by, 'RUN |1 V=1 /bin/sh -c echo # buildkit');
});

test('ARG scoping: global ARGs in FROM, bare ARG inherits the global default, build args win', async () => {
  const text = [
    'ARG TAG=1.36',
    'ARG UNSET',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Dockerfile text
    'FROM busybox:${TAG}',
    'ARG TAG',
    'ARG UNSET',
    'ARG LOCAL=x-$TAG',
    'RUN echo $TAG',
  ].join('\n');
  const c = await convert(text);
  assert.equal(c.calls[0]!.ref, 'docker.io/library/busybox:1.36');
  const run = c.vertices.at(-1)!.op as ExecOp;
  assert.deepEqual(run.env, [PATH, 'TAG=1.36', 'LOCAL=x-1.36']);
  const h = c.graph.config.history!.map((x) => x.created_by);
  assert.deepEqual(h.slice(-4), [
    'ARG TAG=1.36',
    'ARG UNSET',
    'ARG LOCAL=x-1.36',
    'RUN |3 TAG=1.36 UNSET= LOCAL=x-1.36 /bin/sh -c echo $TAG # buildkit',
  ]);
  const b = await convert(text, { buildArgs: { TAG: '1.37', LOCAL: 'y', UNSET: 'z', NOTDECLARED: 'n' } });
  assert.equal(b.calls[0]!.ref, 'docker.io/library/busybox:1.37');
  assert.deepEqual((b.vertices.at(-1)!.op as ExecOp).env, [PATH, 'TAG=1.37', 'UNSET=z', 'LOCAL=y']);
});

test('ARG without a global declaration is empty in FROM; an ARG is not visible before its stage', async () => {
  const e = await convertError('FROM busybox\nARG IMG=alpine\nFROM $IMG\n');
  assert.equal(e.message, 'base name ($IMG) should not be blank');
  assert.equal(lineOf(e), 3);
});

test('predefined platform ARGs: available when declared, overridable by build args', async () => {
  const c = await convert(
    'FROM --platform=$BUILDPLATFORM busybox\nARG TARGETPLATFORM\nARG TARGETARCH\nARG BUILDOS\nARG TARGETSTAGE\nRUN x\n',
    { targetPlatform: { os: 'linux', architecture: 'arm64' } },
  );
  assert.deepEqual((c.vertices.at(-1)!.op as ExecOp).env, [
    PATH,
    'TARGETPLATFORM=linux/arm64',
    'TARGETARCH=arm64',
    'BUILDOS=linux',
    'TARGETSTAGE=default',
  ]);
  // FROM --platform=$BUILDPLATFORM resolves the build platform's image.
  assert.deepEqual(c.calls[0]!.platform, { os: 'linux', architecture: 'amd64' });
  // The final image is for the target platform.
  assert.equal(c.graph.config.architecture, 'arm64');
});

test('ENV: replaces in place in the config, moves to the end of the step env; old form; expansion', async () => {
  const c = await convert('FROM busybox\nENV A=1 B=$A\nENV PATH=/x:$PATH\nENV C d e\nRUN env\n', {
    images: { 'docker.io/library/busybox:latest': imageConfig({ Env: [PATH, 'Z=0'] }) },
  });
  assert.deepEqual(c.graph.config.config?.Env, [
    'PATH=/x:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'Z=0',
    'A=1',
    'B=',
    'C=d e',
  ]);
  assert.deepEqual((c.vertices.at(-1)!.op as ExecOp).env, [
    'Z=0',
    'A=1',
    'B=',
    'PATH=/x:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'C=d e',
  ]);
  const h = c.graph.config.history!.map((x) => x.created_by);
  assert.deepEqual(h.slice(1, 4), [
    'ENV A=1 B=',
    'ENV PATH=/x:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'ENV C=d e',
  ]);
  assert.ok(c.graph.warnings.some((w) => w.rule === 'LegacyKeyValueFormat' && w.line === 4));
});

test('image config: inherited fields, OnBuild cleared, unknown fields dropped, created removed', async () => {
  const base = {
    ...imageConfig({
      Env: [PATH, 'X=1'],
      Cmd: ['sh'],
      Entrypoint: ['/entry'],
      WorkingDir: '/base',
      User: 'nobody',
      Labels: { a: '1' },
      ExposedPorts: { '22/tcp': {} },
      OnBuild: ['RUN echo from-base'],
    }),
    created: '2024-01-01T00:00:00Z',
    container_config: { Cmd: ['x'] },
    docker_version: '20.10',
  };
  const c = await convert('FROM busybox\nLABEL b=2\n', {
    images: { 'docker.io/library/busybox:latest': base },
    labels: { c: '3' },
  });
  const cfg = c.graph.config;
  assert.equal(cfg.created, undefined);
  assert.equal(cfg.container_config, undefined);
  assert.equal(cfg.docker_version, undefined);
  assert.deepEqual(cfg.config, {
    User: 'nobody',
    ExposedPorts: { '22/tcp': {} },
    Env: [PATH, 'X=1'],
    Entrypoint: ['/entry'],
    Cmd: ['sh'],
    WorkingDir: '/base',
    Labels: { a: '1', b: '2', c: '3' },
  });
  // The base's ONBUILD ran in this build (as the first step) and is not passed on.
  assert.ok(c.names.includes('[2/2] ONBUILD RUN echo from-base'));
  assert.deepEqual(c.graph.baseHistory, base.history);
});

test('CMD/ENTRYPOINT/SHELL: shell forms use SHELL; ENTRYPOINT drops an inherited CMD', async () => {
  const c = await convert('FROM busybox\nENTRYPOINT ["/e"]\n');
  assert.equal(c.graph.config.config?.Cmd, undefined); // busybox's CMD ["sh"] is gone
  const kept = await convert('FROM busybox\nCMD ["run"]\nENTRYPOINT ["/e"]\n');
  assert.deepEqual(kept.graph.config.config?.Cmd, ['run']);
  const shell = await convert(
    'FROM busybox\nSHELL ["/bin/bash", "-eo", "pipefail", "-c"]\nCMD echo $HOME\nRUN a | b\n',
  );
  assert.deepEqual(shell.graph.config.config?.Cmd, ['/bin/bash', '-eo', 'pipefail', '-c', 'echo $HOME']);
  assert.equal(shell.graph.config.config?.ArgsEscaped, true);
  assert.deepEqual((shell.vertices.at(-1)!.op as ExecOp).args, [
    '/bin/bash',
    '-eo',
    'pipefail',
    '-c',
    'a | b',
  ]);
  const h = shell.graph.config.history!.map((x) => x.created_by);
  assert.deepEqual(h.slice(1), [
    'SHELL [/bin/bash -eo pipefail -c]',
    'CMD ["/bin/bash" "-eo" "pipefail" "-c" "echo $HOME"]',
    'RUN /bin/bash -eo pipefail -c a | b # buildkit',
  ]);
  const jsonArgs = await convert('FROM busybox\nCMD echo hi\n');
  assert.deepEqual(
    jsonArgs.graph.warnings.map((w) => [w.rule, w.message, w.line]),
    [
      [
        'JSONArgsRecommended',
        'JSON arguments recommended for CMD to prevent unintended behavior related to OS signals',
        2,
      ],
    ],
  );
});

test('metadata instructions: history strings and config as BuildKit writes them', async () => {
  const c = await convert(
    [
      'FROM scratch',
      'LABEL "org.x"="a b" c=d',
      'EXPOSE 80 53/udp 8000-8001',
      'VOLUME /data /logs',
      'USER app:app',
      'STOPSIGNAL SIGQUIT',
      'HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD wget -q localhost',
      'MAINTAINER someone',
      'ONBUILD RUN echo later',
      'CMD ["sh"]',
    ].join('\n'),
  );
  const cfg = c.graph.config;
  assert.deepEqual(cfg.config, {
    User: 'app:app',
    ExposedPorts: { '53/udp': {}, '80/tcp': {}, '8000/tcp': {}, '8001/tcp': {} },
    Env: [PATH],
    Cmd: ['sh'],
    Volumes: { '/data': {}, '/logs': {} },
    WorkingDir: '/',
    Labels: { 'org.x': 'a b', c: 'd' },
    StopSignal: 'SIGQUIT',
    ArgsEscaped: true,
    Healthcheck: { Test: ['CMD-SHELL', 'wget -q localhost'], Interval: 30e9, Timeout: 5e9, Retries: 3 },
    OnBuild: ['RUN echo later'],
  });
  assert.equal(cfg.author, 'someone');
  assert.deepEqual(cfg.history, [
    { created_by: 'LABEL org.x=a b c=d', comment: 'buildkit.dockerfile.v0', empty_layer: true },
    {
      created_by: 'EXPOSE [53/udp 80/tcp 8000/tcp 8001/tcp]',
      comment: 'buildkit.dockerfile.v0',
      empty_layer: true,
    },
    { created_by: 'VOLUME [/data /logs]', comment: 'buildkit.dockerfile.v0', empty_layer: true },
    { created_by: 'USER app:app', comment: 'buildkit.dockerfile.v0', empty_layer: true },
    { created_by: 'STOPSIGNAL SIGQUIT', comment: 'buildkit.dockerfile.v0', empty_layer: true },
    {
      created_by:
        'HEALTHCHECK {Test:[CMD-SHELL wget -q localhost] Interval:30s Timeout:5s StartPeriod:0s StartInterval:0s Retries:3}',
      comment: 'buildkit.dockerfile.v0',
      empty_layer: true,
    },
    { created_by: 'MAINTAINER someone', comment: 'buildkit.dockerfile.v0', empty_layer: true },
    { created_by: 'CMD ["sh"]', comment: 'buildkit.dockerfile.v0', empty_layer: true },
  ]);
  assert.equal(c.graph.state.vertex, undefined, 'metadata only: still scratch');
});

test('HEALTHCHECK NONE and invalid values at conversion', async () => {
  const c = await convert('FROM busybox\nHEALTHCHECK NONE\n');
  assert.deepEqual(c.graph.config.config?.Healthcheck, { Test: ['NONE'] });
  const sig = await convertError('FROM busybox\nSTOPSIGNAL SIGNOPE\n');
  assert.equal(sig.message, 'invalid signal: SIGNOPE');
  assert.equal(lineOf(sig), 2);
  const port = await convertError('FROM busybox\n\nEXPOSE 80/sctpx\n');
  assert.equal(port.message, 'invalid port: "80/sctpx": invalid proto: sctpx');
  assert.equal(lineOf(port), 3);
});

test('EXPOSE expands variables and splits words', async () => {
  const c = await convert('FROM busybox\nENV PORTS="80 81/udp"\nEXPOSE $PORTS\n');
  assert.deepEqual(c.graph.config.config?.ExposedPorts, { '80/tcp': {}, '81/udp': {} });
});

test('WORKDIR: relative to the previous one, created by a mkdir owned by USER, / makes no layer', async () => {
  const c = await convert('FROM busybox\nUSER 1000:1000\nWORKDIR /app\nWORKDIR sub/../src/\nWORKDIR /\n', {
    sourceDateEpoch: 1700000000,
  });
  const mk = c.named('[3/4] WORKDIR sub/../src/').op as FileOp;
  assert.deepEqual(mk.actions, [
    {
      action: 'mkdir',
      path: '/app/src',
      mode: 0o755,
      makeParents: true,
      chown: { user: '1000', group: '1000' },
      mtime: 1700000000,
    },
  ]);
  assert.equal(c.graph.config.config?.WorkingDir, '/');
  const h = c.graph.config.history!.slice(1);
  assert.deepEqual(
    h.map((x) => [x.created_by, x.empty_layer ?? false, x.created]),
    [
      ['USER 1000:1000', true, '2023-11-14T22:13:20Z'],
      ['WORKDIR /app', false, '2023-11-14T22:13:20Z'],
      ['WORKDIR /app/src', false, '2023-11-14T22:13:20Z'],
      ['WORKDIR /', true, '2023-11-14T22:13:20Z'],
    ],
  );
  assert.equal(c.graph.sourceDateEpoch, 1700000000);
});

test('SOURCE_DATE_EPOCH from a global ARG default', async () => {
  const c = await convert('ARG SOURCE_DATE_EPOCH=0\nFROM busybox\nRUN x\n');
  assert.equal(c.graph.sourceDateEpoch, 0);
  assert.equal(c.graph.config.history?.at(-1)?.created, '1970-01-01T00:00:00Z');
  const none = await convert('FROM busybox\nRUN x\n');
  assert.equal(none.graph.config.history?.at(-1)?.created, undefined);
  const bad = await convertError('FROM busybox\n', { buildArgs: { SOURCE_DATE_EPOCH: 'yesterday' } });
  assert.equal(bad.message, 'invalid SOURCE_DATE_EPOCH: yesterday');
});

test('ONBUILD of a base stage runs in the stage built from it, with ONBUILD in the names', async () => {
  const c = await convert(
    'FROM busybox AS base\nONBUILD RUN echo hi\nONBUILD ENV X=1\nFROM base\nRUN after\n',
  );
  assert.deepEqual(c.names.slice(1), [
    '[stage-1 1/3] ONBUILD RUN echo hi',
    '[stage-1 2/3] RUN after', // ENV makes no step but counts in the total, as upstream
  ]);
  assert.deepEqual((c.vertices.at(-1)!.op as ExecOp).env, [PATH, 'X=1']);
  assert.equal(c.graph.config.config?.OnBuild, undefined);
});

test('noCache marks RUN and COPY vertices; pull resolves with the registry', async () => {
  const c = await convert('FROM busybox\nRUN x\nCOPY a b\nWORKDIR /w\n', { noCache: true, pull: true });
  const flagged = c.vertices.filter((v) => v.noCache).map((v) => v.name);
  assert.deepEqual(flagged, ['[2/4] RUN x', '[3/4] COPY a b']);
  assert.equal(c.calls[0]!.pull, true);
  assert.equal(((c.vertices[0]!.op as SourceOp).source as { resolveMode?: string }).resolveMode, 'pull');
});

test('FROM an image without layers is scratch; FROM scratch has no FROM step', async () => {
  const c = await convert('FROM empty\nRUN x\n', {
    images: { 'docker.io/library/empty:latest': imageConfig({}, { layers: 0 }) },
  });
  assert.deepEqual(c.names, ['[1/2] RUN x']);
  const s = await convert('FROM scratch\nCOPY a /\n');
  assert.deepEqual(s.names, ['[internal] load build context', '[1/1] COPY a /']);
  assert.equal(s.graph.config.config?.WorkingDir, '/');
});

test('target platform fields of the final image', async () => {
  const c = await convert('FROM arm\n', {
    targetPlatform: { os: 'linux', architecture: 'arm', variant: 'v7' },
    images: {
      'docker.io/library/arm:latest': imageConfig(
        {},
        { platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
      ),
    },
  });
  assert.equal(c.graph.config.variant, 'v7');
  const v8 = await convert('FROM arm64\n', {
    targetPlatform: { os: 'linux', architecture: 'arm64' },
    images: {
      'docker.io/library/arm64:latest': imageConfig(
        {},
        { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ),
    },
  });
  // Same os/arch keeps the base's variant, then normalisation drops arm64's default v8.
  assert.equal(v8.graph.config.variant, undefined);
});

test('errors: unknown instruction and bad flags carry their line', async () => {
  const e = await convertError('FROM busybox\nRUN x\nCOPPY a b\n');
  assert.equal(e.code, 'DRAY_DOCKERFILE');
  assert.equal(
    e.message,
    'dockerfile parse error on line 3: unknown instruction: COPPY (did you mean COPY?)',
  );
  assert.equal(lineOf(e), 3);
  const f = await convertError('FROM busybox\nRUN --mont=type=cache x\n');
  assert.equal(f.message, 'dockerfile parse error on line 2: unknown flag: --mont (did you mean mount?)');
  assert.equal((await convertError('')).message, 'the Dockerfile cannot be empty');
  assert.equal((await convertError('ARG A=1\n')).message, 'dockerfile contains no stages to build');
});

test('errors: stage references', async () => {
  const self = await convertError('FROM busybox AS a\nCOPY --from=a /x /y\n');
  assert.equal(self.message, 'circular dependency detected on stage: a');
  assert.equal(lineOf(self), 2);
  const later = await convertError('FROM busybox AS a\nCOPY --from=b /x /y\nFROM busybox AS b\nFROM a\n');
  assert.equal(later.message, 'cannot copy from stage "b", it needs to be defined before current stage "a"');
  assert.equal(lineOf(later), 2);
  const variable = await convertError('FROM busybox\nCOPY --from=$X /x /y\n');
  assert.equal(
    variable.message,
    'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
  );
  const index = await convertError('FROM busybox\nCOPY --from=5 /x /y\n');
  assert.equal(index.message, 'invalid stage index 5');
  const mount = await convertError(
    'FROM busybox AS a\nRUN --mount=from=b,target=/b x\nFROM busybox AS b\nFROM a\n',
  );
  assert.equal(
    mount.message,
    'cannot mount from stage "b" to "/b", stage needs to be defined before current command',
  );
});

test('COPY --from an image or a stage index', async () => {
  const c = await convert(
    'FROM busybox AS zero\nRUN x\nFROM scratch\nCOPY --from=0 /a /a\nCOPY --from=nginx:1.25 /etc/nginx /etc/nginx\n',
  );
  const nginx = `docker.io/library/nginx:1.25@${fakeDigest('docker.io/library/nginx:1.25')}`;
  assert.ok(c.names.includes(`FROM ${nginx}`), c.names.join('\n'));
  assert.deepEqual(
    c.calls.map((x) => x.ref),
    ['docker.io/library/busybox:latest', 'docker.io/library/nginx:1.25'],
  );
});

test('resolver errors name the image and suggest a stage', async () => {
  const e = await convertError('FROM busybox AS builder\nFROM buidler\n', {
    resolveImage: async (ref) => {
      if (ref.includes('buidler'))
        throw new DrayError('DRAY_PULL_DENIED', 'pull access denied, repository does not exist');
      return { ref, digest: fakeDigest(ref), config: imageConfig() };
    },
  });
  assert.equal(e.code, 'DRAY_PULL_DENIED');
  assert.equal(e.message, 'buidler: pull access denied, repository does not exist (did you mean builder?)');
});

test('checks: # check=skip and error=true', async () => {
  const skipped = await convert('# check=skip=JSONArgsRecommended\nFROM busybox\nCMD echo\n');
  assert.deepEqual(skipped.graph.warnings, []);
  const e = await convertError('# check=error=true\nFROM busybox\nCMD echo\n');
  assert.equal(e.message, 'lint violation found for rules: JSONArgsRecommended');
  const casing = await convert('from busybox AS build\nrun x\n');
  assert.deepEqual(
    casing.graph.warnings.map((w) => w.message),
    ["'AS' and 'from' keywords' casing do not match"],
  );
  const undef = await convert('FROM busybox\nCOPY $XYZQ /x\nENV A=$HOMR\n', {
    images: { 'docker.io/library/busybox:latest': imageConfig({ Env: [PATH, 'HOME=/root'] }) },
  });
  assert.deepEqual(
    undef.graph.warnings.map((w) => w.message),
    ["Usage of undefined variable '$XYZQ'", "Usage of undefined variable '$HOMR' (did you mean $HOME?)"],
  );
});

test('escape directive applies to word expansion', async () => {
  const c = await convert('# escape=`\nFROM busybox\nENV A=x`$B\n');
  assert.deepEqual(c.graph.config.config?.Env, [PATH, 'A=x$B']);
});

test('the base image config sets the first step: env, working dir, user', async () => {
  const c = await convert('FROM app\nRUN id\n', {
    images: {
      'docker.io/library/app:latest': imageConfig({ Env: ['A=1'], WorkingDir: '/srv', User: 'www' }),
    },
  });
  const op = c.vertices.at(-1)!.op as ExecOp;
  // A PATH is added when the image has none, as upstream does.
  assert.deepEqual(op.env, ['A=1', PATH]);
  assert.equal(op.cwd, '/srv');
  assert.equal(op.user, 'www');
  assert.deepEqual(c.graph.config.config?.Env, ['A=1', PATH]);
});

test('FROM --platform: expanded with global ARGs, checked, and linted', async () => {
  const c = await convert('FROM --platform=$TARGETPLATFORM busybox\n');
  assert.deepEqual(
    c.graph.warnings.map((w) => w.rule),
    ['RedundantTargetPlatform'],
  );
  const constant = await convert('FROM --platform=linux/arm64 busybox AS build\n');
  assert.deepEqual(
    constant.graph.warnings.map((w) => w.message),
    ['FROM --platform flag should not use constant value "linux/arm64"'],
  );
  assert.deepEqual(constant.calls[0]!.platform, { os: 'linux', architecture: 'arm64' });
  const empty = await convertError('FROM --platform=$NOPE busybox\n');
  assert.equal(empty.message, 'empty platform value from expression $NOPE');
  assert.equal(lineOf(empty), 1);
});

test('the Dockerfile may be bytes; an aborted signal stops the conversion', async () => {
  const c = await convert(new TextEncoder().encode('FROM busybox\nRUN x\n') as unknown as string);
  assert.equal(c.names.length, 2);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(convert('FROM busybox\n', { signal: ac.signal }));
});

test('ONBUILD triggers of a base image may read other stages (resolved in a second round)', async () => {
  const c = await convert('FROM busybox AS assets\nRUN build\nFROM app\nRUN after\n', {
    images: { 'docker.io/library/app:latest': imageConfig({ OnBuild: ['COPY --from=assets /out /srv'] }) },
  });
  assert.ok(c.names.includes('[stage-1 2/3] ONBUILD COPY --from=assets /out /srv'), c.names.join('\n'));
  // Upstream names a stage's FROM once per resolution round, and `assets` was resolved once
  // as unreachable before the trigger made it needed: its steps count from 2.
  assert.ok(c.names.includes('[assets 3/2] RUN build'), c.names.join('\n'));
  assert.deepEqual(c.graph.stages, ['assets', '1']);
});
