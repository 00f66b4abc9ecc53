import type { ProgressEvent } from '../types.ts';
import { bkBytes, logSeconds } from './format.ts';

/**
 * What the renderers share: which layout an event belongs to, the text of a transfer line,
 * and the per-step bookkeeping of BuildKit's displays (numbers, log lines). Pure.
 */

/** The two layouts: docker's per-layer transfer lines, and BuildKit's numbered steps. */
export type Layout = 'message' | 'transfer' | 'step';

const digestLike = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-fA-F0-9]{32,}$/;

/**
 * The layout of an event: by `kind` when set (or set on an earlier event of the same id);
 * otherwise a `message` is a message, a digest id a transfer, anything else a step.
 */
export function layoutOf(e: ProgressEvent, prev?: ProgressEvent): Layout {
  const kind = e.kind ?? prev?.kind;
  switch (kind) {
    case 'message':
      return 'message';
    case 'blob':
      return 'transfer';
    case 'step':
    case 'vertex':
      return 'step';
    case undefined:
      if (e.message !== undefined) return 'message';
      return digestLike.test(e.id) ? 'transfer' : 'step';
  }
}

/** The line of a `message` event. */
export function messageText(e: ProgressEvent): string {
  return e.message ?? e.status ?? e.name ?? e.id;
}

/** The status word(s) of a transfer, from its merged state, when the writer gave none. */
export function transferStatus(s: ProgressEvent): string {
  if (s.error !== undefined) return s.status ? `${s.status}: ${s.error}` : `error: ${s.error}`;
  if (s.status !== undefined) return s.status;
  if (s.cached) return 'Already exists';
  if (s.completed !== undefined) return 'Complete';
  if (s.current !== undefined) return 'Downloading';
  return 'Waiting';
}

/** Statuses after which docker never changes a layer's line again. */
const finalStatuses = new Set([
  'Pull complete',
  'Already exists',
  'Pushed',
  'Layer already exists',
  'Copied',
]);

/** True when a transfer's line will not change again (so a tty may stop redrawing it). */
export function isFinalTransfer(s: ProgressEvent): boolean {
  return (
    s.error !== undefined ||
    s.completed !== undefined ||
    (s.status !== undefined && (finalStatuses.has(s.status) || s.status.startsWith('Mounted from ')))
  );
}

/** One step (vertex) as BuildKit's displays track it. */
export interface StepState {
  /** 1-based, in order of first appearance. */
  index: number;
  state: ProgressEvent;
  /** An unfinished log line, with the time of its first chunk. */
  partial?: { data: string; ts: number; stream: 1 | 2 };
  /** Completed, cached or failed; later events are ignored. */
  finished: boolean;
}

/** True once a step has something to show: it started, finished, or wrote logs or status. */
export function isVisibleStep(s: ProgressEvent): boolean {
  return (
    s.started !== undefined ||
    s.completed !== undefined ||
    s.cached === true ||
    s.error !== undefined ||
    s.status !== undefined ||
    s.current !== undefined
  );
}

/** True once a step is over (a cached step may come without `completed`). */
export function isStepFinished(s: ProgressEvent): boolean {
  return s.completed !== undefined || s.cached === true || s.error !== undefined;
}

/**
 * Adds a log chunk to a step and returns the complete lines, as BuildKit prints them:
 * `<seconds since the step started> <line>`; the tail without a newline waits in `partial`.
 */
export function takeLogLines(st: StepState, log: { stream: 1 | 2; data: string }, ts: number): string[] {
  const out: string[] = [];
  let data = log.data;
  let firstTs = ts;
  if (st.partial) {
    if (st.partial.stream === log.stream) {
      data = st.partial.data + data;
      firstTs = st.partial.ts;
    } else {
      out.push(logLine(st, st.partial.data, st.partial.ts));
    }
    delete st.partial;
  }
  const parts = data.split('\n');
  const tail = parts.pop() ?? '';
  for (const line of parts) {
    out.push(logLine(st, line.endsWith('\r') ? line.slice(0, -1) : line, firstTs));
    firstTs = ts;
  }
  if (tail !== '') st.partial = { data: tail, ts: firstTs, stream: log.stream };
  return out;
}

/** The unfinished log line of a step, if any, as a line (and forgets it). */
export function takePartial(st: StepState): string[] {
  if (!st.partial) return [];
  const line = logLine(st, st.partial.data, st.partial.ts);
  delete st.partial;
  return [line];
}

function logLine(st: StepState, line: string, ts: number): string {
  const started = st.state.started ?? ts;
  return `${logSeconds(ts - started)} ${line}`;
}

/** BuildKit's sub-status text of a step: `extracting sha256:… 1.05MB / 2.81MB 0.3s done`. */
export function stepStatusText(s: ProgressEvent, now: number): string {
  let bytes = '';
  if (s.total !== undefined && s.total !== 0) bytes = ` ${bkBytes(s.current ?? 0)} / ${bkBytes(s.total)}`;
  else if (s.current !== undefined && s.current !== 0) bytes = ` ${bkBytes(s.current)}`;
  let tm = '';
  if (s.started !== undefined) {
    const diff = ((s.completed ?? s.timestamp ?? now) - s.started) / 1000;
    if (diff > 0.01) tm = ` ${diff.toFixed(1)}s`;
  }
  if (s.completed !== undefined) tm += ' done';
  return `${s.status ?? 'progress'}${bytes}${tm}`;
}
