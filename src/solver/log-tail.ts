/** Keeps the last `n` lines of a step's output, for its error report. */
export class LogTail {
  readonly #n: number;
  #lines: string[] = [];
  #partial = '';

  constructor(n: number) {
    this.#n = n;
  }

  push(chunk: Buffer | string): void {
    const text = this.#partial + chunk.toString();
    const parts = text.split('\n');
    this.#partial = parts.pop() ?? '';
    if (this.#partial.length > 4096) this.#partial = this.#partial.slice(-4096);
    this.#lines.push(...parts.map((l) => (l.length > 4096 ? `${l.slice(0, 4096)}…` : l)));
    if (this.#lines.length > this.#n) this.#lines = this.#lines.slice(-this.#n);
  }

  /** The last lines, a partial last line included. */
  lines(): string[] {
    const all = this.#partial ? [...this.#lines, this.#partial] : [...this.#lines];
    return all.slice(-this.#n);
  }
}
