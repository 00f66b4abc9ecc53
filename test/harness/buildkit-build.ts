/**
 * Builds a Dockerfile on the BuildKit embedded in the harness dockerd (`startDockerd`), the
 * reference that dray's Dockerfile frontend is compared against. Debian's docker CLI has no
 * buildx plugin, so `docker build` would fall back to the classic builder; instead this posts
 * `POST /build?version=2` itself.
 *
 * No client session is needed: the context directory goes up as the request body (a gzipped
 * tar), which dockerd hands to BuildKit's dockerfile frontend as an HTTP context. Gzip is not
 * optional: BuildKit 0.8 sniffs only the first 1024 bytes to tell a tar from a Dockerfile, and
 * a tar that starts with a PAX header fails that sniff; the gzip magic does not.
 *
 * Progress arrives as JSON lines; `moby.buildkit.trace` lines carry base64 protobuf
 * `StatusResponse` messages (moby/buildkit api/services/control/control.proto), decoded here by
 * hand for the few fields a test looks at.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { access } from 'node:fs/promises';
import { type IncomingMessage, request } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { DockerEngine } from './docker-engine.ts';

export interface BuildKitBuildOptions {
  /** Context directory; sent whole (see the `.dockerignore` note on `buildWithBuildKit`). */
  context: string;
  /** Dockerfile path inside the context (default `Dockerfile`). */
  dockerfile?: string;
  /** Name the image gets in the daemon, e.g. `dray-ref/x:1`. */
  tag: string;
  buildArgs?: Record<string, string>;
  target?: string;
  noCache?: boolean;
  labels?: Record<string, string>;
  /** Images whose inline cache BuildKit imports (`cachefrom=[...]`, docker build --cache-from). */
  cacheFrom?: string[];
  /** `none` (default: the harness daemon has no bridge, so `default` fails every RUN) or `host`. */
  networkMode?: 'none' | 'host' | 'default';
  /** Whole build, upload included (default 300 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** One BuildKit vertex (a build step or an internal load step), in first-seen order. */
export interface BuildKitVertex {
  digest: string;
  /** As BuildKit prints it, e.g. `[2/3] COPY a /a` or `[internal] load metadata for …`. */
  name: string;
  cached: boolean;
  completed: boolean;
  error?: string;
  /** stdout and stderr of the step (RUN output), concatenated in arrival order. */
  log: string;
}

export interface BuildKitBuildResult {
  ok: boolean;
  /** `sha256:…` config digest of the built image (dockerd's image ID). */
  imageId?: string;
  /** BuildKit's error text, e.g. `… dockerfile parse error line 3: unknown instruction: FOO`. */
  error?: string;
  /** `--progress=plain`-like transcript: `#N name`, `#N CACHED`, `#N <log line>`, `#N DONE`/`ERROR`. */
  output: string;
  vertexes: BuildKitVertex[];
}

/**
 * Builds `o.context` with dockerd's BuildKit and tags the result `o.tag` in that daemon. Resolves
 * with ok:false (and BuildKit's message in `error`) when the build fails; rejects only when the
 * harness itself fails (tar, socket, timeout). Does I/O: runs `tar`, talks to the engine socket.
 *
 * `FROM` images resolve from the daemon's own store (import them with `importRootfs`); anything
 * missing there is looked up on Docker Hub and fails offline, as does a `# syntax=` line. Files go
 * up owned by 0:0 (as BuildKit's local context does) with nanosecond mtimes; xattrs are not sent.
 * `.dockerignore` is not applied to the upload, so a context holding one is refused rather than
 * silently built differently from a buildx build.
 */
export async function buildWithBuildKit(
  engine: Pick<DockerEngine, 'socketPath'>,
  o: BuildKitBuildOptions,
): Promise<BuildKitBuildResult> {
  if (await exists(join(o.context, '.dockerignore'))) {
    throw new Error(`buildWithBuildKit: ${o.context} has a .dockerignore, which this harness does not apply`);
  }
  const q = new URLSearchParams({ version: '2', t: o.tag, networkmode: o.networkMode ?? 'none' });
  if (o.dockerfile !== undefined) q.set('dockerfile', o.dockerfile);
  if (o.target !== undefined) q.set('target', o.target);
  if (o.noCache) q.set('nocache', '1');
  if (o.buildArgs !== undefined) q.set('buildargs', JSON.stringify(o.buildArgs));
  if (o.labels !== undefined) q.set('labels', JSON.stringify(o.labels));
  if (o.cacheFrom !== undefined && o.cacheFrom.length > 0) q.set('cachefrom', JSON.stringify(o.cacheFrom));
  const signal = AbortSignal.any([
    AbortSignal.timeout(o.timeoutMs ?? 300_000),
    ...(o.signal === undefined ? [] : [o.signal]),
  ]);

  // --sort=name: BuildKit's local source walks in name order too; posix format keeps sub-second mtimes.
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
      o.context,
      '-cf',
      '-',
      '.',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], signal },
  );
  const tarErr: Buffer[] = [];
  tar.stderr.on('data', (c: Buffer) => tarErr.push(c));
  const tarExit = once(tar, 'close').then(([code]) => code as number | null);
  tarExit.catch(() => {});

  const req = request({
    socketPath: engine.socketPath,
    method: 'POST',
    path: `/build?${q}`,
    headers: { 'content-type': 'application/x-tar' },
    signal,
  });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  // The daemon may answer (400) before reading the body; then the upload's EPIPE is not the story.
  const upload = pipeline(tar.stdout, createGzip({ level: 1 }), req).then(
    () => undefined,
    (e: unknown) => e,
  );
  let res: IncomingMessage;
  let body: string;
  try {
    res = await response;
    body = await readResponse(res);
  } catch (e) {
    if (!signal.aborted) throw e;
    throw new Error(`buildWithBuildKit: build of ${o.tag} stopped: ${String(signal.reason)}`, { cause: e });
  }
  const uploadError = await upload;
  const tarCode = await tarExit;
  if (res.statusCode !== 200) {
    return { ok: false, error: apiMessage(body), output: body, vertexes: [] };
  }
  if (tarCode !== 0) {
    throw new Error(`buildWithBuildKit: tar of ${o.context} exited ${tarCode}: ${Buffer.concat(tarErr)}`);
  }
  if (uploadError !== undefined) throw uploadError;
  return parseBuildStream(body);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function readResponse(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function apiMessage(body: string): string {
  try {
    const m = (JSON.parse(body) as { message?: unknown }).message;
    if (typeof m === 'string') return m;
  } catch {}
  return body.trim();
}

interface StreamLine {
  id?: string;
  aux?: unknown;
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/** Turns the /build response (JSON lines) into a result. Exported for the decoder's own test. */
export function parseBuildStream(body: string): BuildKitBuildResult {
  const vertexes = new Map<string, BuildKitVertex>();
  const out: string[] = [];
  const num = (digest: string) => [...vertexes.keys()].indexOf(digest) + 1;
  let imageId: string | undefined;
  let error: string | undefined;
  for (const line of body.split('\n')) {
    if (line.trim() === '') continue;
    const m = JSON.parse(line) as StreamLine;
    if (m.id === 'moby.buildkit.trace' && typeof m.aux === 'string') {
      const s = decodeStatusResponse(Buffer.from(m.aux, 'base64'));
      for (const v of s.vertexes) {
        let cur = vertexes.get(v.digest);
        if (cur === undefined) {
          cur = { digest: v.digest, name: v.name, cached: false, completed: false, log: '' };
          vertexes.set(v.digest, cur);
          out.push(`#${num(v.digest)} ${v.name}`);
        }
        if (v.cached && !cur.cached) out.push(`#${num(v.digest)} CACHED`);
        cur.cached ||= v.cached;
        if (v.error !== '' && cur.error === undefined) {
          cur.error = v.error;
          out.push(`#${num(v.digest)} ERROR: ${v.error}`);
        } else if (v.completed && !cur.completed && v.error === '') {
          out.push(`#${num(v.digest)} DONE`);
        }
        cur.completed ||= v.completed;
      }
      for (const l of s.logs) {
        const v = vertexes.get(l.vertex);
        const text = Buffer.from(l.msg).toString('utf8');
        if (v !== undefined) v.log += text;
        for (const part of text.replace(/\n$/, '').split('\n')) out.push(`#${num(l.vertex)} ${part}`);
      }
    } else if (m.id === 'moby.image.id') {
      const id = (m.aux as { ID?: unknown } | undefined)?.ID;
      if (typeof id === 'string') imageId = id;
    } else if (m.errorDetail !== undefined || m.error !== undefined) {
      error = m.errorDetail?.message ?? m.error;
      out.push(`ERROR: ${error}`);
    } else if (typeof m.stream === 'string') {
      out.push(m.stream.replace(/\n$/, ''));
    }
  }
  const ok = error === undefined && imageId !== undefined;
  if (!ok && error === undefined) error = 'build stream ended without an image ID';
  return { ok, imageId, error, output: `${out.join('\n')}\n`, vertexes: [...vertexes.values()] };
}

interface StatusVertex {
  digest: string;
  name: string;
  cached: boolean;
  completed: boolean;
  error: string;
}

interface StatusLog {
  vertex: string;
  msg: Uint8Array;
}

/**
 * Decodes the fields of a BuildKit `StatusResponse` a test uses: vertexes (1: digest 1, name 3,
 * cached 4, completed 6, error 7) and logs (3: vertex 1, msg 4). Statuses (2) and anything
 * newer are skipped by wire type.
 */
export function decodeStatusResponse(buf: Uint8Array): { vertexes: StatusVertex[]; logs: StatusLog[] } {
  const vertexes: StatusVertex[] = [];
  const logs: StatusLog[] = [];
  for (const f of protoFields(buf)) {
    if (f.no === 1 && f.bytes !== undefined) {
      const v: StatusVertex = { digest: '', name: '', cached: false, completed: false, error: '' };
      for (const g of protoFields(f.bytes)) {
        if (g.no === 1 && g.bytes !== undefined) v.digest = utf8(g.bytes);
        else if (g.no === 3 && g.bytes !== undefined) v.name = utf8(g.bytes);
        else if (g.no === 4) v.cached = g.varint !== undefined && g.varint !== 0;
        else if (g.no === 6) v.completed = true;
        else if (g.no === 7 && g.bytes !== undefined) v.error = utf8(g.bytes);
      }
      vertexes.push(v);
    } else if (f.no === 3 && f.bytes !== undefined) {
      const l: StatusLog = { vertex: '', msg: new Uint8Array() };
      for (const g of protoFields(f.bytes)) {
        if (g.no === 1 && g.bytes !== undefined) l.vertex = utf8(g.bytes);
        else if (g.no === 4 && g.bytes !== undefined) l.msg = g.bytes;
      }
      logs.push(l);
    }
  }
  return { vertexes, logs };
}

function utf8(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
}

/** Protobuf wire format, top level of one message: varints and length-delimited fields kept, fixed skipped. */
function* protoFields(buf: Uint8Array): Generator<{ no: number; varint?: number; bytes?: Uint8Array }> {
  let i = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (i >= buf.length) throw new Error('protobuf: truncated varint');
      const b = buf[i++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (i < buf.length) {
    const key = varint();
    const no = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) yield { no, varint: varint() };
    else if (wire === 2) {
      const n = varint();
      if (i + n > buf.length) throw new Error('protobuf: truncated field');
      yield { no, bytes: buf.subarray(i, i + n) };
      i += n;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`protobuf: unsupported wire type ${wire}`);
  }
}
