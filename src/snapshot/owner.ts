import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/**
 * Who owns a temporary or active directory, written into its name when it is made (so there
 * is no window in which a directory exists without an owner): `<pid>.<start>.<pidns>.<random>`.
 * The process start time (jiffies since boot, /proc/<pid>/stat field 22) tells a dead owner
 * from a new process that reused its pid; the PID namespace inode tells whether the pid can
 * be judged from here at all (a process in another container sharing the data root cannot,
 * and is then assumed alive).
 */

export interface Owner {
  pid: number;
  /** Process start time in clock ticks since boot. */
  start: string;
  /** Inode of the owner's PID namespace, or '0' when unknown. */
  pidns: string;
}

function startTime(pid: number | 'self'): string | undefined {
  try {
    return parseStart(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat; the command name (field 2) may hold spaces and parentheses. */
function parseStart(stat: string): string | undefined {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[19];
}

function pidNamespace(): string {
  try {
    return String(statSync('/proc/self/ns/pid').ino);
  } catch {
    return '0';
  }
}

/** This process, as recorded in the names it makes. */
export const self: Owner = { pid: process.pid, start: startTime('self') ?? '0', pidns: pidNamespace() };

/** A fresh directory name owned by this process. No I/O. */
export function ownedName(suffix = ''): string {
  return `${self.pid}.${self.start}.${self.pidns}.${randomBytes(6).toString('hex')}${suffix}`;
}

/** The owner recorded in a name made by {@link ownedName}, or undefined for any other name. */
export function parseOwner(name: string): Owner | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.[0-9a-f]{12}/.exec(name);
  if (!m) return undefined;
  return { pid: Number(m[1]), start: m[2] as string, pidns: m[3] as string };
}

/**
 * Whether `o` may still be running: true unless it is provably gone (same PID namespace and
 * no process with that pid and start time). Does I/O (reads /proc).
 */
export async function ownerAlive(o: Owner): Promise<boolean> {
  if (o.pidns !== self.pidns || o.pidns === '0') return true;
  if (o.pid === self.pid) return o.start === self.start;
  let stat: string;
  try {
    stat = await readFile(`/proc/${o.pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  return parseStart(stat) === o.start;
}
