/**
 * The OCI runtime spec (config.json, runtime-spec 1.0) of a build container, as BuildKit's
 * `oci.GenerateSpec` builds it on top of containerd's defaults (pkg/oci/spec.go, mounts.go),
 * with the differences listed on createSpec. Pure: no I/O.
 */
import { posix } from 'node:path';
import { DrayError } from '../errors.ts';
import type { ExecMount } from './types.ts';

/** The subset of the OCI runtime spec dray writes. Field names are the spec's. */
export interface RuntimeSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective: string[]; permitted: string[] };
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: RuntimeMount[];
  linux: {
    namespaces: { type: string }[];
    maskedPaths: string[];
    readonlyPaths: string[];
    resources: { devices: { allow: boolean; access: string }[] };
  };
}

export interface RuntimeMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

/** Docker's default PATH (containerd's `defaultUnixEnv`). */
export const defaultPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's default capability set (containerd `defaultUnixCaps`, moby `oci/caps/defaults.go`). */
export const defaultCapabilities: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** Docker's default `--ulimit nofile`; lowered to what the host allows (see RuncExecutorOptions). */
export const defaultNofile = 1048576;

/**
 * The environment: docker's default PATH first, overridden by `env` (containerd
 * `replaceOrAppendEnvValues`: a `KEY=v` replaces the default, a bare `KEY` removes it). HOME is
 * left to runc, which sets it from the container's /etc/passwd entry of the uid (else `/`)
 * when absent or empty, as under BuildKit. No I/O.
 */
export function mergeEnv(env: readonly string[]): string[] {
  const out: (string | undefined)[] = [`PATH=${defaultPath}`];
  for (const e of env) {
    const eq = e.indexOf('=');
    const key = eq < 0 ? e : e.slice(0, eq);
    if (key === 'PATH') out[0] = eq < 0 ? undefined : e;
    else if (eq >= 0) out.push(e);
  }
  return out.filter((e): e is string => e !== undefined);
}

export interface SpecInput {
  rootfs: string;
  args: readonly string[];
  /** Final environment (see mergeEnv). */
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  /** Supplementary groups; the primary gid is added when missing. */
  additionalGids: readonly number[];
  hostname: string;
  network: 'none' | 'host';
  mounts: readonly ExecMount[];
  /** Host paths of the generated files bound over /etc/hosts and /etc/resolv.conf. */
  hostsPath: string;
  resolvConfPath: string;
  /** RLIMIT_NOFILE, soft = hard. */
  nofile: number;
  /** Add a cgroup namespace (cgroup v2 hosts, as BuildKit). */
  cgroupNamespace: boolean;
}

/** An ExecMount as an OCI mount (bind: rbind[,ro]; tmpfs: nosuid[,ro][,size=N], as BuildKit). */
function toRuntimeMount(m: ExecMount): RuntimeMount {
  if (!m.destination.startsWith('/')) {
    throw new DrayError(
      'DRAY_INVALID_ARGUMENT',
      `mount destination ${m.destination} is not an absolute path`,
    );
  }
  const destination = posix.normalize(m.destination).replace(/(.)\/+$/, '$1');
  if (destination === '/')
    throw new DrayError('DRAY_INVALID_ARGUMENT', 'cannot mount over the root directory');
  if (m.type === 'bind') {
    if (!m.source?.startsWith('/')) {
      throw new DrayError(
        'DRAY_INVALID_ARGUMENT',
        `bind mount ${destination} needs an absolute host source path`,
      );
    }
    return { destination, type: 'bind', source: m.source, options: m.readonly ? ['rbind', 'ro'] : ['rbind'] };
  }
  if (m.type === 'tmpfs') {
    const options = ['nosuid'];
    if (m.readonly) options.push('ro');
    if (m.size !== undefined) {
      if (!Number.isSafeInteger(m.size) || m.size <= 0) {
        throw new DrayError('DRAY_INVALID_ARGUMENT', `tmpfs ${destination}: invalid size ${m.size}`);
      }
      options.push(`size=${m.size}`);
    }
    return { destination, type: 'tmpfs', source: 'tmpfs', options };
  }
  throw new DrayError('DRAY_INVALID_ARGUMENT', `mount ${destination}: unknown type ${String(m.type)}`);
}

/** Later mounts on the same destination replace earlier ones in place (BuildKit `dedupMounts`). */
function dedupMounts(mounts: RuntimeMount[]): RuntimeMount[] {
  const out: RuntimeMount[] = [];
  const at = new Map<string, number>();
  for (const m of mounts) {
    const i = at.get(m.destination);
    if (i === undefined) {
      at.set(m.destination, out.length);
      out.push(m);
    } else {
      out[i] = m;
    }
  }
  return out;
}

/**
 * The runtime spec for one build step. Follows BuildKit on containerd's default spec: docker's
 * capabilities (bounding/effective/permitted; none inheritable or ambient), masked and
 * read-only /proc and /sys paths, pid/ipc/uts/mount namespaces plus a network namespace unless
 * `host` (runc brings its loopback up), no /run tmpfs (moby/buildkit#429), a read-only
 * cgroup mount, /etc/hosts and /etc/resolv.conf bound read-only, then the request's mounts.
 * Differences from BuildKit: no seccomp or AppArmor profile; `noNewPrivileges` is true
 * (BuildKit clears it so setuid binaries work in RUN); RLIMIT_NOFILE is set (BuildKit inherits
 * the daemon's). The container's cgroup is left to runc (nested under the caller's).
 * Throws DRAY_INVALID_ARGUMENT for empty args or a malformed mount.
 */
export function createSpec(i: SpecInput): RuntimeSpec {
  if (i.args.length === 0) throw new DrayError('DRAY_INVALID_ARGUMENT', 'no command to run: args is empty');
  const caps = [...defaultCapabilities];
  // containerd's ensureAdditionalGids: the primary group is also a supplementary one.
  const additionalGids = i.additionalGids.includes(i.gid)
    ? [...i.additionalGids]
    : [i.gid, ...i.additionalGids];
  const namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (i.network !== 'host') namespaces.push({ type: 'network' });
  if (i.cgroupNamespace) namespaces.push({ type: 'cgroup' });
  const etcOptions = ['nosuid', 'noexec', 'nodev', 'rbind', 'ro'];
  const mounts: RuntimeMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/etc/resolv.conf', type: 'bind', source: i.resolvConfPath, options: etcOptions },
    { destination: '/etc/hosts', type: 'bind', source: i.hostsPath, options: etcOptions },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['ro', 'nosuid', 'noexec', 'nodev'],
    },
    ...i.mounts.map(toRuntimeMount),
  ];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: i.uid, gid: i.gid, additionalGids },
      args: [...i.args],
      env: i.env,
      cwd: i.cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: i.nofile, soft: i.nofile }],
      noNewPrivileges: true,
    },
    root: { path: i.rootfs, readonly: false },
    hostname: i.hostname,
    mounts: dedupMounts(mounts),
    linux: {
      namespaces,
      maskedPaths: [
        '/proc/acpi',
        '/proc/asound',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/sys/firmware',
        '/sys/devices/virtual/powercap',
        '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      // Deny all devices; runc adds the standard allow-list (/dev/null, /dev/zero, …).
      resources: { devices: [{ allow: false, access: 'rwm' }] },
    },
  };
}
