import { createRequire } from 'node:module';
import { PassThrough } from 'node:stream';
import { DrayError } from '../errors.ts';

// Required, not imported: an ESM import of node:http reads every export, and its lazy
// WebSocket/fetch getters load Node's bundled undici (~20 ms of every dray start-up).
const { request } = createRequire(import.meta.url)('node:http') as typeof import('node:http');

/**
 * A writable stream whose bytes go to a Docker engine's `POST /images/load` (what `docker
 * load` does), and a promise for the engine's answer. `host` is DOCKER_HOST: `unix:///path`
 * (default `/var/run/docker.sock`) or `tcp://host:port`. Does I/O.
 */
export function dockerLoadStream(host: string | undefined): { stream: PassThrough; done: Promise<string> } {
  const target = engineTarget(host);
  const stream = new PassThrough({ highWaterMark: 1 << 20 });
  const done = new Promise<string>((resolve, reject) => {
    const req = request(
      {
        ...target,
        method: 'POST',
        path: '/images/load?quiet=1',
        headers: { 'content-type': 'application/x-tar', 'transfer-encoding': 'chunked' },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => {
          const err = /"error(?:Detail)?"\s*:\s*(?:\{"message":)?"([^"]+)"/.exec(body);
          if ((res.statusCode ?? 500) >= 300 || err)
            reject(
              new DrayError('DRAY_BUILD', `docker load failed: ${err?.[1] ?? `HTTP ${res.statusCode}`}`),
            );
          else resolve(body);
        });
      },
    );
    req.on('error', (e) =>
      reject(
        new DrayError(
          'DRAY_BUILD',
          `cannot reach the Docker engine at ${host ?? 'unix:///var/run/docker.sock'}: ${e.message}`,
          {
            cause: e,
            hint: 'start dockerd or set DOCKER_HOST',
          },
        ),
      ),
    );
    stream.pipe(req);
    stream.on('error', (e) => req.destroy(e));
  });
  return { stream, done };
}

function engineTarget(host: string | undefined): { socketPath: string } | { host: string; port: number } {
  const h = host && host !== '' ? host : 'unix:///var/run/docker.sock';
  if (h.startsWith('unix://')) return { socketPath: h.slice('unix://'.length) };
  const m = /^tcp:\/\/([^:/]+):(\d+)\/?$/.exec(h);
  if (m) return { host: m[1] as string, port: Number(m[2]) };
  throw new DrayError('DRAY_INVALID_ARGUMENT', `unsupported DOCKER_HOST ${JSON.stringify(h)}`, {
    hint: 'use unix:///path/to/docker.sock or tcp://host:port',
  });
}
