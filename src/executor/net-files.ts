/**
 * The /etc/hosts and /etc/resolv.conf a build container gets, as BuildKit generates them
 * (executor/oci/hosts.go, executor/oci/resolvconf.go, util/resolvconf): both are bind-mounted
 * read-only over the rootfs's own, which stays untouched.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';

/** BuildKit's default container hostname. */
export const defaultHostname = 'buildkitsandbox';

/** /etc/hosts for `hostname`: localhost on IPv4 (with the hostname) and IPv6. No I/O. */
export function hostsFile(hostname: string): string {
  return `127.0.0.1\tlocalhost ${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`;
}

interface ResolvConf {
  nameservers: string[];
  search: string[];
  options: string[];
  other: string[];
}

function parseResolvConf(text: string): ResolvConf {
  const rc: ResolvConf = { nameservers: [], search: [], options: [], other: [] };
  for (const line of text.split('\n')) {
    // Only a comment character in the first column starts a comment (glibc's rule).
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const f = line.trim().split(/\s+/);
    if (f[0] === '') continue;
    switch (f[0]) {
      case 'nameserver':
        if (f[1] !== undefined && isIP(f[1]) !== 0) rc.nameservers.push(f[1]);
        break;
      case 'domain': // the obsolete spelling of search
      case 'search':
        if (f.length >= 2) rc.search = f.slice(1); // the last one wins
        break;
      case 'options':
        rc.options.push(...f.slice(1));
        break;
      default:
        rc.other.push(line);
    }
  }
  return rc;
}

function isLoopback(ip: string): boolean {
  const v4 = ip.toLowerCase().replace(/^::ffff:/, '');
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return /^(0{0,4}:){2,7}0{0,3}1$/.test(ip) || ip === '::1';
}

/** Google's public resolvers: what docker and BuildKit fall back to. */
const defaultNameservers = ['8.8.8.8', '8.8.4.4', '2001:4860:4860::8888', '2001:4860:4860::8844'];

/**
 * The container's resolv.conf from the host's (`undefined`: no host file). With its own network
 * namespace (`none`), loopback nameservers cannot work and are dropped; with `host` they are
 * kept. Either way, when no nameserver is left, Google's public ones are used. Search, options
 * and unknown lines are kept; comments dropped. No I/O.
 */
export function containerResolvConf(host: string | undefined, network: 'none' | 'host'): string {
  const rc = parseResolvConf(host ?? '');
  if (network !== 'host') rc.nameservers = rc.nameservers.filter((ns) => !isLoopback(ns));
  if (rc.nameservers.length === 0) rc.nameservers = [...defaultNameservers];
  let out = '';
  for (const ns of rc.nameservers) out += `nameserver ${ns}\n`;
  if (rc.search.length > 0) out += `search ${rc.search.join(' ')}\n`;
  if (rc.options.length > 0) out += `options ${rc.options.join(' ')}\n`;
  for (const o of rc.other) out += `${o}\n`;
  return out;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Reads the host's resolver configuration and turns it into the container's (see
 * containerResolvConf). When the host's only nameserver is systemd-resolved's stub
 * (127.0.0.53), a container with its own network reads systemd-resolved's upstream list
 * instead, as BuildKit does. Does I/O (reads /etc/resolv.conf); fs errors other than a
 * missing file pass through.
 */
export async function readContainerResolvConf(network: 'none' | 'host'): Promise<string> {
  let text = await readIfExists('/etc/resolv.conf');
  if (network !== 'host' && text !== undefined) {
    const ns = parseResolvConf(text).nameservers;
    if (ns.length === 1 && ns[0] === '127.0.0.53') {
      text = (await readIfExists('/run/systemd/resolve/resolv.conf')) ?? text;
    }
  }
  return containerResolvConf(text, network);
}
