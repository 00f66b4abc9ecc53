/**
 * EXPOSE port specs (`80`, `80/udp`, `8000-8010/tcp`, even `ip:host:container`), parsed as
 * dockerfile2llb's convert_expose.go does, into `port/proto` keys for the config.
 */
import { isIP } from 'node:net';
import { goQuote } from '../shell/gotext.ts';

/** A port spec that does not parse; `message` is upstream's. */
export class PortSpecError extends Error {}

/** Upstream `splitParts`: `[ip:]host:container`, the IP may itself contain colons. */
function splitParts(raw: string): [string, string, string] {
  const parts = raw.split(':');
  switch (parts.length) {
    case 1:
      return ['', '', parts[0]!];
    case 2:
      return ['', parts[0]!, parts[1]!];
    case 3:
      return [parts[0]!, parts[1]!, parts[2]!];
    default: {
      const n = parts.length;
      return [parts.slice(0, n - 2).join(':'), parts[n - 2]!, parts[n - 1]!];
    }
  }
}

function splitProtoPort(raw: string): [proto: string, port: string] {
  const slash = raw.indexOf('/');
  const port = slash < 0 ? raw : raw.slice(0, slash);
  const proto = slash < 0 ? '' : raw.slice(slash + 1);
  if (port === '') throw new PortSpecError('no port specified');
  switch (proto.toLowerCase()) {
    case '':
      return ['tcp', port];
    case 'tcp':
    case 'udp':
    case 'sctp':
      return [proto, port];
    default:
      throw new PortSpecError(`invalid proto: ${proto}`);
  }
}

// strconv.ParseInt(s, 10, 0) and 0..65535.
function parsePortNumber(raw: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(raw)) return undefined;
  const n = Number.parseInt(raw, 10);
  if (n < 0 || n > 65535) return undefined;
  return n;
}

function parsePortRange(ports: string): [number, number] | undefined {
  if (ports === '') return undefined;
  const dash = ports.indexOf('-');
  const start = dash < 0 ? ports : ports.slice(0, dash);
  const end = dash < 0 ? '' : ports.slice(dash + 1);
  const s = parsePortNumber(start);
  if (s === undefined) return undefined;
  if (dash < 0 || start === end) return [s, s];
  const e = parsePortNumber(end);
  if (e === undefined || e < s) return undefined;
  return [s, e];
}

/** What one spec means, plus whether it used an IP or host port (a lint warning upstream). */
export interface ParsedPort {
  ports: string[];
  proto: string;
  hasHostPart: boolean;
}

/** Parses one spec into `port/proto` keys (a range yields one per port). Throws PortSpecError. */
export function parsePort(raw: string): ParsedPort {
  let [ip, hostPort, containerPort] = splitParts(raw);
  let proto: string;
  try {
    [proto, containerPort] = splitProtoPort(containerPort);
  } catch (e) {
    throw new PortSpecError(`invalid port: ${goQuote(raw)}: ${(e as Error).message}`);
  }
  if (ip !== '' && ip[0] === '[') {
    // An IPv6 literal in brackets: `[::1]`.
    const close = ip.indexOf(']');
    if (close < 0 || close !== ip.length - 1) throw new PortSpecError(`invalid IP address ${ip}`);
    ip = ip.slice(1, close);
  }
  if (ip !== '' && isIP(ip) === 0) throw new PortSpecError(`invalid IP address: ${ip}`);
  const range = parsePortRange(containerPort);
  if (!range) throw new PortSpecError(`invalid containerPort: ${containerPort}`);
  const [start, end] = range;
  if (hostPort !== '') {
    const hostRange = parsePortRange(hostPort);
    if (!hostRange) throw new PortSpecError(`invalid hostPort: ${hostPort}`);
    if (end - start !== hostRange[1] - hostRange[0] && end !== start)
      throw new PortSpecError(
        `invalid ranges specified for container and host Ports: ${containerPort} and ${hostPort}`,
      );
  }
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto.toLowerCase()}`);
  return { ports: out, proto, hasHostPart: ip !== '' || hostPort !== '' };
}
