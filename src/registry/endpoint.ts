import { isIP } from 'node:net';

/**
 * Registry endpoint rules (docker's `registry` package semantics, re-stated): which host
 * serves a reference's domain, and which hosts may be spoken to over plain HTTP.
 */

/** The Docker Hub names a reference may carry, and the host that actually serves them. */
const dockerHubDomains = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
export const dockerHubRegistryHost = 'registry-1.docker.io';

/**
 * The `host[:port]` that serves the registry API for a reference domain: `docker.io` and
 * `index.docker.io` map to `registry-1.docker.io`; every other domain is its own host
 * (lower-cased). No I/O.
 */
export function registryHost(domain: string): string {
  const d = domain.toLowerCase();
  return dockerHubDomains.has(d) ? dockerHubRegistryHost : d;
}

/** The credential key for a host: Docker Hub credentials live under `docker.io`. */
export function credentialHost(host: string): string {
  return dockerHubDomains.has(host.toLowerCase()) ? 'docker.io' : host;
}

/** Splits `host[:port]` (IPv6 in brackets) into its host name and optional port. */
export function splitHostPort(host: string): { hostname: string; port?: string } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host);
  if (!m) return { hostname: host };
  return m[2] === undefined ? { hostname: m[1] ?? host } : { hostname: m[1] ?? host, port: m[2] };
}

/**
 * True for `localhost`, `127.0.0.0/8` and `[::1]` (with or without a port). Docker treats
 * these as insecure registries by default (plain HTTP allowed), so a local test registry
 * needs no configuration.
 */
export function isLoopbackHost(host: string): boolean {
  let { hostname } = splitHostPort(host.toLowerCase());
  if (hostname.startsWith('[') && hostname.endsWith(']')) hostname = hostname.slice(1, -1);
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) return true;
  const family = isIP(hostname);
  if (family === 4) return hostname.startsWith('127.');
  if (family === 6) return hostname === '::1' || hostname === '0:0:0:0:0:0:0:1';
  return false;
}

/**
 * True when `host` may be reached over plain HTTP: loopback hosts always; others when listed
 * in `insecureRegistries`, as `host[:port]` (a listed host without a port matches every port)
 * or as an IPv4 CIDR (`10.0.0.0/8`, docker's `insecure-registries` form).
 */
export function isInsecureAllowed(host: string, insecureRegistries: readonly string[] = []): boolean {
  if (isLoopbackHost(host)) return true;
  const h = host.toLowerCase();
  const { hostname } = splitHostPort(h);
  for (const raw of insecureRegistries) {
    const entry = raw
      .trim()
      .toLowerCase()
      .replace(/^https?:\/\//, '')
      .replace(/\/+$/, '');
    if (entry === h) return true;
    if (!entry.includes(':') && entry === hostname) return true;
    if (entry.includes('/') && cidrContains(entry, hostname)) return true;
  }
  return false;
}

function cidrContains(cidr: string, hostname: string): boolean {
  const [net, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  if (net === undefined || isIP(net) !== 4 || isIP(hostname) !== 4 || !(bits >= 0 && bits <= 32))
    return false;
  const toInt = (ip: string) => ip.split('.').reduce((a, p) => (a << 8) | Number(p), 0) >>> 0;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (toInt(net) & mask) === (toInt(hostname) & mask);
}

/**
 * A URL safe to show in messages: the query string (signed URLs carry credentials there)
 * and any userinfo are replaced. No I/O.
 */
export function redactUrl(url: string | URL): string {
  let u: URL;
  try {
    u = new URL(url.toString());
  } catch {
    return String(url).replace(/\?.*$/, '?REDACTED');
  }
  const userinfo = u.username || u.password ? 'REDACTED@' : '';
  const query = u.search ? '?REDACTED' : '';
  return `${u.protocol}//${userinfo}${u.host}${u.pathname}${query}`;
}
