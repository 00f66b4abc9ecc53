/**
 * Splits Dockerfile input into lines the way BuildKit's line scanner (a Go bufio.Scanner)
 * does, including its size limit: a line longer than 64 KiB stops the scan, and the parser
 * reports it once it has used the lines before it.
 */

/** Go's bufio.MaxScanTokenSize: the scanner's buffer never grows past this. */
export const maxScanTokenSize = 64 * 1024;

/** The lines of the input, each with its `\n` (the last one may lack it). */
export interface ScannedLines {
  lines: string[];
  /** True when a line did not fit the scanner's buffer; `lines` ends before it. */
  tooLong: boolean;
}

// A line plus its newline must fit the 64 KiB buffer; a last line without a newline must
// leave room for one more byte, since the scanner only learns of EOF by reading again.
function fits(byteLength: number, hasNewline: boolean): boolean {
  return hasNewline ? byteLength <= maxScanTokenSize : byteLength < maxScanTokenSize;
}

const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * Splits `input` at `\n`, keeping line endings. Byte lengths are measured on the UTF-8
 * bytes (the raw bytes when a buffer is given); a buffer is decoded line by line, invalid
 * UTF-8 becoming U+FFFD.
 */
export function scanLines(input: string | Uint8Array): ScannedLines {
  const lines: string[] = [];
  if (typeof input === 'string') {
    let start = 0;
    while (start < input.length) {
      const nl = input.indexOf('\n', start);
      const end = nl < 0 ? input.length : nl + 1;
      const line = input.slice(start, end);
      // A UTF-16 unit is at most 3 UTF-8 bytes: only long lines need measuring.
      if (line.length * 3 >= maxScanTokenSize && !fits(Buffer.byteLength(line, 'utf8'), nl >= 0)) {
        return { lines, tooLong: true };
      }
      lines.push(line);
      start = end;
    }
    return { lines, tooLong: false };
  }
  let start = 0;
  while (start < input.length) {
    const nl = input.indexOf(0x0a, start);
    const end = nl < 0 ? input.length : nl + 1;
    if (!fits(end - start, nl >= 0)) return { lines, tooLong: true };
    lines.push(decoder.decode(input.subarray(start, end)));
    start = end;
  }
  return { lines, tooLong: false };
}

/** Pulls lines one at a time, like the Go scanner the parser's loops share. */
export class LineScanner {
  readonly #lines: string[];
  #next = 0;
  /** True when scanning stopped at a line over the size limit. */
  readonly tooLong: boolean;

  constructor(input: string | Uint8Array) {
    const s = scanLines(input);
    this.#lines = s.lines;
    this.tooLong = s.tooLong;
  }

  /** The next line with its newline, or `undefined` at the end. */
  scan(): string | undefined {
    if (this.#next >= this.#lines.length) return undefined;
    return this.#lines[this.#next++];
  }
}
