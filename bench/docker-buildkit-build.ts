// The BuildKit anchor of the build benchmark: one build on dockerd's embedded BuildKit
// (`POST /build?version=2`, as test/harness/buildkit-build.ts does; Debian's docker CLI has
// no buildx). argv: <docker socket> <context dir> <tag> [noCache]
import { buildWithBuildKit } from '../test/harness/buildkit-build.ts';

const [socketPath, context, tag, noCache] = process.argv.slice(2) as [string, string, string, string?];
const r = await buildWithBuildKit(
  { socketPath },
  { context, tag, networkMode: 'none', noCache: noCache === 'noCache' },
);
if (!r.ok) {
  process.stderr.write(`${r.error ?? 'build failed'}\n${r.output.slice(-4000)}\n`);
  process.exit(1);
}
process.stdout.write(`${r.imageId ?? ''}\n`);
