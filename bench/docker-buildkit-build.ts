// The BuildKit anchor of the build benchmarks: one build on dockerd's embedded BuildKit
// (`POST /build?version=2`, as test/harness/buildkit-build.ts does; Debian's docker CLI has
// no buildx).
//
// argv: <docker socket> <context dir> <tag> [noCache] [buildArg=K=V]... [cacheFrom=REF]... [transcript]
//   noCache     nocache=1
//   buildArg    a build argument, e.g. buildArg=BUILDKIT_INLINE_CACHE=1 (inline cache export)
//   cacheFrom   an image whose inline cache BuildKit imports (`cachefrom=[...]`)
//   transcript  print the `--progress=plain`-like transcript (`#N CACHED` lines) after the ID
//
// The harness has no cache-from option, so builds that import a cache post the request here,
// the same way the harness does (gzipped posix tar of the context, network none), and decode
// the answer with the harness's own decoder.
import { spawn } from 'node:child_process';
import { type IncomingMessage, request } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import {
  type BuildKitBuildResult,
  buildWithBuildKit,
  parseBuildStream,
} from '../test/harness/buildkit-build.ts';

const [socketPath, context, tag, ...rest] = process.argv.slice(2) as [string, string, string, ...string[]];
const noCache = rest.includes('noCache');
const transcript = rest.includes('transcript');
const buildArgs: Record<string, string> = {};
const cacheFrom: string[] = [];
for (const a of rest) {
  if (a.startsWith('buildArg=')) {
    const kv = a.slice('buildArg='.length);
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`bad ${a}: want buildArg=KEY=VALUE`);
    buildArgs[kv.slice(0, eq)] = kv.slice(eq + 1);
  } else if (a.startsWith('cacheFrom=')) cacheFrom.push(a.slice('cacheFrom='.length));
  else if (a !== 'noCache' && a !== 'transcript') throw new Error(`unknown argument ${a}`);
}

const r =
  cacheFrom.length === 0
    ? await buildWithBuildKit(
        { socketPath },
        {
          context,
          tag,
          networkMode: 'none',
          noCache,
          ...(Object.keys(buildArgs).length > 0 ? { buildArgs } : {}),
        },
      )
    : await buildWithCacheFrom();
if (!r.ok) {
  process.stderr.write(`${r.error ?? 'build failed'}\n${r.output.slice(-4000)}\n`);
  process.exit(1);
}
process.stdout.write(`${r.imageId ?? ''}\n`);
if (transcript) process.stdout.write(r.output);

/** POST /build with `cachefrom`, otherwise as buildWithBuildKit sends it. */
async function buildWithCacheFrom(): Promise<BuildKitBuildResult> {
  const q = new URLSearchParams({
    version: '2',
    t: tag,
    networkmode: 'none',
    cachefrom: JSON.stringify(cacheFrom),
  });
  if (noCache) q.set('nocache', '1');
  if (Object.keys(buildArgs).length > 0) q.set('buildargs', JSON.stringify(buildArgs));
  const signal = AbortSignal.timeout(300_000);
  const tar = spawn(
    'tar',
    [
      '--format=posix',
      '--pax-option=delete=atime,delete=ctime',
      '--sort=name',
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      '-C',
      context,
      '-cf',
      '-',
      '.',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], signal },
  );
  const req = request({
    socketPath,
    method: 'POST',
    path: `/build?${q}`,
    headers: { 'content-type': 'application/x-tar' },
    signal,
  });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  const upload = pipeline(tar.stdout, createGzip({ level: 1 }), req);
  const res = await response;
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  await upload;
  const body = Buffer.concat(chunks).toString('utf8');
  if (res.statusCode !== 200) return { ok: false, error: body.trim(), output: body, vertexes: [] };
  return parseBuildStream(body);
}
