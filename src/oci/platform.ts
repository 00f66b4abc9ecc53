import { endianness } from 'node:os';
import { DrayError } from '../errors.ts';
import type { Descriptor, ImageIndex, Platform } from './types.ts';

/**
 * Platform specifiers and matching, with containerd's semantics (github.com/containerd/platforms:
 * `Parse`, `Normalize`, `Only`/`Ordered`), so `dray pull --platform` picks the same manifest
 * from a multi-platform image as docker and containerd do.
 */

// go/build syslist.go, as containerd's database.go lists them.
const knownOS = new Set([
  'aix',
  'android',
  'darwin',
  'dragonfly',
  'freebsd',
  'hurd',
  'illumos',
  'ios',
  'js',
  'linux',
  'nacl',
  'netbsd',
  'openbsd',
  'plan9',
  'solaris',
  'windows',
  'zos',
]);
const knownArch = new Set([
  '386',
  'amd64',
  'amd64p32',
  'arm',
  'armbe',
  'arm64',
  'arm64be',
  'ppc64',
  'ppc64le',
  'loong64',
  'mips',
  'mipsle',
  'mips64',
  'mips64le',
  'mips64p32',
  'mips64p32le',
  'ppc',
  'riscv',
  'riscv64',
  's390',
  's390x',
  'sparc',
  'sparc64',
  'wasm',
]);

const componentRe = /^[A-Za-z0-9_.-]+$/;
// `os(os.version+feature+feature)`, containerd's extension for Windows os.version.
const osRe = /^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?$/;

function invalid(spec: string, why: string): DrayError {
  return new DrayError('DRAY_INVALID_PLATFORM', `invalid platform ${JSON.stringify(spec)}: ${why}`, {
    hint: 'a platform is os[/arch[/variant]], e.g. linux/amd64, linux/arm64/v8 or linux/arm/v7',
  });
}

function normalizeOS(os: string): string {
  if (os === '') return hostOS();
  const lower = os.toLowerCase();
  return lower === 'macos' ? 'darwin' : lower;
}

/** containerd normalizeArch: canonical architecture names and default variants. */
function normalizeArch(arch: string, variant: string): [string, string] {
  let a = arch.toLowerCase();
  let v = variant.toLowerCase();
  switch (a) {
    case 'i386':
      a = '386';
      v = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      a = 'amd64';
      if (v === 'v1') v = ''; // v1 is the baseline every amd64 CPU has
      break;
    case 'aarch64':
    case 'arm64':
      a = 'arm64';
      if (v === '8' || v === 'v8' || v === 'v8.0')
        v = ''; // v8 is the arm64 baseline
      else if (v === '9' || v === '9.0' || v === 'v9.0') v = 'v9';
      break;
    case 'armhf':
      a = 'arm';
      v = 'v7';
      break;
    case 'armel':
      a = 'arm';
      v = 'v6';
      break;
    case 'arm':
      if (v === '' || v === '7')
        v = 'v7'; // arm without a variant means v7
      else if (v === '5' || v === '6' || v === '8') v = `v${v}`;
      break;
  }
  return [a, v];
}

function decodeOption(spec: string, v: string): string {
  if (!v.includes('%')) return v;
  try {
    return decodeURIComponent(v);
  } catch {
    throw invalid(spec, `bad escape in ${JSON.stringify(v)}`);
  }
}

/**
 * Parses a platform specifier `os[/arch[/variant]]` as containerd's `platforms.Parse` does. No
 * I/O. One component may be an OS (the architecture is then the host's) or an architecture
 * (the OS is then the host's); names are normalised (`aarch64` → `arm64`, `x86_64` → `amd64`,
 * `armhf` → `arm/v7`…). The OS may carry an os.version and os.features in parentheses,
 * `windows(10.0.17763)/amd64`.
 * @throws DRAY_INVALID_PLATFORM for an empty, malformed or unknown specifier.
 */
export function parsePlatform(specifier: string): Platform {
  if (specifier.includes('*')) throw invalid(specifier, 'wildcards are not supported');
  const parts = specifier.split('/');
  if (parts.length > 3) throw invalid(specifier, 'too many components: expected os[/arch[/variant]]');
  const [first = '', ...rest] = parts;
  const m = osRe.exec(first);
  if (!m) {
    throw invalid(
      specifier,
      first === '' ? 'the OS is empty' : `${JSON.stringify(first)} is not a valid OS component`,
    );
  }
  for (const part of rest) {
    if (!componentRe.test(part)) {
      throw invalid(
        specifier,
        part === ''
          ? 'empty component'
          : `${JSON.stringify(part)} is not a valid component (letters, digits, _ . -)`,
      );
    }
  }
  const p: Platform = { os: normalizeOS(m[1] ?? ''), architecture: '' };
  const osVersion = decodeOption(specifier, m[2] ?? '');
  if (osVersion !== '') p['os.version'] = osVersion;
  if (m[3]) {
    const features = m[3]
      .slice(1)
      .split('+')
      .map((f) => decodeOption(specifier, f))
      .filter((f) => f !== '');
    if (features.length > 0) p['os.features'] = features;
  }

  if (rest.length === 0) {
    if (knownOS.has(p.os)) {
      const host = hostPlatform();
      p.architecture = host.architecture;
      if (host.variant && !(host.architecture === 'arm' && host.variant === 'v7')) p.variant = host.variant;
      return p;
    }
    // Not an OS: maybe an architecture alone (`--platform arm64`), on the host's OS.
    const [arch, variant] = normalizeArch(first, '');
    if (!knownArch.has(arch)) throw invalid(specifier, 'unknown operating system or architecture');
    const q: Platform = { os: hostOS(), architecture: arch };
    if (variant !== '' && !(arch === 'arm' && variant === 'v7')) q.variant = variant;
    return q;
  }
  const [arch, variant] = normalizeArch(rest[0] ?? '', rest[1] ?? '');
  p.architecture = arch;
  if (rest.length === 1) {
    // containerd keeps `linux/arm` as written (v7 is implied, see normalizePlatform).
    if (variant !== '' && !(arch === 'arm' && variant === 'v7')) p.variant = variant;
  } else if (arch === 'arm64' && variant === '') {
    p.variant = 'v8'; // keep what the user wrote: linux/arm64/v8
  } else if (variant !== '') {
    p.variant = variant;
  }
  return p;
}

/**
 * Formats a platform as `os/arch[/variant]` (containerd `platforms.Format`); `unknown` when the
 * OS is empty. os.version and os.features are left out. No I/O.
 */
export function formatPlatform(p: Platform): string {
  if (!p.os) return 'unknown';
  return [p.os, p.architecture, p.variant].filter((s) => s !== undefined && s !== '').join('/');
}

/**
 * Returns the canonical form of a platform (containerd `platforms.Normalize`): lower case,
 * `macos` → `darwin`, `aarch64` → `arm64`, `x86_64`/`x86-64` → `amd64`, `i386` → `386`,
 * `armhf` → `arm/v7`, `armel` → `arm/v6`, `arm` → `arm/v7`, default variants dropped
 * (`arm64/v8` → `arm64`, `amd64/v1` → `amd64`), os.features sorted and deduplicated. An empty
 * OS becomes the host's. No I/O; does not modify `p`.
 */
export function normalizePlatform(p: Platform): Platform {
  const out: Platform = { ...p, os: normalizeOS(p.os) };
  const [arch, variant] = normalizeArch(p.architecture, p.variant ?? '');
  out.architecture = arch;
  if (variant === '') delete out.variant;
  else out.variant = variant;
  if (p['os.features'] && p['os.features'].length > 0) {
    out['os.features'] = [...new Set(p['os.features'])].sort();
  }
  return out;
}

function hostOS(): string {
  switch (process.platform) {
    case 'win32':
    case 'darwin':
      // dray runs Linux containers; on macOS and Windows, as Docker Desktop does, in a Linux VM.
      return 'linux';
    case 'sunos':
      return 'solaris';
    default:
      return process.platform;
  }
}

/**
 * The platform dray picks by default: the host's CPU architecture (from `process.arch`, with
 * the ARM version Node was built for) and OS, normalised. dray's executor runs Linux
 * containers, so on macOS and Windows the OS is `linux`, the images Docker Desktop pulls
 * there. No I/O.
 */
export function hostPlatform(): Platform {
  let arch: string = process.arch;
  let variant = '';
  switch (process.arch) {
    case 'x64':
      arch = 'amd64';
      break;
    case 'ia32':
      arch = '386';
      break;
    case 'arm': {
      // Node reports the ARM version it was compiled for; containerd reads /proc/cpuinfo, and
      // Node for ARMv6 runs only on v6-class CPUs, so the two agree where Node runs.
      const v = (process.config.variables as { arm_version?: string }).arm_version;
      variant = v ? `v${v}` : 'v7';
      break;
    }
    case 'ppc64':
      // Node calls both ppc64 and ppc64le "ppc64"; the byte order tells them apart.
      arch = endianness() === 'LE' ? 'ppc64le' : 'ppc64';
      break;
    case 'mipsel':
      arch = 'mipsle';
      break;
  }
  const p: Platform = { os: hostOS(), architecture: arch };
  if (variant) p.variant = variant;
  return normalizePlatform(p);
}

// containerd platformVector: the platforms a `want` machine runs, best first.
function platformVector(p: Platform): Platform[] {
  const base = { os: p.os, ...(p['os.version'] ? { 'os.version': p['os.version'] } : {}) };
  const withFeatures = p['os.features'] ? { 'os.features': p['os.features'] } : {};
  const at = (architecture: string, variant?: string): Platform => ({
    ...base,
    ...withFeatures,
    architecture,
    ...(variant ? { variant } : {}),
  });
  const vector: Platform[] = [p];
  const num = (v: string | undefined) =>
    /^v?\d+$/.test(v ?? '') ? Number((v ?? '').replace(/^v/, '')) : Number.NaN;
  switch (p.architecture) {
    case 'amd64': {
      // amd64/v3 also runs v2 and v1 binaries, then 386.
      const n = num(p.variant);
      for (let i = n - 1; i >= 1; i--) vector.push(at('amd64', `v${i}`));
      vector.push(at('386'));
      break;
    }
    case 'arm': {
      // arm/v7 also runs v6 and v5.
      const n = num(p.variant);
      for (let i = n - 1; i >= 5; i--) vector.push(at('arm', `v${i}`));
      break;
    }
    case 'arm64': {
      const variant = p.variant || 'v8';
      const versions = arm64Versions(variant);
      if (versions === undefined) break; // an unknown variant matches only itself
      vector.length = 0;
      for (const [major, minorMax] of versions) {
        for (let minor = minorMax; minor >= 0; minor--) {
          vector.push(at('arm64', minor === 0 ? `v${major}` : `v${major}.${minor}`));
        }
      }
      // Every arm64 CPU so far also runs 32-bit arm/v8 and below.
      vector.push(
        ...platformVector(at('arm', variant.startsWith('v8') || variant.startsWith('v9') ? 'v8' : variant)),
      );
      break;
    }
  }
  return vector;
}

// containerd arm64variantToVersion: v9.x also runs v8.(x+5) and below (capped at v8.9).
function arm64Versions(variant: string): Array<[number, number]> | undefined {
  const m = /^v(8|9)(?:\.(\d))?$/.exec(variant);
  if (!m) return undefined;
  const minor = Number(m[2] ?? 0);
  return m[1] === '8'
    ? [[8, minor]]
    : [
        [9, minor],
        [8, Math.min(minor + 5, 9)],
      ];
}

interface WindowsVersion {
  major: number;
  minor: number;
  build: number;
}

function windowsVersion(v: string | undefined): WindowsVersion | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v ?? '');
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), build: Number(m[3]) };
}

const ltsc2022 = 20348;
const compatLTSC = [ltsc2022, 26100];

// containerd checkWindowsHostAndContainerCompat: before ltsc2022 builds must be equal; from
// ltsc2022 on, a host runs containers from the newest LTSC release below it up to its own build.
function windowsCompatible(host: WindowsVersion, ctr: WindowsVersion): boolean {
  if (host.major !== ctr.major || host.minor !== ctr.minor) return false;
  if (host.build < ltsc2022) return host.build === ctr.build;
  let supported = ltsc2022;
  for (let i = compatLTSC.length - 1; i >= 0; i--) {
    const r = compatLTSC[i] ?? ltsc2022;
    if (host.build > r) {
      supported = r;
      break;
    }
  }
  return supported <= ctr.build && ctr.build <= host.build;
}

// containerd matcher.Match: equal normalised os/arch/variant, a compatible Windows os.version,
// and the candidate's os.features a subset of the wanted ones.
function matchesExactly(want: Platform, have: Platform): boolean {
  const w = normalizePlatform(want);
  let h = normalizePlatform(have);
  if (w.os === 'windows' && h['os.features']) {
    // win32k is implied on Windows hosts (containerd windowsStripFeaturesMatcher).
    h = { ...h, 'os.features': h['os.features'].filter((f) => f !== 'win32k') };
  }
  if (w.os !== h.os || w.architecture !== h.architecture || (w.variant ?? '') !== (h.variant ?? ''))
    return false;
  if (w.os === 'windows') {
    const wv = windowsVersion(w['os.version']);
    const hv = windowsVersion(have['os.version']);
    if (wv && hv && !windowsCompatible(wv, hv)) return false;
  }
  const hf = h['os.features'] ?? [];
  const wf = new Set(w['os.features'] ?? []);
  return hf.every((f) => wf.has(f));
}

// The rank of `have` for `want`: the index of the first platform in want's vector it matches.
function rank(vector: readonly Platform[], have: Platform): number {
  return vector.findIndex((v) => matchesExactly(v, have));
}

/**
 * True when a machine of platform `want` runs images built for `have`, as containerd's
 * `platforms.Only(want).Match(have)`: equal after normalisation, or a compatible lower variant
 * (arm/v7 runs v6 and v5; arm64 runs arm64/v8 and arm/v8…v5; amd64/v3 runs v2 and v1; amd64
 * runs 386). No I/O.
 */
export function platformMatches(want: Platform, have: Platform): boolean {
  return rank(platformVector(normalizePlatform(want)), have) >= 0;
}

const attestationAnnotation = 'vnd.docker.reference.type';

/**
 * True for entries that are not images: BuildKit attestation manifests (platform
 * `unknown/unknown`, annotation `vnd.docker.reference.type: attestation-manifest`).
 */
export function isAttestationManifest(d: Descriptor): boolean {
  return (
    d.annotations?.[attestationAnnotation] === 'attestation-manifest' ||
    (d.platform?.os === 'unknown' && d.platform.architecture === 'unknown')
  );
}

/**
 * Picks the manifest of `index` that best fits `want`, ranking candidates as containerd's
 * `platforms.Only(want)` does: an exact match first, then the compatible platforms in order
 * (arm/v7 → arm/v6 → arm/v5; arm64/v8 → arm/v8…v5; amd64/v3 → v2 → v1 → 386); among equals,
 * the one with more os.features, then the first listed. Attestation manifests and entries
 * without a platform are skipped. No I/O.
 * @throws DRAY_PLATFORM_NOT_FOUND when no entry fits; the hint lists the platforms available.
 */
export function selectManifest(index: ImageIndex, want: Platform): Descriptor {
  const vector = platformVector(normalizePlatform(want));
  let best: { d: Descriptor; rank: number; features: number } | undefined;
  for (const d of index.manifests) {
    if (d.platform === undefined || isAttestationManifest(d)) continue;
    const r = rank(vector, d.platform);
    if (r < 0) continue;
    const features = d.platform['os.features']?.length ?? 0;
    if (best === undefined || r < best.rank || (r === best.rank && features > best.features)) {
      best = { d, rank: r, features };
    }
  }
  if (best) return best.d;
  const available = [
    ...new Set(
      index.manifests
        .filter((d) => d.platform !== undefined && !isAttestationManifest(d))
        .map((d) => formatPlatform(d.platform as Platform)),
    ),
  ];
  throw new DrayError(
    'DRAY_PLATFORM_NOT_FOUND',
    `no matching manifest for ${formatPlatform(want)} in the manifest list entries`,
    {
      hint:
        available.length > 0
          ? `the image is available for: ${available.join(', ')}; request one of those platforms`
          : 'the image index names no platforms',
    },
  );
}
