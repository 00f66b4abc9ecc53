import type { ProgressEvent, ProgressWriter } from '../types.ts';
import { mergeEvent } from '../writer.ts';
import { shortId } from './format.ts';
import {
  isStepFinished,
  isVisibleStep,
  layoutOf,
  messageText,
  type StepState,
  stepStatusText,
  takeLogLines,
  takePartial,
  transferStatus,
} from './layout.ts';

/** Options shared by the renderers. */
export interface RenderOptions {
  /** Terminal width; the tty renderer cuts lines to it and docker's bar needs more than 110. */
  columns?: number;
  /** Terminal height (tty only): live lines beyond it are not drawn until the end. */
  rows?: number;
  /** Clock (epoch ms), for tests. */
  now?: () => number;
}

const minStatusDeltaMs = 5000;
const minStatusDelta = 0.05;

/**
 * The renderer for logs and pipes (`--progress=plain`), writing whole lines as events arrive:
 * - transfers as docker prints them without a terminal: one line per status change per id
 *   (`a3ed95caeb02: Pull complete`), never byte counts or bars;
 * - `message` events as they are;
 * - steps as BuildKit's plain printer: `#5 [2/4] RUN make`, `#5 0.312 <log line>`,
 *   `#5 DONE 0.3s` / `#5 CACHED` / `#5 ERROR: <msg>`, numbered in order of first appearance,
 *   a blank line between blocks and `#5 ...` when another step interrupts an unfinished one.
 * Does no I/O except `out.write`; `close` prints unfinished log lines and never ends `out`.
 */
export function createPlainRenderer(out: NodeJS.WritableStream, o: RenderOptions = {}): ProgressWriter {
  const now = o.now ?? Date.now;
  const states = new Map<string, ProgressEvent>();
  const lastTransfer = new Map<string, string>();
  const steps = new Map<string, StepState>();
  const lastStatus = new Map<string, { current: number; ts: number; text: string }>();
  let current: StepState | undefined;
  let notFirst = false;
  let closed = false;

  const print = (lines: string[]): void => {
    if (lines.length > 0) out.write(`${lines.join('\n')}\n`);
  };

  const enter = (st: StepState, lines: string[]): void => {
    if (current === st) return;
    if (current && !current.finished) {
      lines.push(...takePartial(current).map((l) => `#${current?.index} ${l}`));
      lines.push(`#${current.index} ...`);
    }
    if (notFirst) lines.push('');
    notFirst = true;
    lines.push(`#${st.index} ${st.state.name ?? st.state.id}`);
    current = st;
  };

  const onStep = (e: ProgressEvent, state: ProgressEvent, ts: number): void => {
    let st = steps.get(e.id);
    if (!st) {
      st = { index: steps.size + 1, state, finished: false };
      steps.set(e.id, st);
    }
    if (st.finished) return;
    st.state = state;
    if (!isVisibleStep(state) && !e.log) return;
    const lines: string[] = [];
    enter(st, lines);
    if (e.status !== undefined || e.current !== undefined || e.total !== undefined) {
      const text = stepStatusText(state, ts);
      const last = lastStatus.get(e.id);
      const delta = state.total ? ((state.current ?? 0) - (last?.current ?? 0)) / state.total : 0;
      // BuildKit prints a status again only after 5 % more progress or 5 s.
      const show =
        !last ||
        state.completed !== undefined ||
        (state.status ?? '') !== last.text ||
        delta >= minStatusDelta ||
        ts - last.ts >= minStatusDeltaMs;
      if (show) {
        lastStatus.set(e.id, { current: state.current ?? 0, ts, text: state.status ?? '' });
        lines.push(`#${st.index} ${text}`);
      }
    }
    if (e.log) lines.push(...takeLogLines(st, e.log, ts).map((l) => `#${st.index} ${l}`));
    if (isStepFinished(state)) {
      lines.push(...takePartial(st).map((l) => `#${st.index} ${l}`));
      st.finished = true;
      current = undefined;
      if (state.error !== undefined) lines.push(`#${st.index} ERROR: ${state.error}`);
      else if (state.cached) lines.push(`#${st.index} CACHED`);
      else if (state.started !== undefined && state.completed !== undefined)
        lines.push(`#${st.index} DONE ${((state.completed - state.started) / 1000).toFixed(1)}s`);
      else lines.push(`#${st.index} DONE`);
    }
    print(lines);
  };

  return {
    write(e) {
      if (closed) return;
      const ts = e.timestamp ?? now();
      const prev = states.get(e.id);
      const layout = layoutOf(e, prev);
      const state = mergeEvent(prev, e);
      states.set(e.id, state);
      switch (layout) {
        case 'message':
          print([messageText(e)]);
          return;
        case 'transfer': {
          const text = transferStatus(state);
          if (lastTransfer.get(e.id) === text) return;
          lastTransfer.set(e.id, text);
          print([`${shortId(e.id)}: ${text}`]);
          return;
        }
        case 'step':
          onStep(e, state, ts);
          return;
      }
    },
    close() {
      if (closed) return;
      closed = true;
      const lines: string[] = [];
      for (const st of steps.values()) {
        if (!st.finished && st.partial) lines.push(...takePartial(st).map((l) => `#${st.index} ${l}`));
      }
      print(lines);
    },
  };
}
