/**
 * A TCP proxy between a client and an HTTP/1.1 server (usually the registry) that
 * injects faults per request: drop the connection mid-body, delay or stall the
 * response, flip one body byte, or answer with a canned status instead of the server.
 *
 * Keep-alive: the proxy handles exactly one request per client connection. It parses
 * the request head, replaces any Connection/Keep-Alive header with `Connection: close`
 * and forwards it; the server then answers with `Connection: close`, so a well-behaved
 * client (undici, Go, curl) opens a new connection for its next request. Request bodies
 * are streamed through unchanged. This keeps matching exact (every request is seen
 * with its request line) at the price of no connection reuse through the proxy.
 *
 * Byte offsets (`afterBytes`, `offset`) count response *body* bytes, i.e. the bytes after
 * the response head's blank line; for a chunked response they include the chunk framing.
 * The Host header is passed through unchanged, so a registry builds its Location URLs
 * (upload sessions) with the proxy's address and later requests keep going through it.
 */
import { connect, createServer, type Socket } from 'node:net';
import type { TestContext } from 'node:test';

export type Fault =
  /** Forward `afterBytes` body bytes, then close the client connection (FIN; `reset: true` sends RST). */
  | { kind: 'drop'; afterBytes: number; reset?: boolean }
  /** Close the connection after reading the request head, without any response. */
  | { kind: 'close' }
  /** Hold the response for `ms` before forwarding body byte `afterBytes` (default: before the head). */
  | { kind: 'delay'; ms: number; afterBytes?: number }
  /** XOR body byte `offset` with 0xff. */
  | { kind: 'flip'; offset: number }
  /** Answer with this status without asking the server. */
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> };

export interface FaultRule {
  /** Request method, case-insensitive (default: any). */
  method?: string;
  /** Tested against the request target (path + query) (default: any). */
  path?: RegExp;
  /** The first matching request (1-based) this rule fires on. Default 1. */
  nth?: number;
  /** How many matching requests, from `nth` on, it fires on. Default: 1 if `nth` is set, else unlimited. */
  times?: number;
  fault: Fault;
}

export interface ProxyLogEntry {
  /** 1-based connection (= request) number. */
  id: number;
  method: string;
  /** Request target as sent (path + query). */
  path: string;
  /** Response status (0 if none was seen). */
  status: number;
  /** Which fault fired, if any ('drop', 'status', …). */
  fault?: Fault['kind'];
  /** Response body bytes forwarded to the client. */
  bodyBytes: number;
}

export interface FaultProxy {
  /** `127.0.0.1:PORT`: use in place of the target's host. */
  host: string;
  port: number;
  url: string;
  /** Every request seen, in arrival order; status and bodyBytes fill in as the response goes through. */
  log: ProxyLogEntry[];
  /** Requests in the log matching method (case-insensitive) and path. */
  count(method?: string, path?: RegExp): number;
  /** Replaces the rules (and resets their occurrence counters). */
  setFaults(faults: FaultRule[]): void;
  stop(): Promise<void>;
}

const MAX_HEAD = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

interface ActiveRule {
  rule: FaultRule;
  seen: number;
}

function fires(r: ActiveRule, method: string, target: string): boolean {
  if (r.rule.method !== undefined && r.rule.method.toUpperCase() !== method.toUpperCase()) return false;
  if (r.rule.path !== undefined) {
    r.rule.path.lastIndex = 0;
    if (!r.rule.path.test(target)) return false;
  }
  r.seen++;
  const from = r.rule.nth ?? 1;
  const times = r.rule.times ?? (r.rule.nth === undefined ? Number.POSITIVE_INFINITY : 1);
  return r.seen >= from && r.seen < from + times;
}

const REASONS: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Starts the proxy on a free loopback port; stopped in t.after. */
export async function startFaultProxy(
  t: Pick<TestContext, 'after'>,
  o: { target: string; faults?: FaultRule[] },
): Promise<FaultProxy> {
  const colon = o.target.lastIndexOf(':');
  const targetHost = o.target.slice(0, colon);
  const targetPort = Number(o.target.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(targetPort)) throw new Error(`fault proxy: bad target ${o.target}`);
  let rules: ActiveRule[] = (o.faults ?? []).map((rule) => ({ rule, seen: 0 }));
  const log: ProxyLogEntry[] = [];
  const sockets = new Set<Socket>();
  let nextId = 1;

  const onClient = (client: Socket) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    let head = Buffer.alloc(0);

    const tunnel = (first: Buffer) => {
      const upstream = connect(targetPort, targetHost);
      sockets.add(upstream);
      upstream.on('close', () => {
        sockets.delete(upstream);
        client.destroy();
      });
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.write(first);
      client.pipe(upstream);
      upstream.pipe(client);
    };

    const onHeadData = (chunk: Buffer) => {
      // Not an HTTP request line (e.g. a TLS ClientHello from a client probing https first,
      // as skopeo does): tunnel the bytes unchanged so the server answers as it would
      // directly, instead of leaving the client waiting for its handshake timeout.
      if (head.length === 0 && chunk.length > 0 && !/[A-Z]/.test(String.fromCharCode(chunk[0] ?? 0))) {
        client.off('data', onHeadData);
        tunnel(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf(HEAD_END);
      if (end < 0) {
        if (head.length > MAX_HEAD) client.destroy();
        return;
      }
      client.off('data', onHeadData);
      client.pause();
      const rest = head.subarray(end + 4);
      const lines = head.subarray(0, end).toString('latin1').split('\r\n');
      const [method = '', target = ''] = (lines[0] ?? '').split(' ');
      const entry: ProxyLogEntry = { id: nextId++, method, path: target, status: 0, bodyBytes: 0 };
      log.push(entry);
      let fault: Fault | undefined;
      // Every rule counts its own matches, whichever rule fires; the first that fires wins.
      for (const r of rules) {
        if (fires(r, method, target) && fault === undefined) fault = r.rule.fault;
      }
      if (fault !== undefined) entry.fault = fault.kind;

      if (fault?.kind === 'close') {
        client.destroy();
        return;
      }
      if (fault?.kind === 'status') {
        const body = Buffer.from(
          fault.body ?? JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'injected fault' }] }),
        );
        const headers: Record<string, string> = {
          'Content-Type': 'application/json',
          ...fault.headers,
          'Content-Length': String(method.toUpperCase() === 'HEAD' ? 0 : body.length),
          Connection: 'close',
        };
        let out = `HTTP/1.1 ${fault.status} ${REASONS[fault.status] ?? 'Status'}\r\n`;
        for (const [k, v] of Object.entries(headers)) out += `${k}: ${v}\r\n`;
        entry.status = fault.status;
        const payload = method.toUpperCase() === 'HEAD' ? Buffer.alloc(0) : body;
        entry.bodyBytes = payload.length;
        client.end(Buffer.concat([Buffer.from(`${out}\r\n`, 'latin1'), payload]));
        client.resume(); // drain whatever request body is still coming
        return;
      }

      const kept = lines
        .slice(1)
        .filter((l) => !/^(connection|keep-alive|proxy-connection)\s*:/i.test(l) && l !== '');
      const newHead = Buffer.from(
        `${[lines[0], ...kept, 'Connection: close'].join('\r\n')}\r\n\r\n`,
        'latin1',
      );

      const upstream = connect(targetPort, targetHost);
      sockets.add(upstream);
      upstream.on('close', () => {
        sockets.delete(upstream);
        if (!client.destroyed) client.end();
      });
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.once('connect', () => {
        upstream.write(newHead);
        if (rest.length > 0) upstream.write(rest);
        // end: false — a half-close from the client must not reach the server: Go's net/http cancels
        // the request context when it reads EOF on the connection.
        client.pipe(upstream, { end: false });
        client.resume();
      });

      // Response side.
      let respHead: Buffer | undefined = Buffer.alloc(0);
      let bodyOff = 0;
      let done = false;
      let delayPending = fault?.kind === 'delay' ? fault : undefined;
      const queue: Buffer[] = [];
      let paused = false;

      const forwardBody = (b: Buffer): void => {
        if (done || b.length === 0) return;
        if (delayPending !== undefined && (delayPending.afterBytes ?? -1) >= 0) {
          const at = delayPending.afterBytes ?? 0;
          if (bodyOff + b.length > at) {
            const cut = at - bodyOff;
            forwardBody(b.subarray(0, cut));
            const d = delayPending;
            delayPending = undefined;
            paused = true;
            upstream.pause();
            setTimeout(() => {
              paused = false;
              const held = [b.subarray(cut), ...queue.splice(0)];
              for (const h of held) forwardBody(h);
              if (!paused) upstream.resume();
            }, d.ms);
            return;
          }
        }
        if (fault?.kind === 'flip' && fault.offset >= bodyOff && fault.offset < bodyOff + b.length) {
          b = Buffer.from(b);
          const i = fault.offset - bodyOff;
          b[i] = (b[i] ?? 0) ^ 0xff;
        }
        if (fault?.kind === 'drop' && bodyOff + b.length >= fault.afterBytes) {
          const part = b.subarray(0, Math.max(0, fault.afterBytes - bodyOff));
          bodyOff += part.length;
          entry.bodyBytes = bodyOff;
          done = true;
          upstream.destroy();
          if (fault.reset) client.write(part, () => client.resetAndDestroy());
          else client.end(part);
          return;
        }
        bodyOff += b.length;
        entry.bodyBytes = bodyOff;
        client.write(b);
      };

      const onUpstreamData = (chunk: Buffer): void => {
        if (paused) {
          queue.push(chunk);
          return;
        }
        if (respHead !== undefined) {
          respHead = Buffer.concat([respHead, chunk]);
          const e = respHead.indexOf(HEAD_END);
          if (e < 0) return;
          const h = respHead.subarray(0, e + 4);
          const body = respHead.subarray(e + 4);
          respHead = undefined;
          entry.status = Number(h.subarray(0, h.indexOf('\r\n')).toString('latin1').split(' ')[1] ?? 0);
          const sendHead = () => {
            client.write(h);
            forwardBody(body);
          };
          if (delayPending !== undefined && delayPending.afterBytes === undefined) {
            const d = delayPending;
            delayPending = undefined;
            paused = true;
            upstream.pause();
            setTimeout(() => {
              paused = false;
              sendHead();
              for (const q of queue.splice(0)) {
                if (paused) {
                  queue.unshift(q);
                  break;
                }
                forwardBody(q);
              }
              if (!paused) upstream.resume();
            }, d.ms);
            return;
          }
          sendHead();
          return;
        }
        forwardBody(chunk);
      };
      upstream.on('data', onUpstreamData);
      upstream.on('end', () => {
        const finish = () => {
          if (paused) {
            setTimeout(finish, 5);
            return;
          }
          if (!done && !client.destroyed) client.end();
        };
        finish();
      });
    };
    client.on('data', onHeadData);
  };

  const server = createServer(onClient);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('fault proxy: no address');
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
    return stopped;
  };
  t.after(stop);
  return {
    host: `127.0.0.1:${addr.port}`,
    port: addr.port,
    url: `http://127.0.0.1:${addr.port}`,
    log,
    count: (method, path) =>
      log.filter(
        (e) =>
          (method === undefined || e.method.toUpperCase() === method.toUpperCase()) &&
          (path === undefined || new RegExp(path.source, path.flags.replace('g', '')).test(e.path)),
      ).length,
    setFaults: (f) => {
      rules = f.map((rule) => ({ rule, seen: 0 }));
    },
    stop,
  };
}
