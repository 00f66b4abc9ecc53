// The BuildKit anchor of the build benchmarks: one build on dockerd's embedded BuildKit
// (`POST /build?version=2`, as test/harness/buildkit-build.ts does; Debian's docker CLI has
// no buildx).
//
// argv: <docker socket> <context dir> <tag> [noCache] [buildArg=K=V]... [cacheFrom=REF]... [transcript]
//   noCache     nocache=1
//   buildArg    a build argument, e.g. buildArg=BUILDKIT_INLINE_CACHE=1 (inline cache export)
//   cacheFrom   an image whose inline cache BuildKit imports (`cachefrom=[...]`)
//   transcript  print the `--progress=plain`-like transcript (`#N CACHED` lines) after the ID
import { buildWithBuildKit } from '../test/harness/buildkit-build.ts';

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

const r = await buildWithBuildKit(
  { socketPath },
  {
    context,
    tag,
    networkMode: 'none',
    noCache,
    ...(Object.keys(buildArgs).length > 0 ? { buildArgs } : {}),
    ...(cacheFrom.length > 0 ? { cacheFrom } : {}),
  },
);
if (!r.ok) {
  process.stderr.write(`${r.error ?? 'build failed'}\n${r.output.slice(-4000)}\n`);
  process.exit(1);
}
process.stdout.write(`${r.imageId ?? ''}\n`);
if (transcript) process.stdout.write(r.output);
