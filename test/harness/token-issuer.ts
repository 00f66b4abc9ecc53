/**
 * An in-process token server for the Distribution token auth flow
 * (distribution docs/spec/auth/token.md, jwt.md, oauth.md):
 *
 *   GET  /token?service=S&scope=repository:x:pull,push[&scope=…]   (Basic auth optional)
 *   POST /token  grant_type=password|refresh_token (form), returns refresh_token too
 *
 * Tokens are ES256 JWTs signed with a P-256 key generated per issuer; the JWS header
 * carries the issuer's self-signed certificate in `x5c`, and the same certificate
 * (made with the openssl CLI) is the registry's `rootcertbundle`.
 */
import { createSign, generateKeyPairSync, randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { runChecked } from './tools.ts';

export interface Scope {
  /** 'repository', 'registry', 'repository(plugin)'… */
  type: string;
  /** Repository name, or 'catalog' for registry:catalog:* */
  name: string;
  actions: string[];
}

/** Decides which of `scope.actions` `user` (undefined = anonymous) gets. */
export type GrantFn = (user: string | undefined, scope: Scope) => string[];

export interface TokenIssuerOptions {
  /** user → password. Default { dray: 'dray-pass' }. */
  users?: Record<string, string>;
  /** The registry's service name (JWT aud). Default 'dray-test-registry'. */
  service?: string;
  /** JWT iss. Default 'dray-test-issuer'. */
  issuer?: string;
  /** Default: anonymous gets pull; authenticated users get every action asked for. */
  grant?: GrantFn;
  /** Token lifetime (default 300 s). */
  expiresInSec?: number;
}

export interface IssuerRequest {
  method: string;
  /** 'get' (Basic/anonymous) or the POST grant_type. */
  kind: 'get' | 'password' | 'refresh_token' | 'other';
  user: string | undefined;
  scopes: string[];
  service: string | undefined;
  status: number;
  /** The raw Authorization scheme sent, if any ('Basic' …), never the credentials. */
  authScheme: string | undefined;
}

export interface TokenIssuer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `http://127.0.0.1:PORT/token`: the registry's auth.token.realm. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM file with the issuer's self-signed certificate (auth.token.rootcertbundle). */
  rootCertBundle: string;
  users: Record<string, string>;
  /** Every request, in order. */
  requests: IssuerRequest[];
  /** Number of token requests so far (optionally only those matching `filter`). */
  count(filter?: (r: IssuerRequest) => boolean): number;
  /** Mints a token directly (no HTTP), e.g. to test expiry: `mint('dray', ['repository:a:pull'], { expiresInSec: -10 })`. */
  mint(user: string | undefined, scopes: string[], o?: { expiresInSec?: number }): string;
  /** Changes the grant policy from now on. */
  setGrant(grant: GrantFn): void;
  stop(): Promise<void>;
}

const DEFAULT_USERS: Record<string, string> = { dray: 'dray-pass' };

/** Default policy: anonymous → pull only; authenticated → every action asked for. */
export const defaultGrant: GrantFn = (user, scope) =>
  user === undefined ? scope.actions.filter((a) => a === 'pull') : [...scope.actions];

/** Parses `type:name:actions`; the name may itself contain ':' (host:port) — type is first, actions last. */
export function parseScope(s: string): Scope | undefined {
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  const actions = s
    .slice(last + 1)
    .split(',')
    .filter((a) => a !== '');
  return { type: s.slice(0, first), name: s.slice(first + 1, last), actions };
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

/** Starts the issuer on a free loopback port; stopped in t.after. Needs the `openssl` CLI. */
export async function startTokenIssuer(
  t: Pick<TestContext, 'after'>,
  o: TokenIssuerOptions = {},
): Promise<TokenIssuer> {
  const users = o.users ?? DEFAULT_USERS;
  const service = o.service ?? 'dray-test-registry';
  const issuerName = o.issuer ?? 'dray-test-issuer';
  const expiresIn = o.expiresInSec ?? 300;
  let grant = o.grant ?? defaultGrant;

  const dir = await mkdtemp(join(tmpdir(), 'dray-issuer-'));
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyFile = join(dir, 'issuer.key');
  await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const certFile = join(dir, 'issuer.crt');
  // keyUsage is explicit so the certificate stays a valid JWS signer for stricter verifiers
  // (a leaf used to sign tokens should carry digitalSignature); registry 2.8.2 was checked to
  // accept the token with and without it.
  await runChecked('openssl', [
    'req',
    '-x509',
    '-new',
    '-key',
    keyFile,
    '-subj',
    '/CN=dray-test-issuer',
    '-days',
    '1',
    '-addext',
    'keyUsage=critical,digitalSignature,keyCertSign',
    '-out',
    certFile,
  ]);
  const cert = new X509Certificate(await readFile(certFile));
  const x5c = [cert.raw.toString('base64')];

  const refreshTokens = new Map<string, string>(); // refresh token → user

  const mint = (user: string | undefined, scopes: string[], mo: { expiresInSec?: number } = {}): string => {
    const now = Math.floor(Date.now() / 1000);
    const access: Scope[] = [];
    for (const s of scopes) {
      const sc = parseScope(s);
      if (sc === undefined) continue;
      const actions = grant(user, sc);
      // An empty grant is still listed, as docker/auth servers do; the registry then denies.
      access.push({ type: sc.type, name: sc.name, actions });
    }
    const header = { typ: 'JWT', alg: 'ES256', x5c };
    const claims = {
      iss: issuerName,
      sub: user ?? '',
      aud: service,
      exp: now + (mo.expiresInSec ?? expiresIn),
      nbf: now - 5,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    // JWS ES256 (RFC 7518 §3.4): the signature is R||S, 32 bytes each, not DER.
    const sig = createSign('SHA256')
      .update(signingInput)
      .sign({ key: privateKey, dsaEncoding: 'ieee-p1363' });
    return `${signingInput}.${b64url(sig)}`;
  };

  const requests: IssuerRequest[] = [];

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const authz = req.headers.authorization;
    const rec: IssuerRequest = {
      method: req.method ?? '',
      kind: 'other',
      user: undefined,
      scopes: [],
      service: undefined,
      status: 0,
      authScheme: authz?.split(' ')[0],
    };
    requests.push(rec);
    const reply = (status: number, body: unknown, headers?: Record<string, string>) => {
      rec.status = status;
      send(res, status, body, headers);
    };
    if (u.pathname !== '/token') return reply(404, { errors: [{ code: 'NOT_FOUND' }] });
    const issuedAt = new Date().toISOString();

    if (req.method === 'GET') {
      rec.kind = 'get';
      rec.scopes = u.searchParams.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean));
      rec.service = u.searchParams.get('service') ?? undefined;
      let user: string | undefined;
      if (authz !== undefined) {
        const m = /^Basic\s+(.+)$/i.exec(authz);
        if (m?.[1] === undefined)
          return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad auth' }] });
        const decoded = Buffer.from(m[1], 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        const name = decoded.slice(0, colon);
        const pass = decoded.slice(colon + 1);
        if (colon < 0 || users[name] === undefined || users[name] !== pass) {
          return reply(
            401,
            { errors: [{ code: 'UNAUTHORIZED', message: 'authentication failed' }] },
            { 'www-authenticate': 'Basic realm="dray-test-issuer"' },
          );
        }
        user = name;
      }
      rec.user = user;
      if (rec.service !== undefined && rec.service !== service) {
        return reply(400, {
          errors: [{ code: 'INVALID_SERVICE', message: `unknown service ${rec.service}` }],
        });
      }
      const token = mint(user, rec.scopes);
      const body: Record<string, unknown> = {
        token,
        access_token: token,
        expires_in: expiresIn,
        issued_at: issuedAt,
      };
      // docker's GET flow asks for a refresh token with offline_token=true.
      if (user !== undefined && u.searchParams.get('offline_token') === 'true') {
        const rt = randomBytes(24).toString('hex');
        refreshTokens.set(rt, user);
        body.refresh_token = rt;
      }
      return reply(200, body);
    }

    if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const grantType = form.get('grant_type');
      rec.scopes = form.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean));
      rec.service = form.get('service') ?? undefined;
      let user: string | undefined;
      if (grantType === 'password') {
        rec.kind = 'password';
        const name = form.get('username') ?? '';
        if (users[name] === undefined || users[name] !== form.get('password')) {
          return reply(401, { error: 'invalid_grant', error_description: 'authentication failed' });
        }
        user = name;
      } else if (grantType === 'refresh_token') {
        rec.kind = 'refresh_token';
        user = refreshTokens.get(form.get('refresh_token') ?? '');
        if (user === undefined)
          return reply(401, { error: 'invalid_grant', error_description: 'unknown refresh token' });
      } else {
        return reply(400, { error: 'unsupported_grant_type' });
      }
      rec.user = user;
      if (rec.service !== undefined && rec.service !== service) {
        return reply(400, { error: 'invalid_request', error_description: `unknown service ${rec.service}` });
      }
      const token = mint(user, rec.scopes);
      let rt = form.get('refresh_token') ?? undefined;
      if (grantType === 'password') {
        rt = randomBytes(24).toString('hex');
        refreshTokens.set(rt, user);
      }
      return reply(200, {
        access_token: token,
        refresh_token: rt,
        expires_in: expiresIn,
        issued_at: issuedAt,
        scope: rec.scopes.join(' '),
      });
    }
    return reply(405, { errors: [{ code: 'UNSUPPORTED' }] });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, { error: String(e) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return stopped;
  };
  t.after(async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    realm: `${url}/token`,
    service,
    issuer: issuerName,
    rootCertBundle: certFile,
    users,
    requests,
    count: (filter) => (filter ? requests.filter(filter).length : requests.length),
    mint,
    setGrant: (g) => {
      grant = g;
    },
    stop,
  };
}
