import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { test } from 'node:test';
import { Agent } from 'undici';
import { resolveRetryOptions } from './retry.ts';
import {
  composeTransport,
  type Middleware,
  retryMiddleware,
  type TransportRequest,
  undiciSend,
  userAgentMiddleware,
} from './transport.ts';

async function server(
  t: { after(fn: () => Promise<void>): void },
  handler: Parameters<typeof createServer>[1],
) {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        s.closeAllConnections();
        s.close(() => r());
      }),
  );
  return `127.0.0.1:${(s.address() as AddressInfo).port}`;
}

function setup(t: { after(fn: () => Promise<void>): void }, ...mws: Middleware[]) {
  const agent = new Agent();
  t.after(() => agent.close());
  return composeTransport(undiciSend({ dispatcher: agent, redirecting: agent }), ...mws);
}

const policy = resolveRetryOptions({ attempts: 3, minDelayMs: 1, maxDelayMs: 2 });

test('a connection reset before the response is retried (socket hang up)', async (t) => {
  let n = 0;
  const host = await server(t, (_req, res) => {
    if (n++ === 0) {
      res.socket?.destroy();
      return;
    }
    res.end('ok');
  });
  const seen: unknown[] = [];
  const send = setup(
    t,
    userAgentMiddleware('ua/1'),
    retryMiddleware(policy, (i) => seen.push(i.error)),
  );
  const req: TransportRequest = {
    method: 'GET',
    url: new URL(`http://${host}/v2/`),
    headers: {},
    registry: host,
    scopes: [],
  };
  const res = await send(req);
  assert.equal(res.status, 200);
  assert.equal((await buffer(res.body)).toString(), 'ok');
  assert.equal(seen.length, 1);
});

test('a streamed (non-replayable) body is never retried', async (t) => {
  let n = 0;
  const host = await server(t, (req, res) => {
    n++;
    req.resume();
    req.on('end', () => {
      res.writeHead(503);
      res.end();
    });
  });
  const send = setup(t, retryMiddleware(policy));
  const res = await send({
    method: 'PUT',
    url: new URL(`http://${host}/up`),
    headers: {},
    body: Readable.from([Buffer.from('data')]),
    registry: host,
    scopes: [],
  });
  assert.equal(res.status, 503);
  res.body.resume();
  assert.equal(n, 1);
  const res2 = await send({
    method: 'PUT',
    url: new URL(`http://${host}/up`),
    headers: {},
    body: Buffer.from('x'),
    registry: host,
    scopes: [],
  });
  res2.body.resume();
  assert.equal(n, 4, 'a Buffer body is replayable: 3 attempts');
});
