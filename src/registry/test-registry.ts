import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An in-process OCI registry for tests (distribution-spec subset: manifests, blobs with
 * Range, monolithic and chunked uploads, mount, paginated tags), storing everything in
 * memory. `hook` runs before routing and may answer a request itself (fault injection,
 * auth); every request is recorded in `requests`. Listens on 127.0.0.1, port 0.
 */

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

export interface TestRegistryOptions {
  /** Return true when the hook answered the request itself. */
  hook?: (req: IncomingMessage, res: ServerResponse, reg: TestRegistry) => boolean | Promise<boolean>;
  /** Redirect blob GETs to this origin (same path), like a registry handing off to storage. */
  blobRedirect?: string;
  /** Answer a HEAD on manifests without Docker-Content-Digest (forces the GET fallback). */
  headWithoutDigest?: boolean;
  /** Mount support: off = every mount opens an upload session (202). */
  mount?: boolean;
}

interface Manifest {
  bytes: Buffer;
  mediaType: string;
}

export interface TestRegistry {
  server: Server;
  /** `127.0.0.1:port` */
  host: string;
  origin: string;
  requests: RecordedRequest[];
  blobs: Map<string, Map<string, Buffer>>;
  manifests: Map<string, Map<string, Manifest>>;
  tags: Map<string, string[]>;
  uploads: Map<string, { repo: string; parts: Buffer[] }>;
  options: TestRegistryOptions;
  close(): Promise<void>;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ errors: [{ code, message, detail: null }] });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Starts a test registry; close it with `t.after(() => reg.close())`. */
export async function startTestRegistry(options: TestRegistryOptions = {}): Promise<TestRegistry> {
  const reg = {
    requests: [],
    blobs: new Map(),
    manifests: new Map(),
    tags: new Map(),
    uploads: new Map(),
    options,
  } as unknown as TestRegistry;
  const server = createServer((req, res) => {
    handle(reg, req, res).catch((e) => {
      if (!res.headersSent) sendError(res, 500, 'UNKNOWN', String(e));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  reg.server = server;
  reg.host = `127.0.0.1:${port}`;
  reg.origin = `http://127.0.0.1:${port}`;
  reg.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return reg;
}

/** Stores a blob directly (test setup). */
export function seedBlob(reg: TestRegistry, repo: string, bytes: Buffer): string {
  const d = sha256(bytes);
  let m = reg.blobs.get(repo);
  if (!m) reg.blobs.set(repo, (m = new Map()));
  m.set(d, bytes);
  return d;
}

/** Stores a manifest under its digest and optional tag (test setup). */
export function seedManifest(
  reg: TestRegistry,
  repo: string,
  bytes: Buffer,
  mediaType: string,
  tag?: string,
): string {
  const d = sha256(bytes);
  let m = reg.manifests.get(repo);
  if (!m) reg.manifests.set(repo, (m = new Map()));
  m.set(d, { bytes, mediaType });
  if (tag) {
    m.set(tag, { bytes, mediaType });
    const t = reg.tags.get(repo) ?? [];
    if (!t.includes(tag)) t.push(tag);
    reg.tags.set(repo, t);
  }
  return d;
}

async function handle(reg: TestRegistry, req: IncomingMessage, res: ServerResponse): Promise<void> {
  reg.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
  if (reg.options.hook && (await reg.options.hook(req, res, reg))) return;
  const url = new URL(req.url ?? '/', 'http://x');
  const p = url.pathname;
  if (p === '/v2/' || p === '/v2') {
    res.writeHead(200, {
      'content-type': 'application/json',
      'docker-distribution-api-version': 'registry/2.0',
    });
    res.end('{}');
    return;
  }
  let m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/.exec(p);
  if (m) return upload(reg, req, res, m[1] as string, m[2] as string, url);
  m = /^\/v2\/(.+)\/tags\/list$/.exec(p);
  if (m) return tagList(reg, res, m[1] as string, url);
  m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(p);
  if (!m) return sendError(res, 404, 'UNSUPPORTED', 'not found');
  const [, repo, kind, ref] = m as unknown as [string, string, string, string];
  if (kind === 'manifests') return manifest(reg, req, res, repo, ref);
  return blob(reg, req, res, repo, ref);
}

function manifest(
  reg: TestRegistry,
  req: IncomingMessage,
  res: ServerResponse,
  repo: string,
  ref: string,
): Promise<void> | void {
  if (req.method === 'PUT') {
    return readBody(req).then((bytes) => {
      const mt = req.headers['content-type'] ?? 'application/octet-stream';
      const d = sha256(bytes);
      if (ref.startsWith('sha256:') && ref !== d)
        return sendError(res, 400, 'DIGEST_INVALID', 'digest mismatch');
      seedManifest(reg, repo, bytes, mt, ref.startsWith('sha256:') ? undefined : ref);
      res.writeHead(201, {
        location: `/v2/${repo}/manifests/${d}`,
        'docker-content-digest': d,
        'content-length': 0,
      });
      res.end();
    });
  }
  const found = reg.manifests.get(repo)?.get(ref);
  if (!found) return sendError(res, 404, 'MANIFEST_UNKNOWN', `manifest unknown: ${ref}`);
  const headers: Record<string, string | number> = {
    'content-type': found.mediaType,
    'content-length': found.bytes.byteLength,
    'docker-content-digest': sha256(found.bytes),
  };
  if (req.method === 'HEAD') {
    if (reg.options.headWithoutDigest) delete headers['docker-content-digest'];
    res.writeHead(200, headers);
    res.end();
    return;
  }
  res.writeHead(200, headers);
  res.end(found.bytes);
}

function blob(
  reg: TestRegistry,
  req: IncomingMessage,
  res: ServerResponse,
  repo: string,
  digest: string,
): void {
  if (req.method === 'GET' && reg.options.blobRedirect) {
    res.writeHead(307, { location: `${reg.options.blobRedirect}${req.url}?sig=secret` });
    res.end();
    return;
  }
  const bytes = reg.blobs.get(repo)?.get(digest);
  if (!bytes) {
    if (req.method === 'HEAD') {
      res.writeHead(404);
      res.end();
      return;
    }
    sendError(res, 404, 'BLOB_UNKNOWN', `blob unknown to registry: ${digest}`);
    return;
  }
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (range && req.method === 'GET') {
    const start = Number(range[1]);
    const part = bytes.subarray(start);
    res.writeHead(206, {
      'content-type': 'application/octet-stream',
      'content-length': part.byteLength,
      'content-range': `bytes ${start}-${bytes.byteLength - 1}/${bytes.byteLength}`,
      'docker-content-digest': digest,
    });
    res.end(part);
    return;
  }
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': bytes.byteLength,
    'docker-content-digest': digest,
    'accept-ranges': 'bytes',
  });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

async function upload(
  reg: TestRegistry,
  req: IncomingMessage,
  res: ServerResponse,
  repo: string,
  id: string,
  url: URL,
): Promise<void> {
  if (req.method === 'POST' && id === '') {
    await readBody(req);
    const mount = url.searchParams.get('mount');
    const from = url.searchParams.get('from');
    if (mount && from && reg.options.mount !== false) {
      const src = reg.blobs.get(from)?.get(mount);
      if (src) {
        seedBlob(reg, repo, src);
        res.writeHead(201, {
          location: `/v2/${repo}/blobs/${mount}`,
          'docker-content-digest': mount,
          'content-length': 0,
        });
        res.end();
        return;
      }
    }
    const uuid = randomUUID();
    reg.uploads.set(uuid, { repo, parts: [] });
    res.writeHead(202, {
      location: `/v2/${repo}/blobs/uploads/${uuid}?_state=abc%3D%3D`,
      range: '0-0',
      'content-length': 0,
    });
    res.end();
    return;
  }
  const up = reg.uploads.get(id);
  if (!up || up.repo !== repo) return sendError(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'upload unknown');
  if (url.searchParams.get('_state') !== 'abc==')
    return sendError(res, 400, 'BLOB_UPLOAD_INVALID', 'state lost');
  const body = await readBody(req);
  const have = up.parts.reduce((n, b) => n + b.byteLength, 0);
  if (req.method === 'PATCH') {
    const cr = /^(\d+)-(\d+)$/.exec(req.headers['content-range'] ?? '');
    if (cr && (Number(cr[1]) !== have || Number(cr[2]) !== have + body.byteLength - 1)) {
      res.writeHead(416, { range: `0-${have - 1}`, 'content-length': 0 });
      res.end();
      return;
    }
    up.parts.push(body);
    const total = have + body.byteLength;
    res.writeHead(202, {
      location: `/v2/${repo}/blobs/uploads/${id}?_state=abc%3D%3D`,
      range: `0-${total - 1}`,
      'content-length': 0,
    });
    res.end();
    return;
  }
  if (req.method === 'PUT') {
    if (body.byteLength) up.parts.push(body);
    const all = Buffer.concat(up.parts);
    const digest = url.searchParams.get('digest');
    if (digest !== sha256(all))
      return sendError(res, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content');
    seedBlob(reg, repo, all);
    reg.uploads.delete(id);
    res.writeHead(201, {
      location: `/v2/${repo}/blobs/${digest}`,
      'docker-content-digest': digest,
      'content-length': 0,
    });
    res.end();
    return;
  }
  if (req.method === 'DELETE') {
    reg.uploads.delete(id);
    res.writeHead(204);
    res.end();
    return;
  }
  sendError(res, 405, 'UNSUPPORTED', 'method not allowed');
}

function tagList(reg: TestRegistry, res: ServerResponse, repo: string, url: URL): void {
  const all = [...(reg.tags.get(repo) ?? [])].sort();
  const n = Number(url.searchParams.get('n') ?? all.length);
  const last = url.searchParams.get('last');
  const from = last ? all.filter((t) => t > last) : all;
  const page = from.slice(0, n);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (page.length === n && from.length > n) {
    headers.link = `</v2/${repo}/tags/list?n=${n}&last=${encodeURIComponent(page[page.length - 1] ?? '')}>; rel="next"`;
  }
  res.writeHead(200, headers);
  res.end(JSON.stringify({ name: repo, tags: page }));
}
