import { DrayError } from '../../errors.ts';

/**
 * COPY/ADD `--chmod`: an octal mode replaces the permission bits; a symbolic mode
 * (`u+x,g-w,o=r`, `+x`, `a=rX`, `u=g`…) is applied to each copied file's own mode, with
 * BSD `setmode(3)` rules and a zero umask (what BuildKit ≥ 1.14 does through
 * tonistiigi/dchapes-mode). Pure.
 */

const SUID = 0o4000;
const SGID = 0o2000;
const STICKY = 0o1000;
const USR = 0o700;
const GRP = 0o070;
const OTH = 0o007;
const ALL_R = 0o444;
const ALL_W = 0o222;
const ALL_X = 0o111;
/** setuid, setgid and rwx for everyone: what `a` (or no "who") stands for; the sticky bit is not in it. */
const STANDARD = SUID | SGID | USR | GRP | OTH;

/** One step of a symbolic mode, applied in order. */
type Step =
  | { op: 'clear' | 'set'; bits: number }
  /** `X`: set `bits` when the file is a directory or had any execute bit before the whole mode was applied. */
  | { op: 'X'; bits: number }
  /** `u`/`g`/`o` as the permission: copy that class's current bits to the classes in `targets`. */
  | { op: 'copy'; from: 'u' | 'g' | 'o'; targets: number; mask: number; clear: boolean; set: boolean };

/** A parsed `--chmod`: `octal` sets the bits outright; `symbolic` adjusts each file's mode. */
export type ModeSpec =
  | { kind: 'octal'; mode: number }
  | { kind: 'symbolic'; text: string; steps: readonly Step[] };

function invalid(text: string): DrayError {
  return new DrayError(
    'DRAY_INVALID_ARGUMENT',
    `invalid chmod parameter: '${text}'. it should be octal string and between 0 and 07777, or a symbolic mode`,
    { hint: "use an octal mode such as 0755 or a symbolic one such as 'u+x,g-w'" },
  );
}

/**
 * Parses a `--chmod` value: digits are octal (at most 07777); anything else is a symbolic mode.
 * Pure. @throws DRAY_INVALID_ARGUMENT for a malformed value.
 */
export function parseMode(text: string): ModeSpec {
  if (/^[0-9]+$/.test(text)) {
    if (!/^[0-7]+$/.test(text)) throw invalid(text);
    const mode = Number.parseInt(text, 8);
    if (mode > 0o7777) throw invalid(text);
    return { kind: 'octal', mode };
  }
  return { kind: 'symbolic', text, steps: parseSymbolic(text) };
}

function parseSymbolic(text: string): Step[] {
  const steps: Step[] = [];
  let i = 0;
  const peek = (): string | undefined => text[i];
  if (text === '') throw invalid(text);
  for (;;) {
    // who: a, u, g, o (any number, any order)
    let who = 0;
    for (;;) {
      const c = peek();
      if (c === undefined) throw invalid(text);
      if (c === 'a') who |= STANDARD;
      else if (c === 'u') who |= SUID | USR;
      else if (c === 'g') who |= SGID | GRP;
      else if (c === 'o') who |= OTH;
      else break;
      i++;
    }
    // one or more "op perms" groups
    for (;;) {
      const op = peek();
      if (op !== '+' && op !== '-' && op !== '=') throw invalid(text);
      i++;
      let target = who;
      let perm = 0;
      let permX = 0;
      let equalDone = false;
      const emit = (bits: number): void => {
        // With no "who", the bits apply to everyone (the umask is zero).
        const applied = target !== 0 ? target & bits : bits;
        if (op === '=') {
          steps.push({ op: 'clear', bits: target !== 0 ? target : STANDARD });
          steps.push({ op: 'set', bits: applied });
        } else steps.push({ op: op === '+' ? 'set' : 'clear', bits: applied });
      };
      const emitX = (): void => {
        if (permX !== 0) steps.push({ op: 'X', bits: target !== 0 ? target & permX : permX });
        permX = 0;
      };
      for (; ; i++) {
        const c = peek();
        if (c === 'r') perm |= ALL_R;
        else if (c === 'w') perm |= ALL_W;
        else if (c === 'x') perm |= ALL_X;
        else if (c === 'X') {
          // `+X` and `=X`: execute where it makes sense (directories, already-executable files);
          // `-X` clears execute like `-x` (dchapes-mode, BuildKit's parser).
          if (op !== '-') permX = ALL_X;
          else perm |= ALL_X;
        } else if (c === 's') {
          // setuid/setgid only mean something for the user and group classes.
          if (target === 0 || (target & ~OTH) !== 0) perm |= SUID | SGID;
        } else if (c === 't') {
          if (target === 0 || (target & ~OTH) !== 0) {
            target |= STICKY;
            perm |= STICKY;
          }
        } else if (c === 'u' || c === 'g' || c === 'o') {
          if (perm !== 0) {
            emit(perm);
            perm = 0;
          }
          if (op === '=') equalDone = true;
          emitX();
          steps.push(copyStep(c, target, op));
        } else {
          if (perm !== 0 || (op === '=' && !equalDone)) {
            if (op === '=') equalDone = true;
            emit(perm);
          }
          emitX();
          break;
        }
      }
      const next = peek();
      if (next === undefined) return steps;
      if (next === ',') {
        i++;
        break;
      }
    }
  }
}

function copyStep(from: 'u' | 'g' | 'o', who: number, op: string): Step {
  let targets = 0;
  let mask = ~0;
  if (who !== 0) {
    if (who & 0o400) targets |= USR;
    if (who & 0o040) targets |= GRP;
    if (who & 0o004) targets |= OTH;
  } else {
    targets = USR | GRP | OTH;
    mask = ~0;
  }
  return { op: 'copy', from, targets, mask, clear: op !== '+', set: op !== '-' };
}

/**
 * The permission bits (07777) a file gets: `mode` is its current st_mode (type bits
 * ignored), `isDir` matters for `X`. Pure.
 */
export function applyMode(spec: ModeSpec, mode: number, isDir: boolean): number {
  if (spec.kind === 'octal') return spec.mode;
  const original = mode & 0o7777;
  let m = original;
  for (const s of spec.steps) {
    switch (s.op) {
      case 'set':
        m |= s.bits;
        break;
      case 'clear':
        m &= ~s.bits;
        break;
      case 'X':
        if (isDir || (original & ALL_X) !== 0) m |= s.bits;
        break;
      case 'copy': {
        const shift = s.from === 'u' ? 6 : s.from === 'g' ? 3 : 0;
        const value = (m >> shift) & 7;
        // `=` clears all three bits of each target class before copying, `-` only the copied ones.
        const clearValue = s.set ? 7 : value;
        for (const [cls, sh] of [
          [USR, 6],
          [GRP, 3],
          [OTH, 0],
        ] as const) {
          if ((s.targets & cls) === 0) continue;
          if (s.clear) m &= ~((clearValue << sh) & s.mask);
          if (s.set) m |= (value << sh) & s.mask;
        }
        break;
      }
    }
  }
  return m & 0o7777;
}
