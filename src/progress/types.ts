/**
 * The progress event model every long step reports through. Events are keyed by `id`
 * (a blob digest, a vertex digest, or a step name); a renderer merges updates per id, so a
 * writer may send as many as it likes. The library never writes to a terminal itself.
 */

/** What an `id` stands for; renderers lay each kind out differently. */
export type ProgressKind = 'blob' | 'vertex' | 'step' | 'message';

export interface ProgressEvent {
  /** Stable key: a blob digest, a vertex digest, or a one-off step's name. */
  id: string;
  kind?: ProgressKind;
  /** Group this id belongs to (e.g. the reference being pulled). */
  group?: string;
  /** Human name ("sha256:ab12… layer", "[2/4] RUN make"). */
  name?: string;
  /** Docker-style status word(s): "Waiting", "Downloading", "Verifying Checksum", "Pull complete", "Already exists", "Pushed", "Mounted from x". */
  status?: string;
  /** Epoch milliseconds. */
  started?: number;
  completed?: number;
  cached?: boolean;
  /** Bytes (or items) done and expected. */
  current?: number;
  total?: number;
  /** Error text; set together with `completed`. */
  error?: string;
  /** A log chunk of a running step; stream 1 = stdout, 2 = stderr. */
  log?: { stream: 1 | 2; data: string };
  /** A line for the user that is not tied to a step ("Digest: sha256:…", "Status: …"). */
  message?: string;
  /** Epoch milliseconds the event was made; set by writers that do not set it. */
  timestamp?: number;
}

/** Where events go. `write` after `close` is a bug and is ignored. */
export interface ProgressWriter {
  write(e: ProgressEvent): void;
  close(): void;
}

/** Cancellation and progress, accepted by every async public function. */
export interface RunOptions {
  signal?: AbortSignal;
  progress?: ProgressWriter;
}
