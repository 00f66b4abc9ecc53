// "Equal to docker build": each case is built by dray and by `docker build` (the BuildKit
// embedded in the harness dockerd 20.10) from the same context, on the same base image (dray's
// stored busybox image, `docker load`ed into the daemon, so both start from identical layers
// and config). The two images' merged file trees and build-set config fields must be equal;
// a failing Dockerfile must fail in both at the same line. Features that BuildKit 0.8 predates
// (heredocs, RUN --network, COPY --link/--exclude, symbolic --chmod, ADD --checksum) and what
// needs a session (secrets) are in dockerfile-documented.test.ts.
import assert from 'node:assert/strict';
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { build, collectProgress, isDrayError, save } from '../../src/index.ts';
import { buildWithBuildKit } from '../harness/buildkit-build.ts';
import { storeBusyboxImage } from '../harness/busybox-image.ts';
import { startDockerd } from '../harness/docker-engine.ts';
import { requireTool, runChecked, tempDir } from '../harness/tools.ts';
import {
  configLines,
  describeTree,
  dockerImageSnapshot,
  drayImageSnapshot,
  failedLine,
  lineDiff,
  projectConfig,
} from './image-compare.ts';

/** The base every case builds on (busybox, PATH and Cmd ["sh"]). */
const B = 'dray-eq/busybox';
/** The same plus users and groups for `--chown=name` and `USER name`. */
const U = 'dray-eq/users';

/** A context file: text, or bytes with a mode, a symlink, or an empty directory. */
type ContextFile = string | { content: string; mode: number } | { symlink: string } | { dir: true };

export interface EqualCase {
  name: string;
  /** `@HTTP@` in it is replaced by the test HTTP server's base URL. */
  dockerfile: string;
  /** Dockerfile path in the context (default `Dockerfile`). */
  dockerfilePath?: string;
  files?: Record<string, ContextFile>;
  /** Shell commands (sh -c, in the context dir) that make files the case needs (archives). */
  prepare?: string;
  buildArgs?: Record<string, string>;
  target?: string;
  labels?: Record<string, string>;
  /**
   * Paths the case's ignore file excludes: left out of BuildKit's upload by hand (the harness
   * sends the context whole), while dray gets the whole context plus the ignore file.
   */
  ignored?: string[];
  expectError?: { line: number };
  /**
   * Where BuildKit 0.8 (in dockerd 20.10, the reference run here) and current BuildKit (which
   * dray follows) are known to differ; the reference's output is rewritten to current
   * BuildKit's before comparing. `stubs`: empty mount-target directories (and parents) a RUN
   * --mount left in the image, which current BuildKit removes (executor/stubs.go,
   * MountStubsCleaner). `history`: created_by strings, [0.8's, current's].
   */
  v08?: { reason: string; stubs?: string[]; history?: Array<[string, string]> };
}

const HTTP_BODY = 'served over http\n';

const cases: EqualCase[] = [
  {
    name: 'RUN shell and exec forms; deletions become whiteouts',
    dockerfile: `FROM ${B}
RUN echo shell > /shell.txt
RUN ["/bin/sh", "-c", "echo exec > /exec.txt"]
RUN ["touch", "/touched"]
RUN rm /bin/vi && rm -rf /root && mkdir -p /new/dir && chmod 0750 /new/dir
`,
  },
  {
    name: 'ARGs before FROM: used in FROM, redeclared in the stage',
    v08: {
      reason: 'current BuildKit writes the inherited global value into the ARG history entry (dispatchArg)',
      history: [
        ['ARG TAG', 'ARG TAG=latest'],
        ['ARG UNUSED', 'ARG UNUSED=x'],
      ],
    },
    dockerfile: `ARG IMG=${B}
ARG TAG=latest
ARG UNUSED=x
FROM \${IMG}:\${TAG}
ARG TAG
ARG UNUSED
RUN echo "tag=$TAG unused=$UNUSED img=$IMG" > /args.txt
`,
  },
  {
    name: 'FROM --platform and the predefined platform ARGs',
    dockerfile: `FROM --platform=$BUILDPLATFORM ${B} AS build
ARG BUILDPLATFORM
ARG BUILDOS
ARG BUILDARCH
ARG TARGETPLATFORM
ARG TARGETOS
ARG TARGETARCH
ARG TARGETVARIANT
RUN echo "$BUILDPLATFORM|$BUILDOS|$BUILDARCH|$TARGETPLATFORM|$TARGETOS|$TARGETARCH|$TARGETVARIANT" > /platform.txt
FROM --platform=$TARGETPLATFORM ${B}
COPY --from=build /platform.txt /
RUN echo "undeclared:$TARGETOS" > /undeclared.txt
`,
  },
  {
    name: 'RUN --mount=type=cache with id, sharing, mode, uid, gid',
    v08: {
      reason:
        'current BuildKit removes the empty mount targets a RUN --mount created; BuildKit 0.8 left them in the layer',
      stubs: ['var/cache/app', 'var/cache', 'var', 'c2', 'c3'],
    },
    dockerfile: `FROM ${B}
RUN --mount=type=cache,target=/var/cache/app,id=eq-cache-1 echo one > /var/cache/app/f && ls /var/cache/app > /cache-list.txt
RUN --mount=type=cache,target=/var/cache/app,id=eq-cache-1,sharing=locked cat /var/cache/app/f > /cache-again.txt
RUN --mount=type=cache,target=/c2,id=eq-cache-2,sharing=private,mode=0700,uid=1000,gid=1000 stat -c '%a %u %g' /c2 > /c2-stat.txt
RUN --mount=type=cache,target=/c3,sharing=shared,ro ls /c3 | wc -l > /c3.txt
`,
  },
  {
    name: 'RUN --mount=type=bind from the context and from a stage, default type',
    files: { 'data/a.txt': 'from context\n' },
    v08: {
      reason:
        'current BuildKit removes the empty mount targets a RUN --mount created; BuildKit 0.8 left them in the layer',
      stubs: ['mnt/data', 'mnt/out', 'mnt', 'ctx'],
    },
    dockerfile: `FROM ${B} AS src
RUN mkdir /out && echo from-stage > /out/s.txt
FROM ${B}
RUN --mount=type=bind,source=data,target=/mnt/data cat /mnt/data/a.txt > /a-copy.txt
RUN --mount=type=bind,from=src,source=/out,target=/mnt/out cat /mnt/out/s.txt > /s-copy.txt
RUN --mount=target=/ctx cat /ctx/data/a.txt > /default-type.txt
`,
  },
  {
    name: 'RUN --mount=type=bind,rw: writes allowed, then discarded',
    files: { 'data/a.txt': 'from context\n' },
    v08: {
      reason:
        'current BuildKit removes the empty mount targets a RUN --mount created; BuildKit 0.8 left them in the layer',
      stubs: ['mnt/rw', 'mnt'],
    },
    dockerfile: `FROM ${B}
RUN --mount=type=bind,source=data,target=/mnt/rw,rw echo scribble > /mnt/rw/a.txt && cat /mnt/rw/a.txt > /rw.txt
RUN --mount=type=bind,source=data,target=/mnt/rw,readwrite cat /mnt/rw/a.txt > /discarded.txt
`,
  },
  {
    name: 'RUN --mount=type=tmpfs',
    v08: {
      reason:
        'current BuildKit removes the empty mount targets a RUN --mount created; BuildKit 0.8 left them in the layer',
      stubs: ['scratch'],
    },
    dockerfile: `FROM ${B}
RUN --mount=type=tmpfs,target=/scratch echo hi > /scratch/x && cat /scratch/x > /from-tmpfs.txt
RUN --mount=type=tmpfs,target=/tmp ls -A /tmp | wc -l > /tmp-seen-empty.txt
`,
  },
  {
    name: 'CMD shell form, ENTRYPOINT exec form',
    dockerfile: `FROM ${B}
CMD echo shell-form
ENTRYPOINT ["/bin/echo", "exec"]
`,
  },
  {
    name: 'ENTRYPOINT resets an inherited CMD, not one set in the stage',
    dockerfile: `FROM ${B} AS inherited
ENTRYPOINT ["/bin/echo"]
FROM ${B}
CMD ["set-here"]
ENTRYPOINT ["/bin/echo"]
COPY --from=inherited /bin/busybox /bb
`,
  },
  {
    name: 'SHELL changes RUN, shell-form CMD and ENTRYPOINT',
    dockerfile: `FROM ${B}
SHELL ["/bin/sh", "-ec"]
RUN echo with-ec > /ec.txt
ENTRYPOINT echo entry
SHELL ["/bin/sh", "-xc"]
CMD echo later-shell
RUN echo with-xc > /xc.txt
`,
  },
  {
    name: 'ENV forms and expansion',
    dockerfile: `FROM ${B}
ENV A=1 B="two words" C=with\\ space
ENV LEGACY value with spaces
ENV D=\${A}-x E=$B F=\${UNSET:-default} G=\${A:+alt} H='$A literal'
RUN echo "$A|$B|$C|$LEGACY|$D|$E|$F|$G|$H" > /env.txt
ENV PATH=/opt/bin:$PATH
RUN echo "$PATH" > /path.txt
`,
  },
  {
    name: 'ARG scope: global, per stage, --build-arg, RUN history',
    v08: {
      reason:
        'current BuildKit writes the ARG value in effect into its history entry (dispatchArg) and lists a redeclared ARG once in RUN history (runCommandString)',
      history: [
        ['ARG LOCAL', 'ARG LOCAL=l-cli'],
        ['ARG LOCAL=override', 'ARG LOCAL=l-cli'],
        [
          'RUN |2 LOCAL=l-cli LOCAL=l-cli /bin/sh -c echo "$LOCAL" > /local2.txt # buildkit',
          'RUN |1 LOCAL=l-cli /bin/sh -c echo "$LOCAL" > /local2.txt # buildkit',
        ],
      ],
    },
    buildArgs: { FROMCLI: 'cli', LOCAL: 'l-cli', NEVER_DECLARED: 'x' },
    dockerfile: `ARG GLOBAL=g-default
FROM ${B} AS one
ARG GLOBAL
ARG LOCAL=l-default
ARG FROMCLI
ARG NODEFAULT
ENV FROM_ARG=$LOCAL
RUN echo "$GLOBAL $LOCAL $FROMCLI [$NODEFAULT]" > /one.txt
FROM ${B}
RUN echo "global:$GLOBAL local:$LOCAL" > /two.txt
ARG LOCAL
COPY --from=one /one.txt /
RUN echo "$LOCAL" > /local.txt
ARG LOCAL=override
RUN echo "$LOCAL" > /local2.txt
`,
  },
  {
    name: 'LABEL forms, MAINTAINER, --label',
    labels: { 'from.cli': 'yes', a: 'cli-wins' },
    dockerfile: `FROM ${B}
MAINTAINER Jane Doe <jane@example.com>
LABEL a=1 "b c"="d e" multi="x \\
y"
LABEL empty=$UNSET_ARG
ARG V=1.2
LABEL version=$V
LABEL old-form value
`,
  },
  {
    name: 'EXPOSE, VOLUME, STOPSIGNAL',
    v08: {
      reason:
        'current BuildKit prints the sorted port list, not a Go map (convert_expose.go, moby/buildkit 98eab3257)',
      history: [
        ['EXPOSE map[443/tcp:{} 53/udp:{} 80/tcp:{}]', 'EXPOSE [443/tcp 53/udp 80/tcp]'],
        ['EXPOSE map[8000/tcp:{} 8001/tcp:{} 8002/tcp:{}]', 'EXPOSE [8000/tcp 8001/tcp 8002/tcp]'],
        ['EXPOSE map[9000/tcp:{}]', 'EXPOSE [9000/tcp]'],
      ],
    },
    dockerfile: `FROM ${B}
EXPOSE 80 443/tcp 53/udp
EXPOSE 8000-8002
ARG P=9000
EXPOSE $P/tcp
VOLUME /data
VOLUME ["/var/a", "/var/b"]
VOLUME /one /two
RUN touch /after-volume
STOPSIGNAL SIGTERM
`,
  },
  {
    name: 'STOPSIGNAL numeric, CMD exec form',
    dockerfile: `FROM ${B}
STOPSIGNAL 9
CMD ["/bin/sh", "-c", "echo hi"]
`,
  },
  {
    name: 'WORKDIR absolute, relative, from ENV; files made there',
    dockerfile: `FROM ${B}
WORKDIR /app
WORKDIR sub
ENV DIRNAME=deep
WORKDIR $DIRNAME/er
RUN pwd > /pwd.txt && touch here
WORKDIR /
WORKDIR /app
`,
  },
  {
    name: 'USER by name and number; WORKDIR and RUN as that user',
    dockerfile: `FROM ${U}
USER app
RUN id -u > /tmp/id-app.txt && id -g >> /tmp/id-app.txt && id -un >> /tmp/id-app.txt
USER 1001:1001
RUN touch /tmp/numeric
USER app:staff
WORKDIR /wd-as-app
RUN touch made-here
USER root
`,
  },
  {
    name: 'HEALTHCHECK with options',
    v08: {
      reason: 'current BuildKit prints the health config with %+v (and has StartInterval)',
      history: [
        [
          'HEALTHCHECK &{["CMD-SHELL" "wget -q http://localhost/ || exit 1"] "5s" "3s" "2s" \'\\x04\'}',
          'HEALTHCHECK {Test:[CMD-SHELL wget -q http://localhost/ || exit 1] Interval:5s Timeout:3s StartPeriod:2s StartInterval:0s Retries:4}',
        ],
      ],
    },
    dockerfile: `FROM ${B}
HEALTHCHECK --interval=5s --timeout=3s --start-period=2s --retries=4 CMD wget -q http://localhost/ || exit 1
`,
  },
  {
    name: 'HEALTHCHECK exec form, then NONE',
    v08: {
      reason: 'current BuildKit prints the health config with %+v (and has StartInterval)',
      history: [
        [
          'HEALTHCHECK &{["CMD" "true"] "0s" "0s" "0s" \'\\x00\'}',
          'HEALTHCHECK {Test:[CMD true] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s Retries:0}',
        ],
        [
          'HEALTHCHECK &{["NONE"] "0s" "0s" "0s" \'\\x00\'}',
          'HEALTHCHECK {Test:[NONE] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s Retries:0}',
        ],
      ],
    },
    target: 'none',
    dockerfile: `FROM ${B} AS exec
HEALTHCHECK CMD ["true"]
FROM exec AS none
HEALTHCHECK NONE
`,
  },
  {
    name: 'ONBUILD recorded and triggered by a stage built on it',
    dockerfile: `FROM ${B} AS parent
ONBUILD RUN echo triggered > /trigger.txt
ONBUILD ENV FROM_TRIGGER=1
RUN echo parent > /parent.txt
FROM parent
RUN cat /trigger.txt > /seen.txt
`,
  },
  {
    name: 'ONBUILD in the final image (not triggered)',
    dockerfile: `FROM ${B}
ONBUILD COPY . /src
ONBUILD RUN make
`,
  },
  {
    name: 'COPY: file and directory rules, trailing slashes, relative destinations',
    files: {
      'a.txt': 'a\n',
      'b.txt': 'b\n',
      'dir/x.txt': 'x\n',
      'dir/sub/y.txt': 'y\n',
      'dir/empty': { dir: true },
      'run.sh': { content: '#!/bin/sh\necho run\n', mode: 0o755 },
      'private.txt': { content: 'p\n', mode: 0o600 },
    },
    dockerfile: `FROM ${B}
COPY a.txt /file-renamed
COPY a.txt /into-dir/
COPY a.txt b.txt /multi/
COPY dir /dir-contents
COPY dir/ /dir-slash/
COPY dir/sub /tmp/
COPY run.sh private.txt /modes/
COPY a.txt relative-dest
WORKDIR /w
COPY a.txt .
COPY a.txt ./renamed.txt
COPY . /all/
`,
  },
  {
    name: 'COPY wildcards',
    files: {
      'a.txt': 'a\n',
      'b.txt': 'b\n',
      'c.md': 'c\n',
      'dir/x.txt': 'x\n',
      'dir/sub/y.txt': 'y\n',
      'dor/z.txt': 'z\n',
      'other/sub/y.txt': 'other y\n',
    },
    dockerfile: `FROM ${B}
COPY *.txt /w1/
COPY d?r/* /w2/
COPY [ab].txt /w3/
COPY */sub/y.txt /w4/
COPY nomatch* c.md /w5/
COPY d* /w6/
`,
  },
  {
    name: 'COPY and ADD --chown with names resolved in the image',
    v08: {
      reason: 'current BuildKit writes --chown into the COPY/ADD history entry (dispatchCopy)',
      history: [
        ['COPY a.txt /o/app-only # buildkit', 'COPY --chown=app a.txt /o/app-only # buildkit'],
        ['COPY a.txt /o/app-staff # buildkit', 'COPY --chown=app:staff a.txt /o/app-staff # buildkit'],
        ['COPY dir /o/numeric/ # buildkit', 'COPY --chown=1234:5678 dir /o/numeric/ # buildkit'],
        ['COPY a.txt /o/mixed # buildkit', 'COPY --chown=app:50 a.txt /o/mixed # buildkit'],
        [
          'COPY a.txt /newparent/deep/file # buildkit',
          'COPY --chown=other a.txt /newparent/deep/file # buildkit',
        ],
        ['ADD b.txt /o/added # buildkit', 'ADD --chown=app:staff b.txt /o/added # buildkit'],
        ['COPY a.txt /o/from-arg # buildkit', 'COPY --chown=app a.txt /o/from-arg # buildkit'],
      ],
    },
    files: { 'a.txt': 'a\n', 'b.txt': 'b\n', 'dir/x.txt': 'x\n' },
    dockerfile: `FROM ${U}
COPY --chown=app a.txt /o/app-only
COPY --chown=app:staff a.txt /o/app-staff
COPY --chown=1234:5678 dir /o/numeric/
COPY --chown=app:50 a.txt /o/mixed
COPY --chown=other a.txt /newparent/deep/file
ADD --chown=app:staff b.txt /o/added
ARG OWNER=app
COPY --chown=$OWNER a.txt /o/from-arg
`,
  },
  {
    name: 'COPY and ADD --chmod (octal)',
    v08: {
      reason: 'current BuildKit writes --chown and --chmod into the COPY/ADD history entry (dispatchCopy)',
      history: [
        ['COPY a.txt /m/a # buildkit', 'COPY --chmod=0640 a.txt /m/a # buildkit'],
        ['COPY dir /m/dir/ # buildkit', 'COPY --chmod=755 dir /m/dir/ # buildkit'],
        ['ADD b.txt /m/b # buildkit', 'ADD --chmod=0600 b.txt /m/b # buildkit'],
        ['COPY a.txt /m/both # buildkit', 'COPY --chown=1:2 --chmod=0444 a.txt /m/both # buildkit'],
      ],
    },
    files: { 'a.txt': 'a\n', 'b.txt': 'b\n', 'dir/x.txt': 'x\n', 'dir/sub/y.txt': 'y\n' },
    // /m exists first: current BuildKit gives parents COPY creates the --chmod mode too
    // (fsutil MkdirAll with ci.Mode), BuildKit 0.8 made them 0755; dray follows current.
    dockerfile: `FROM ${B}
RUN mkdir /m
COPY --chmod=0640 a.txt /m/a
COPY --chmod=755 dir /m/dir/
ADD --chmod=0600 b.txt /m/b
COPY --chown=1:2 --chmod=0444 a.txt /m/both
`,
  },
  {
    name: 'COPY --from a stage (by name and index) and an image',
    dockerfile: `FROM ${B} AS build
RUN mkdir -p /out/bin && echo built > /out/bin/app && chmod 0751 /out/bin/app && ln -s app /out/bin/link && chown -R 5:6 /out
FROM ${B}
COPY --from=build /out /opt/
COPY --from=0 /out/bin/app /usr/local/bin/app0
COPY --from=${U} /etc/passwd /passwd-from-image
COPY --from=build /out/bin/link /copied-link
COPY --from=build /out/bin/ /bin-contents/
`,
  },
  {
    name: 'ADD: local tar archives extract, other files copy',
    files: {
      'tree/f.txt': 'in the tar\n',
      'tree/bin/tool': { content: '#!/bin/sh\n', mode: 0o750 },
      'tree/ln': { symlink: 'f.txt' },
      'plain.txt': 'plain\n',
      'dir/x.txt': 'x\n',
    },
    prepare:
      'tar --numeric-owner --owner=7 --group=8 -C tree -cf archive.tar . && tar --numeric-owner --owner=0 --group=0 -C tree -czf archive.tar.gz . && cp archive.tar notatar.txt.bin && rm -r tree',
    dockerfile: `FROM ${B}
ADD archive.tar /x/
ADD archive.tar.gz /y
ADD plain.txt /plain.txt
ADD dir /added-dir/
ADD archive.tar.gz /z/renamed.tgz
`,
  },
  {
    name: 'ADD of an http URL',
    dockerfile: `FROM ${B}
ADD @HTTP@/file.txt /downloaded.txt
ADD @HTTP@/file.txt /dl-dir/
ADD @HTTP@/file.txt?x=1 /with-query
`,
  },
  {
    name: 'multi-stage with --target (later stages not built)',
    target: 'middle',
    dockerfile: `FROM ${B} AS base
RUN echo base > /base.txt
FROM base AS middle
RUN echo middle > /middle.txt
LABEL stage=middle
FROM middle AS last
RUN echo last > /last.txt
FROM ${B} AS broken
RUN exit 1
`,
  },
  {
    name: '.dockerignore with exceptions and ** patterns',
    files: {
      '.dockerignore': '*.log\n!keep.log\nsecret/\n.dockerignore\n**/tmp\n',
      'a.txt': 'a\n',
      'x.log': 'x\n',
      'keep.log': 'keep\n',
      'secret/s': 's\n',
      'sub/tmp/t': 't\n',
      'sub/ok': 'ok\n',
    },
    ignored: ['.dockerignore', 'x.log', 'secret', 'sub/tmp'],
    dockerfile: `FROM ${B}
COPY . /ctx/
`,
  },
  {
    name: '<Dockerfile>.dockerignore wins over .dockerignore',
    dockerfilePath: 'build/app.Dockerfile',
    files: {
      'build/app.Dockerfile.dockerignore': 'notes/*.md\n',
      '.dockerignore': 'notes/*.txt\n',
      'notes/a.md': 'a\n',
      'notes/b.txt': 'b\n',
    },
    ignored: ['.dockerignore', 'notes/a.md'],
    dockerfile: `FROM ${B}
COPY notes/ /notes/
`,
  },
  {
    name: 'escape directive and line continuations',
    dockerfile: `# escape=\`
FROM ${B}
RUN echo one \`
    two > /joined.txt
# a comment between
ENV W=C:\\path
LABEL p="a\`"b"
RUN echo "$W" \`
# comment inside a continuation
  > /w.txt
`,
  },
  {
    name: 'whiteouts: replaced directories and files across layers',
    dockerfile: `FROM ${B}
RUN mkdir -p /d/sub && echo 1 > /d/sub/f && echo x > /swap && mkdir /swap2 && echo in > /swap2/f
RUN rm -rf /d/sub && mkdir /d/sub && echo 2 > /d/sub/g && rm /swap && mkdir /swap && rm -r /swap2 && echo file > /swap2
RUN rm -rf /root && echo now-a-file > /root && rm -rf /tmp && mkdir /tmp && echo new > /tmp/only
`,
  },
  {
    name: 'COPY of symlinks in the context and of a symlink source',
    files: {
      'a.txt': 'a\n',
      'dir/in.txt': 'in\n',
      'link-a': { symlink: 'a.txt' },
      'link-dir': { symlink: 'dir' },
      dangling: { symlink: 'nowhere' },
    },
    dockerfile: `FROM ${B}
COPY . /ctx/
COPY link-a /followed
COPY link-dir /followed-dir/
`,
  },
  {
    name: 'error: unknown instruction',
    expectError: { line: 3 },
    dockerfile: `FROM ${B}
RUN true
FROBNICATE x
`,
  },
  {
    name: 'error: failing RUN',
    expectError: { line: 3 },
    dockerfile: `FROM ${B}
RUN true
RUN echo failing && exit 3
RUN true
`,
  },
  {
    name: 'error: COPY of a missing file',
    expectError: { line: 3 },
    files: { 'a.txt': 'a\n' },
    dockerfile: `FROM ${B}
COPY a.txt /
COPY missing.txt /
`,
  },
  {
    name: 'error: ENV without a value',
    expectError: { line: 2 },
    dockerfile: `FROM ${B}
ENV
`,
  },
  {
    name: 'several COPY sources into a destination without a trailing slash',
    files: { 'a.txt': 'a\n', 'b.txt': 'b\n', 'dir/c.txt': 'c\n' },
    dockerfile: `FROM ${B}
COPY a.txt b.txt /notdir
`,
  },
  {
    name: 'error: a directory source after a file, into a destination without a trailing slash',
    expectError: { line: 3 },
    files: { 'a.txt': 'a\n', 'dir/c.txt': 'c\n' },
    dockerfile: `FROM ${B}
RUN true
COPY a.txt dir /notdir2
`,
  },
  {
    name: 'error: VOLUME does not create its directory',
    expectError: { line: 3 },
    dockerfile: `FROM ${B}
VOLUME /data
RUN echo x > /data/x
`,
  },
  {
    name: 'error: unknown mount type',
    expectError: { line: 3 },
    dockerfile: `FROM ${B}
RUN true
RUN --mount=type=bogus,target=/x true
`,
  },
];

async function writeContext(dir: string, c: EqualCase, http: string, omit: string[]): Promise<void> {
  await chmod(dir, 0o755);
  const files: Record<string, ContextFile> = {
    [c.dockerfilePath ?? 'Dockerfile']: c.dockerfile.replaceAll('@HTTP@', http),
    ...c.files,
  };
  for (const [p, f] of Object.entries(files)) {
    const full = join(dir, p);
    await mkdir(join(full, '..'), { recursive: true });
    if (typeof f === 'string') await writeFile(full, f);
    else if ('symlink' in f) await symlink(f.symlink, full);
    else if ('dir' in f) await mkdir(full, { recursive: true });
    else {
      await writeFile(full, f.content);
      await chmod(full, f.mode);
    }
  }
  if (c.prepare) await runChecked('sh', ['-ec', c.prepare], { cwd: dir });
  for (const p of omit) await rm(join(dir, p), { recursive: true, force: true });
}

/** Serves HTTP_BODY at /file.txt (any query) on 127.0.0.1, with a fixed Last-Modified. */
async function httpServer(t: TestContext): Promise<string> {
  const server: Server = createServer((req, res) => {
    if (!req.url?.startsWith('/file.txt')) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/plain',
      'content-length': Buffer.byteLength(HTTP_BODY),
      'last-modified': 'Wed, 01 Jan 2020 00:00:00 GMT',
    });
    res.end(HTTP_BODY);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('Dockerfiles built by dray equal docker build (BuildKit in dockerd 20.10)', async (t) => {
  if (!requireTool(t, 'dockerd', 'docker', 'containerd', 'runc', 'tar')) return;
  const dockerConfig = await tempDir(t, 'dray-eq-config-');
  const oldConfig = process.env.DOCKER_CONFIG;
  process.env.DOCKER_CONFIG = dockerConfig;
  t.after(() => {
    if (oldConfig === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = oldConfig;
  });
  const root = await tempDir(t, 'dray-eq-root-');
  const [engine] = await Promise.all([
    startDockerd(t),
    storeBusyboxImage(t, root, `docker.io/${B}:latest`),
    storeBusyboxImage(t, root, `docker.io/${U}:latest`, {
      extraFiles: async (dir) => {
        await writeFile(
          join(dir, 'etc/passwd'),
          'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nother:x:1001:1001::/:/bin/sh\n',
        );
        await writeFile(join(dir, 'etc/group'), 'root:x:0:\nstaff:x:50:app\napp:x:1000:\nother:x:1001:\n');
      },
    }),
  ]);
  // The daemon gets dray's own base images, byte for byte.
  const bases = join(await tempDir(t, 'dray-eq-bases-'), 'bases.tar');
  await save([`docker.io/${B}:latest`, `docker.io/${U}:latest`], { root, output: bases });
  const loaded = await engine.docker(['load', '-i', bases]);
  assert.equal(loaded.code, 0, loaded.stderr);
  const http = await httpServer(t);

  for (const [i, c] of cases.entries()) {
    await t.test(c.name, async (t) => {
      const drayCtx = await tempDir(t, 'dray-eq-ctx-');
      const bkCtx = await tempDir(t, 'dray-eq-bkctx-');
      await writeContext(drayCtx, c, http, []);
      await writeContext(bkCtx, c, http, c.ignored ?? []);
      const name = `docker.io/dray-eq/case${i}:latest`;
      const bkTag = `dray-eq/case${i}:bk`;

      const bk = await buildWithBuildKit(engine, {
        context: bkCtx,
        tag: bkTag,
        ...(c.dockerfilePath ? { dockerfile: c.dockerfilePath } : {}),
        ...(c.buildArgs ? { buildArgs: c.buildArgs } : {}),
        ...(c.target ? { target: c.target } : {}),
        ...(c.labels ? { labels: c.labels } : {}),
      });
      const progress = collectProgress();
      let drayError: unknown;
      try {
        await build({
          root,
          context: drayCtx,
          file: join(drayCtx, c.dockerfilePath ?? 'Dockerfile'),
          tags: [name],
          network: 'none',
          progress,
          ...(c.buildArgs ? { buildArgs: c.buildArgs } : {}),
          ...(c.target ? { target: c.target } : {}),
          ...(c.labels ? { labels: c.labels } : {}),
        });
      } catch (e) {
        drayError = e;
      }

      if (c.expectError) {
        assert.equal(bk.ok, false, `docker build succeeded:\n${bk.output}`);
        const bkStep = bk.vertexes.find((v) => v.error !== undefined)?.name;
        const bkLine = failedLine(bk.error ?? '', bkStep, c.dockerfile);
        assert.equal(bkLine, c.expectError.line, `docker build error: ${bk.error}\n${bk.output}`);
        assert.ok(drayError !== undefined, 'dray build succeeded');
        const msg = drayError instanceof Error ? drayError.message : String(drayError);
        // The step as dray names it: on the error, else the vertex its progress marked failed.
        const step =
          (drayError as { step?: string }).step ??
          progress.events.find((e) => e.error !== undefined && e.name?.startsWith('[') === true)?.name;
        const line = drayErrorLine(drayError) ?? failedLine(msg, step, c.dockerfile);
        assert.equal(
          line,
          c.expectError.line,
          `dray error: ${msg} (failed step: ${step ?? 'none reported'})`,
        );
        return;
      }
      assert.equal(bk.ok, true, `docker build failed: ${bk.error}\n${bk.output}`);
      if (drayError !== undefined) throw drayError;

      const [mine, theirs] = await Promise.all([
        drayImageSnapshot(t, root, name),
        dockerImageSnapshot(t, engine, bkTag),
      ]);
      const reference = toCurrentBuildKit(
        c,
        describeTree(theirs.tree),
        configLines(projectConfig(theirs.config)),
      );
      const treeDiff = lineDiff(describeTree(mine.tree), reference.tree);
      const configDiff = lineDiff(configLines(projectConfig(mine.config)), reference.config);
      assert.deepEqual(
        [...treeDiff, ...configDiff],
        [],
        `dray differs from docker build (+ dray only, - docker only):\n${[...treeDiff, ...configDiff].join('\n')}`,
      );
    });
  }
});

/**
 * The reference image's listing rewritten where BuildKit 0.8 (the dockerd 20.10 reference)
 * and current BuildKit (which dray follows) differ, as the case's `v08` says. Every rewrite
 * must find what it rewrites, so a stale entry fails instead of hiding a difference.
 */
function toCurrentBuildKit(
  c: EqualCase,
  tree: string[],
  config: string[],
): { tree: string[]; config: string[] } {
  if (!c.v08) return { tree, config };
  let outTree = tree;
  for (const stub of c.v08.stubs ?? []) {
    const line = `${stub} dir 0755 0:0 0`;
    assert.ok(outTree.includes(line), `v08.stubs: the reference has no empty stub ${line}`);
    assert.ok(
      !outTree.some((l) => l.startsWith(`${stub}/`)),
      `v08.stubs: ${stub} is not empty in the reference`,
    );
    outTree = outTree.filter((l) => l !== line);
  }
  const outConfig = [...config];
  for (const [old, current] of c.v08.history ?? []) {
    const i = outConfig.findIndex((l) => l.startsWith('history[') && l.includes(JSON.stringify(old)));
    assert.ok(i !== -1, `v08.history: the reference has no history entry ${JSON.stringify(old)}`);
    outConfig[i] = outConfig[i]!.replace(JSON.stringify(old), JSON.stringify(current));
  }
  return { tree: outTree, config: outConfig };
}

/** The first line dray's error carries as data (Dockerfile errors), if any. */
function drayErrorLine(e: unknown): number | undefined {
  if (!isDrayError(e)) return undefined;
  const m = /\bline (\d+)\b/.exec(`${e.message} ${e.hint ?? ''}`);
  return m ? Number(m[1]) : undefined;
}
