import type { ProgressEvent, ProgressWriter } from '../types.ts';
import { mergeEvent } from '../writer.ts';
import { fitWidth, progressText, shortId } from './format.ts';
import {
  isFinalTransfer,
  isStepFinished,
  isVisibleStep,
  layoutOf,
  messageText,
  type StepState,
  stepStatusText,
  takeLogLines,
} from './layout.ts';
import type { RenderOptions } from './plain.ts';

/** ANSI escapes (ECMA-48): cursor up n lines, erase the line, erase to the end of the screen. */
export const ansi = {
  up: (n: number): string => `\x1b[${n}A`,
  eraseLine: '\x1b[2K',
  eraseDown: '\x1b[J',
} as const;

/** Redraw at most this often (10 frames a second). */
const frameMs = 100;
/** Log lines shown under a running step, as BuildKit's tty display. */
const logTail = 6;

interface Row {
  layout: 'message' | 'transfer';
  id: string;
  text?: string;
}

/**
 * The renderer for terminals. Transfers are drawn as `docker pull` draws them: one line per
 * id in order of first appearance, `a3ed95caeb02: Downloading [=====>   ]  12.35MB/50MB 3s`,
 * redrawn in place (cursor up, erase line); `message` lines sit among them in arrival order;
 * lines that will not change again scroll away and are never redrawn. Steps are drawn as
 * BuildKit's tty display below them: `[+] Building 3.4s (3/5)`, then ` => name   1.2s` for each
 * started step, with the last log lines of running steps, a finished step collapsing to one
 * line. Redraws at most every 100 ms on an unref'd timer and once on `close`, which draws the
 * final state in full and leaves no timer behind. Only `out.write`; `out` is never ended.
 */
export function createTtyRenderer(out: NodeJS.WritableStream, o: RenderOptions = {}): ProgressWriter {
  const now = o.now ?? Date.now;
  const tty = out as { columns?: number; rows?: number };
  const columns = (): number => o.columns ?? tty.columns ?? 80;
  const height = (): number => o.rows ?? tty.rows ?? 24;

  const states = new Map<string, ProgressEvent>();
  const rows: Row[] = [];
  /** The live row of each transfer id. */
  const rowOf = new Map<string, Row>();
  const steps = new Map<string, StepState & { logs: string[] }>();
  let frozen = 0;
  let printed = 0;
  let firstStarted: number | undefined;
  let lastFinished: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let lastDraw = Number.NEGATIVE_INFINITY;
  let closed = false;

  const transferLine = (row: Row): string => {
    if (row.layout === 'message') return row.text ?? '';
    const s = states.get(row.id);
    if (!s) return '';
    const status =
      s.error !== undefined ? `error: ${s.error}` : (s.status ?? (s.cached ? 'Already exists' : ''));
    const bar = isFinalTransfer(s)
      ? ''
      : progressText({
          current: s.current,
          total: s.total,
          started: s.started,
          now: now(),
          columns: columns(),
        });
    return `${shortId(row.id)}: ${status} ${bar}`.trimEnd();
  };

  const stepLines = (final: boolean): string[] => {
    const t = now();
    const shown = [...steps.values()].filter((st) => isVisibleStep(st.state));
    if (shown.length === 0) return [];
    const done = shown.filter((st) => st.finished).length;
    const end = final ? (lastFinished ?? t) : t;
    const elapsed = firstStarted === undefined ? 0 : (end - firstStarted) / 1000;
    const lines = [`[+] Building ${elapsed.toFixed(1)}s (${done}/${steps.size})${final ? ' FINISHED' : ''}`];
    const width = columns();
    for (const st of shown) {
      const s = st.state;
      const label = `${s.error !== undefined ? 'ERROR ' : s.cached ? 'CACHED ' : ''}${s.name ?? s.id}`;
      const started = s.started ?? s.completed ?? t;
      const stopped = (st.finished ? s.completed : undefined) ?? t;
      const secs = `${(Math.max(0, stopped - started) / 1000).toFixed(1)}s`;
      const head = fitWidth(` => ${label}`, Math.max(10, width - secs.length - 2));
      lines.push(`${head}${' '.repeat(Math.max(1, width - head.length - secs.length - 1))}${secs}`);
      if (st.finished) {
        if (s.error !== undefined) for (const l of st.logs) lines.push(` => => # ${l}`);
        continue;
      }
      if (s.status !== undefined || s.current !== undefined) lines.push(` => => ${stepStatusText(s, t)}`);
      for (const l of st.logs) lines.push(` => => # ${l}`);
    }
    return lines;
  };

  const draw = (final: boolean): void => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    lastDraw = now();
    const width = columns();
    let frame = '';
    if (printed > 0) frame += `\r${ansi.up(printed)}`;
    // Rows that will not change again are printed one last time and left behind.
    let i = frozen;
    const settled: string[] = [];
    while (i < rows.length) {
      const row = rows[i];
      if (!row) break;
      const s = states.get(row.id);
      if (row.layout === 'transfer' && !(final || (s && isFinalTransfer(s)))) break;
      settled.push(transferLine(row));
      if (row.layout === 'transfer') rowOf.delete(row.id);
      i++;
    }
    frozen = i;
    const live = rows.slice(frozen).map(transferLine);
    live.push(...stepLines(final));
    // A frame taller than the screen cannot be redrawn in place; show its tail until the end.
    const shown = final ? live : live.slice(Math.max(0, live.length - (height() - 1)));
    for (const line of [...settled, ...shown]) frame += `${ansi.eraseLine}${fitWidth(line, width - 1)}\n`;
    frame += ansi.eraseDown;
    printed = final ? 0 : shown.length;
    out.write(frame);
    if (!final && [...steps.values()].some((st) => !st.finished && st.state.started !== undefined))
      schedule();
  };

  const schedule = (): void => {
    if (timer || closed) return;
    timer = setTimeout(() => draw(false), Math.max(0, lastDraw + frameMs - now()));
    timer.unref();
  };

  return {
    write(e) {
      if (closed) return;
      const ts = e.timestamp ?? now();
      const prev = states.get(e.id);
      const layout = layoutOf(e, prev);
      if (layout === 'message') {
        rows.push({ layout, id: e.id, text: messageText(e) });
        schedule();
        return;
      }
      const state = mergeEvent(prev, e);
      states.set(e.id, state);
      if (layout === 'transfer') {
        if (!rowOf.has(e.id)) {
          // New, or changed after its line scrolled away: docker would print a new line too.
          const row: Row = { layout, id: e.id };
          rows.push(row);
          rowOf.set(e.id, row);
        }
      } else {
        let st = steps.get(e.id);
        if (!st) {
          st = { index: steps.size + 1, state, finished: false, logs: [] };
          steps.set(e.id, st);
        }
        if (st.finished) return;
        st.state = state;
        if (state.started !== undefined)
          firstStarted = Math.min(firstStarted ?? state.started, state.started);
        if (e.log) {
          st.logs.push(...takeLogLines(st, e.log, ts).map((l) => l.slice(l.indexOf(' ') + 1)));
          if (st.logs.length > logTail) st.logs.splice(0, st.logs.length - logTail);
        }
        if (isStepFinished(state)) {
          st.finished = true;
          firstStarted ??= state.completed ?? ts;
          lastFinished = Math.max(lastFinished ?? 0, state.completed ?? ts);
        }
      }
      schedule();
    },
    close() {
      if (closed) return;
      closed = true;
      draw(true);
    },
  };
}
