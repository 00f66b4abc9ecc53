import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { inspect } from 'node:util';
import { MockAgent } from 'undici';
import { isDrayError } from '../errors.ts';
import { createAuthenticator } from './auth.ts';
import type { Auth, Challenge, Scope } from './auth-types.ts';
import { parseChallenges } from './challenge.ts';
import { staticCredentials } from './credential-store.ts';

type T = { after: (fn: () => void | Promise<void>) => void };

interface Seen {
  method: string;
  url: URL;
  headers: IncomingHttpHeaders;
  body: string;
}

type Handler = (req: Seen, res: ServerResponse) => void | Promise<void>;

/** An in-process token service on 127.0.0.1. */
async function server(t: T, handler: Handler) {
  const seen: Seen[] = [];
  const srv = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = {
        method: req.method ?? '',
        url: new URL(req.url ?? '/', 'http://x'),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(s);
      Promise.resolve(handler(s, res)).catch((e) => {
        res.statusCode = 500;
        res.end(String(e));
      });
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        srv.closeAllConnections();
        srv.close(() => resolve());
      }),
  );
  const port = (srv.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    origin: `http://127.0.0.1:${port}`,
    realm: `http://127.0.0.1:${port}/token`,
    seen,
  };
}

function json(res: ServerResponse, status: number, doc: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(doc));
}

const pull = (name: string): Scope => ({ type: 'repository', name, actions: ['pull'] });
const bearer = (realm: string, extra = ''): Challenge[] =>
  parseChallenges(`Bearer realm="${realm}",service="test-registry"${extra}`);
const basicAuth = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

function clock(start = 1_700_000_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe('basic and registry-token', () => {
  test('Basic challenge: header for basic creds, undefined otherwise; cached and invalidated per host', async () => {
    const creds = staticCredentials({
      'r.example': { kind: 'basic', username: 'alice', password: 'pw' },
      'id.example': { kind: 'identity-token', token: 'tok' },
    });
    const a = createAuthenticator({ credentials: creds });
    const ch = parseChallenges('Basic realm="Registry"');
    assert.equal(await a.authorize('r.example', ch, [pull('x')]), basicAuth('alice', 'pw'));
    assert.equal(a.cached('r.example', [pull('other')]), basicAuth('alice', 'pw'));
    a.invalidate('r.example', [pull('x')]);
    assert.equal(a.cached('r.example', [pull('other')]), undefined);
    assert.equal(await a.authorize('anon.example', ch, [pull('x')]), undefined);
    assert.equal(await a.authorize('id.example', ch, [pull('x')]), undefined);
    assert.equal(await a.authorize('r.example', [], [pull('x')]), undefined);
    assert.equal(await a.authorize('r.example', parseChallenges('Negotiate abc='), [pull('x')]), undefined);
  });

  test('a registry token is sent as Bearer without asking the realm', async (t) => {
    const s = await server(t, (_q, res) => json(res, 500, {}));
    const a = createAuthenticator({
      credentials: staticCredentials({ [s.host]: { kind: 'registry-token', token: 'rt' } }),
    });
    assert.equal(await a.authorize(s.host, bearer(s.realm), [pull('x')]), 'Bearer rt');
    assert.equal(await a.authorize(s.host, parseChallenges('Basic realm=x'), [pull('x')]), 'Bearer rt');
    assert.equal(a.cached(s.host, [pull('y')]), 'Bearer rt');
    assert.equal(s.seen.length, 0);
  });
});

describe('bearer tokens', () => {
  test('anonymous GET with service and one scope parameter per scope', async (t) => {
    const s = await server(t, (_q, res) => json(res, 200, { token: 'anon-token', expires_in: 300 }));
    const a = createAuthenticator({ credentials: staticCredentials({}), userAgent: 'dray/test' });
    const header = await a.authorize(s.host, bearer(s.realm), [
      { type: 'repository', name: 'lib/b', actions: ['push', 'pull'] },
      pull('lib/a'),
      { type: 'repository', name: 'lib/b', actions: ['pull'] },
    ]);
    assert.equal(header, 'Bearer anon-token');
    assert.equal(s.seen.length, 1);
    const q = s.seen[0]!;
    assert.equal(q.method, 'GET');
    assert.equal(q.url.pathname, '/token');
    assert.equal(q.url.searchParams.get('service'), 'test-registry');
    assert.deepEqual(q.url.searchParams.getAll('scope'), [
      'repository:lib/a:pull',
      'repository:lib/b:pull,push',
    ]);
    assert.equal(q.headers.authorization, undefined);
    assert.equal(q.headers['user-agent'], 'dray/test');
    assert.equal(q.url.searchParams.get('account'), null);
  });

  test('basic credentials: GET with Basic auth and account', async (t) => {
    const s = await server(t, (q, res) =>
      q.headers.authorization === basicAuth('alice', 'pw')
        ? json(res, 200, { token: 'alice-token' })
        : json(res, 401, { details: 'incorrect username or password' }),
    );
    const a = createAuthenticator({
      credentials: staticCredentials({ [s.host]: { kind: 'basic', username: 'alice', password: 'pw' } }),
    });
    assert.equal(await a.authorize(s.host, bearer(s.realm), [pull('x')]), 'Bearer alice-token');
    assert.equal(s.seen[0]?.url.searchParams.get('account'), 'alice');
  });

  test('realm query parameters are kept; challenge scope is requested too', async (t) => {
    const s = await server(t, (_q, res) => json(res, 200, { token: 'tok' }));
    const a = createAuthenticator({ credentials: staticCredentials({}) });
    await a.authorize(s.host, bearer(`${s.realm}?tenant=7`, ',scope="repository:other:pull"'), [pull('x')]);
    const q = s.seen[0]!;
    assert.equal(q.url.searchParams.get('tenant'), '7');
    assert.deepEqual(q.url.searchParams.getAll('scope'), ['repository:other:pull', 'repository:x:pull']);
    // cached() is keyed by what the transport asked for
    assert.equal(a.cached(s.host, [pull('x')]), 'Bearer tok');
  });

  test('tokens are cached per scopes and identity until expiry minus a margin', async (t) => {
    let n = 0;
    const s = await server(t, (_q, res) => json(res, 200, { token: `t${++n}`, expires_in: 300 }));
    const c = clock();
    let current: Auth = { kind: 'basic', username: 'u', password: 'p1' };
    const a = createAuthenticator({ credentials: { get: async () => current }, now: c.now });
    const ch = bearer(s.realm);
    assert.equal(a.cached(s.host, [pull('x')]), undefined);
    assert.equal(await a.authorize(s.host, ch, [pull('x')]), 'Bearer t1');
    assert.equal(await a.authorize(s.host, ch, [pull('x')]), 'Bearer t1');
    assert.equal(a.cached(s.host, [pull('x')]), 'Bearer t1');
    assert.equal(a.cached(s.host.toUpperCase(), [pull('x'), pull('x')]), 'Bearer t1');
    assert.equal(s.seen.length, 1);
    // other scopes: another token
    assert.equal(await a.authorize(s.host, ch, [pull('y')]), 'Bearer t2');
    // other credentials for the same host: another token
    current = { kind: 'basic', username: 'u', password: 'p2' };
    assert.equal(await a.authorize(s.host, ch, [pull('x')]), 'Bearer t3');
    // 300 s token, 30 s margin
    c.t += 269_000;
    assert.equal(a.cached(s.host, [pull('x')]), 'Bearer t3');
    c.t += 2_000;
    assert.equal(a.cached(s.host, [pull('x')]), undefined);
    assert.equal(await a.authorize(s.host, ch, [pull('x')]), 'Bearer t4');
    // invalidate forgets it at once
    a.invalidate(s.host, [pull('x')]);
    assert.equal(a.cached(s.host, [pull('x')]), undefined);
    assert.equal(await a.authorize(s.host, ch, [pull('x')]), 'Bearer t5');
    assert.equal(s.seen.length, 5);
  });

  test('expires_in defaults to 60 s, is never below 60 s; issued_at only shortens', async (t) => {
    const bodies: unknown[] = [];
    const s = await server(t, (_q, res) => json(res, 200, bodies.shift()));
    const c = clock();
    const a = createAuthenticator({ credentials: staticCredentials({}), now: c.now });
    /** Asserts the token is handed out for exactly `ms` after it was fetched. */
    const life = async (body: unknown, ms: number) => {
      bodies.push(body);
      a.invalidate(s.host, [pull('x')]);
      await a.authorize(s.host, bearer(s.realm), [pull('x')]);
      const start = c.t;
      c.t = start + ms - 1;
      assert.notEqual(a.cached(s.host, [pull('x')]), undefined, `${JSON.stringify(body)} at ${ms - 1}`);
      c.t = start + ms;
      assert.equal(a.cached(s.host, [pull('x')]), undefined, `${JSON.stringify(body)} at ${ms}`);
      c.t = start;
    };
    await life({ token: 'a' }, 48_000); // 60 s minus a fifth
    await life({ token: 'a', expires_in: 5 }, 48_000);
    await life({ access_token: 'a', expires_in: 600 }, 570_000);
    await life({ token: 'a', expires_in: '120' }, 96_000);
    await life({ token: 'a', expires_in: 600, issued_at: new Date(c.t - 100_000).toISOString() }, 470_000);
    // issued_at in the future, or further back than the lifetime (clock skew): ignored
    await life({ token: 'a', expires_in: 600, issued_at: new Date(c.t + 50_000).toISOString() }, 570_000);
    await life({ token: 'a', expires_in: 60, issued_at: new Date(c.t - 3_600_000).toISOString() }, 48_000);
  });

  test('concurrent requests for one token share one fetch', async (t) => {
    const s = await server(t, async (_q, res) => {
      await new Promise((r) => setTimeout(r, 100));
      json(res, 200, { token: 'shared' });
    });
    const a = createAuthenticator({ credentials: staticCredentials({}) });
    const got = await Promise.all([1, 2, 3].map(() => a.authorize(s.host, bearer(s.realm), [pull('x')])));
    assert.deepEqual(got, ['Bearer shared', 'Bearer shared', 'Bearer shared']);
    assert.equal(s.seen.length, 1);
  });

  test('abort: the waiter gets DRAY_ABORTED, other waiters still get the token', async (t) => {
    const s = await server(t, async (_q, res) => {
      await new Promise((r) => setTimeout(r, 300));
      if (!res.destroyed) json(res, 200, { token: 'late' });
    });
    const a = createAuthenticator({ credentials: staticCredentials({}) });
    const ac = new AbortController();
    const first = a.authorize(s.host, bearer(s.realm), [pull('x')], { signal: ac.signal });
    const second = a.authorize(s.host, bearer(s.realm), [pull('x')]);
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(first, (e) => isDrayError(e, 'DRAY_ABORTED'));
    assert.equal(await second, 'Bearer late');
    await assert.rejects(
      a.authorize(s.host, bearer(s.realm), [pull('y')], { signal: AbortSignal.abort() }),
      (e) => isDrayError(e, 'DRAY_ABORTED'),
    );
    // a lone waiter's abort cancels the request itself
    const lone = new AbortController();
    const p = a.authorize(s.host, bearer(s.realm), [pull('z')], { signal: lone.signal });
    setTimeout(() => lone.abort(), 50);
    await assert.rejects(p, (e) => isDrayError(e, 'DRAY_ABORTED'));
  });

  test('identity token: OAuth2 POST', async (t) => {
    const s = await server(t, (_q, res) => json(res, 200, { access_token: 'oauth-token', expires_in: 120 }));
    const a = createAuthenticator({
      credentials: staticCredentials({
        [s.host]: { kind: 'identity-token', username: 'me', token: 'refresh-1' },
      }),
    });
    assert.equal(
      await a.authorize(s.host, bearer(s.realm), [
        pull('a'),
        { type: 'repository', name: 'b', actions: ['push'] },
      ]),
      'Bearer oauth-token',
    );
    const q = s.seen[0]!;
    assert.equal(q.method, 'POST');
    assert.equal(q.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(q.headers.authorization, undefined);
    const form = new URLSearchParams(q.body);
    assert.deepEqual(Object.fromEntries(form), {
      grant_type: 'refresh_token',
      refresh_token: 'refresh-1',
      service: 'test-registry',
      client_id: 'dray',
      scope: 'repository:a:pull repository:b:push',
    });
  });

  for (const status of [404, 405]) {
    test(`identity token: POST ${status} falls back to GET with the token as password`, async (t) => {
      const s = await server(t, (q, res) =>
        q.method === 'POST' ? json(res, status, {}) : json(res, 200, { token: 'get-token' }),
      );
      const a = createAuthenticator({
        credentials: staticCredentials({
          [s.host]: { kind: 'identity-token', username: 'me', token: 'refresh-1' },
        }),
      });
      assert.equal(await a.authorize(s.host, bearer(s.realm), [pull('a')]), 'Bearer get-token');
      assert.deepEqual(
        s.seen.map((q) => q.method),
        ['POST', 'GET'],
      );
      assert.equal(s.seen[1]?.headers.authorization, basicAuth('me', 'refresh-1'));
      assert.deepEqual(s.seen[1]?.url.searchParams.getAll('scope'), ['repository:a:pull']);
    });
  }

  test('redirects: followed for GET, Authorization dropped when leaving the origin', async (t) => {
    const other = await server(t, (_q, res) => json(res, 200, { token: 'from-other' }));
    const s = await server(t, (q, res) => {
      if (q.url.pathname === '/token') {
        res.writeHead(307, { location: `/same?${q.url.searchParams}` });
        res.end();
      } else if (q.url.pathname === '/same') {
        res.writeHead(302, { location: `${other.origin}/final` });
        res.end();
      } else json(res, 404, {});
    });
    const a = createAuthenticator({
      credentials: staticCredentials({ [s.host]: { kind: 'basic', username: 'u', password: 'p' } }),
    });
    assert.equal(await a.authorize(s.host, bearer(s.realm), [pull('x')]), 'Bearer from-other');
    assert.equal(s.seen[1]?.headers.authorization, basicAuth('u', 'p'));
    assert.equal(other.seen[0]?.headers.authorization, undefined);
  });
});

describe('token errors', () => {
  const unauthorized = async (t: T, auth: Auth, wantMessage: RegExp, status = 401, body: unknown = {}) => {
    const s = await server(t, (_q, res) => json(res, status, body));
    const a = createAuthenticator({ credentials: staticCredentials({ [s.host]: auth }) });
    await assert.rejects(a.authorize(s.host, bearer(s.realm), [pull('x')]), (e) => {
      assert.ok(isDrayError(e, 'DRAY_UNAUTHORIZED'), String(e));
      assert.match(e.message, wantMessage);
      assert.equal(e.hint?.startsWith(`run 'dray login ${s.host}'`), true, e.hint);
      return true;
    });
  };

  test('401 with a password: incorrect username or password', async (t) => {
    await unauthorized(
      t,
      { kind: 'basic', username: 'u', password: 'wrong' },
      /^unauthorized: incorrect username or password for 127\.0\.0\.1:\d+$/,
    );
  });
  test('403 counts as rejected credentials too', async (t) => {
    await unauthorized(
      t,
      { kind: 'basic', username: 'u', password: 'wrong' },
      /incorrect username or password/,
      403,
    );
  });
  test('401 anonymous: authentication required', async (t) => {
    await unauthorized(
      t,
      { kind: 'anonymous' },
      /^unauthorized: authentication required for 127\.0\.0\.1:\d+$/,
    );
  });
  test('identity token rejected (401, or OAuth2 invalid_grant)', async (t) => {
    await unauthorized(t, { kind: 'identity-token', token: 'old' }, /identity token for .* was rejected/);
    await unauthorized(
      t,
      { kind: 'identity-token', token: 'old' },
      /identity token for .* was rejected/,
      400,
      {
        error: 'invalid_grant',
      },
    );
  });

  test('Docker Hub hints say plain dray login', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    agent
      .get('https://auth.docker.io')
      .intercept({ path: /^\/token/ })
      .reply(401, {});
    const a = createAuthenticator({
      credentials: staticCredentials({ 'docker.io': { kind: 'basic', username: 'u', password: 'p' } }),
      dispatcher: agent,
    });
    await assert.rejects(
      a.authorize('registry-1.docker.io', bearer('https://auth.docker.io/token'), [pull('library/alpine')]),
      (e) => isDrayError(e, 'DRAY_UNAUTHORIZED') && e.hint?.startsWith("run 'dray login' ") === true,
    );
    await agent.close();
  });

  test('other statuses: 429 and 5xx', async (t) => {
    const s = await server(t, (q, res) =>
      q.url.searchParams.get('scope') === 'repository:busy:pull'
        ? json(res, 429, {})
        : json(res, 503, { errors: [{ code: 'UNAVAILABLE', message: 'down for maintenance' }] }),
    );
    const a = createAuthenticator({ credentials: staticCredentials({}) });
    await assert.rejects(a.authorize(s.host, bearer(s.realm), [pull('busy')]), (e) =>
      isDrayError(e, 'DRAY_TOO_MANY_REQUESTS'),
    );
    await assert.rejects(
      a.authorize(s.host, bearer(s.realm), [pull('x')]),
      (e) =>
        isDrayError(e, 'DRAY_REGISTRY_ERROR') &&
        e.message === `token service ${s.host} responded 503: UNAVAILABLE: down for maintenance`,
    );
  });

  test('malformed token responses', async (t) => {
    const bodies = ['not json', '{"expires_in": 60}', '{"token": 5}', '{"token": "a\\r\\nb"}', '[]'];
    const s = await server(t, (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(bodies.shift());
    });
    const a = createAuthenticator({ credentials: staticCredentials({}) });
    for (let i = 0; i < 5; i++) {
      await assert.rejects(
        a.authorize(s.host, bearer(s.realm), [pull(`x${i}`)]),
        (e) =>
          isDrayError(e, 'DRAY_REGISTRY_ERROR') &&
          e.message.startsWith(`invalid token response from ${s.host}`),
      );
    }
  });

  test('oversized token response', async (t) => {
    const s = await server(t, (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"token":"${'a'.repeat(2 << 20)}"}`);
    });
    const a = createAuthenticator({ credentials: staticCredentials({}) });
    await assert.rejects(
      a.authorize(s.host, bearer(s.realm), [pull('x')]),
      (e) => isDrayError(e, 'DRAY_REGISTRY_ERROR') && /larger than/.test(e.message),
    );
  });

  test('bad challenges: no realm, non-http realm', async () => {
    const a = createAuthenticator({ credentials: staticCredentials({}) });
    await assert.rejects(
      a.authorize('r.example', parseChallenges('Bearer service="x"'), [pull('x')]),
      (e) => isDrayError(e, 'DRAY_REGISTRY_ERROR') && /without a realm/.test(e.message),
    );
    await assert.rejects(
      a.authorize('r.example', bearer('ftp://r.example/token'), [pull('x')]),
      (e) => isDrayError(e, 'DRAY_REGISTRY_ERROR') && /invalid token realm/.test(e.message),
    );
  });

  test('network failure: DRAY_REGISTRY_UNREACHABLE naming the realm host only', async (t) => {
    const s = await server(t, (_q, res) => json(res, 200, {}));
    const realm = `${s.realm}?secretish=query`;
    const dead = await new Promise<string>((resolve) => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1', () => {
        const port = (srv.address() as AddressInfo).port;
        srv.close(() => resolve(`127.0.0.1:${port}`));
      });
    });
    const a = createAuthenticator({ credentials: staticCredentials({}) });
    await assert.rejects(a.authorize('r.example', bearer(realm.replace(s.host, dead)), [pull('x')]), (e) => {
      assert.ok(isDrayError(e, 'DRAY_REGISTRY_UNREACHABLE'), String(e));
      assert.equal(e.message, `cannot reach token service ${dead} for r.example: ECONNREFUSED`);
      assert.ok(!e.message.includes('scope') && !e.message.includes('secretish'));
      return true;
    });
  });

  test('plain-http realm: secrets only to loopback or insecureRegistries; anonymous allowed', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    agent
      .get('http://token.example')
      .intercept({ path: /^\/token/ })
      .reply(200, { token: 'plain' })
      .persist();
    const creds = staticCredentials({
      'r.example': { kind: 'basic', username: 'u', password: 'p' },
      'id.example': { kind: 'identity-token', token: 'i' },
    });
    const ch = bearer('http://token.example/token');
    const refused = createAuthenticator({ credentials: creds, dispatcher: agent });
    for (const host of ['r.example', 'id.example']) {
      await assert.rejects(
        refused.authorize(host, ch, [pull('x')]),
        (e) =>
          isDrayError(e, 'DRAY_INSECURE_REGISTRY') &&
          e.message ===
            `refusing to send credentials for ${host} to token service token.example over plain http`,
      );
    }
    assert.equal(await refused.authorize('anon.example', ch, [pull('x')]), 'Bearer plain');
    const allowed = createAuthenticator({
      credentials: creds,
      dispatcher: agent,
      insecureRegistries: ['token.example'],
    });
    assert.equal(await allowed.authorize('r.example', ch, [pull('x')]), 'Bearer plain');
    await agent.close();
  });
});

describe('secrets never leak', () => {
  const PASSWORD = 'PW-s3cr3t-value-93f1';
  const IDTOKEN = 'IDTOKEN-s3cr3t-7c2e';
  const REGTOKEN = 'REGTOKEN-s3cr3t-d00d';
  const secretTexts = [
    PASSWORD,
    IDTOKEN,
    REGTOKEN,
    Buffer.from(`alice:${PASSWORD}`).toString('base64'),
    Buffer.from(`me:${IDTOKEN}`).toString('base64'),
  ];

  /** Every text reachable from an error: message, hint, stack, cause chain, inspect and JSON. */
  function assertClean(e: unknown, label: string) {
    const texts: string[] = [inspect(e, { depth: 20, showHidden: true }), JSON.stringify(e) ?? ''];
    let cur: unknown = e;
    for (let i = 0; cur !== undefined && cur !== null && i < 20; i++) {
      if (typeof cur === 'object') {
        const o = cur as { message?: unknown; hint?: unknown; stack?: unknown; cause?: unknown };
        texts.push(String(o.message), String(o.hint), String(o.stack));
        cur = o.cause;
      } else {
        texts.push(String(cur));
        break;
      }
    }
    for (const text of texts) {
      for (const secret of secretTexts) {
        assert.ok(!text.includes(secret), `${label}: secret leaked in\n${text}`);
      }
    }
  }

  test('token service failures that echo the credentials back', async (t) => {
    // A hostile/buggy token service that puts what it received into its error bodies.
    const s = await server(t, (q, res) => {
      const basic = (q.headers.authorization ?? '').replace(/^Basic /, '');
      const echo = `${q.headers.authorization ?? ''} ${q.body} ${Buffer.from(basic, 'base64').toString()} ${new URLSearchParams(q.body).get('refresh_token') ?? ''}`;
      const mode = q.url.pathname;
      if (mode === '/401') json(res, 401, { details: echo });
      else if (mode === '/oauth400') json(res, 400, { error: 'invalid_grant', error_description: echo });
      else if (mode === '/500') json(res, 500, { errors: [{ code: 'X', message: echo }] });
      else if (mode === '/text500') {
        res.writeHead(500);
        res.end(echo);
      } else if (mode === '/badjson') {
        res.writeHead(200);
        res.end(`{"token": ${JSON.stringify(echo)}, broken`);
      } else json(res, 404, {});
    });
    const creds = staticCredentials({
      [s.host]: { kind: 'basic', username: 'alice', password: PASSWORD },
      'id.example': { kind: 'identity-token', username: 'me', token: IDTOKEN },
    });
    const a = createAuthenticator({ credentials: creds });
    const errors: [string, unknown][] = [];
    const capture = async (label: string, p: Promise<unknown>) => {
      try {
        await p;
        assert.fail(`${label}: expected an error`);
      } catch (e) {
        errors.push([label, e]);
      }
    };
    for (const path of ['/401', '/500', '/text500', '/badjson']) {
      await capture(`basic ${path}`, a.authorize(s.host, bearer(`${s.origin}${path}`), [pull(path)]));
      await capture(
        `identity ${path}`,
        a.authorize('id.example', bearer(`${s.origin}${path}`), [pull(path)]),
      );
    }
    await capture('oauth400', a.authorize('id.example', bearer(`${s.origin}/oauth400`), [pull('o')]));
    await capture(
      'insecure',
      a.authorize(s.host.replace('127.0.0.1', 'r.example'), bearer('http://token.example/t'), [pull('x')]),
    );
    await capture(
      'unreachable',
      createAuthenticator({
        credentials: staticCredentials({
          'x.example': { kind: 'basic', username: 'alice', password: PASSWORD },
        }),
      }).authorize('x.example', bearer('http://127.0.0.1:1/token'), [pull('x')]),
    );
    assert.equal(errors.length, 11);
    for (const [label, e] of errors) {
      assert.ok(isDrayError(e), `${label}: ${String(e)}`);
      assertClean(e, label);
    }
    // the registry's own words still come through, with the secrets cut out
    const text500 = errors.find(([l]) => l === 'basic /text500')?.[1];
    assert.ok(isDrayError(text500) && text500.message.includes('REDACTED'), String(text500));
  });

  test('registry tokens and credential sources', async (t) => {
    const { mkdtemp, rm, writeFile, chmod } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { createCredentialStore } = await import('./credential-store.ts');
    const { saveCredentials } = await import('./docker-config.ts');
    const dir = await mkdtemp(join(tmpdir(), 'dray-leak-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    // a helper that prints the secret (or the URL) it was given, then fails
    const helper = join(dir, 'docker-credential-leaky');
    await writeFile(
      helper,
      `#!${process.execPath}\nconst i=require('node:fs').readFileSync(0,'utf8');let o=i;try{o=JSON.parse(i).Secret}catch{}process.stdout.write('failed: '+o+'\\n');process.exit(1);\n`,
    );
    await chmod(helper, 0o755);
    const errors: [string, unknown][] = [];
    const capture = async (label: string, p: Promise<unknown>) => {
      try {
        await p;
        assert.fail(`${label}: expected an error`);
      } catch (e) {
        errors.push([label, e]);
      }
    };
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credsStore: 'leaky' }));
    await capture(
      'helper store',
      saveCredentials(dir, 'r.example', { username: 'alice', password: PASSWORD }, { env: { PATH: dir } }),
    );
    await capture(
      'helper store identity',
      saveCredentials(dir, 'r.example', { username: 'me', identityToken: IDTOKEN }, { env: { PATH: dir } }),
    );
    await capture(
      'helper get',
      createCredentialStore({ configDir: dir, helperEnv: { PATH: dir } }).get('r.example'),
    );
    // a config file cut off in the middle of a secret
    const cut = join(dir, 'cut');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(cut);
    await writeFile(
      join(cut, 'config.json'),
      `{"auths":{"r.example":{"auth":"${Buffer.from(`alice:${PASSWORD}`).toString('base64')}"`,
    );
    await capture('cut config', createCredentialStore({ configDir: cut }).get('r.example'));
    await writeFile(
      join(cut, 'config.json'),
      JSON.stringify({ auths: { 'r.example': { auth: `${PASSWORD}!!` } } }),
    );
    await capture('bad auth', createCredentialStore({ configDir: cut }).get('r.example'));
    // a registry token is used as is; nothing to leak, but a bad realm must not print it either
    const a = createAuthenticator({
      credentials: staticCredentials({ 'rt.example': { kind: 'registry-token', token: REGTOKEN } }),
    });
    assert.equal(await a.authorize('rt.example', bearer('ftp://x'), [pull('x')]), `Bearer ${REGTOKEN}`);
    assert.equal(errors.length, 5);
    for (const [label, e] of errors) {
      assert.ok(isDrayError(e), `${label}: ${String(e)}`);
      assertClean(e, label);
    }
  });
});
