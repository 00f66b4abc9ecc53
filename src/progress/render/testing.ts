/** Test helpers for renderers (not exported from the module's index). */

/** A fake stream that keeps what is written. */
export function sink(): { out: NodeJS.WritableStream; text: () => string; chunks: string[] } {
  const chunks: string[] = [];
  const out = {
    write(s: string | Uint8Array) {
      chunks.push(typeof s === 'string' ? s : Buffer.from(s).toString());
      return true;
    },
  } as unknown as NodeJS.WritableStream;
  return { out, chunks, text: () => chunks.join('') };
}

/**
 * What a terminal would show after `text`: plays `\r`, `\n`, cursor up (`ESC[nA`), erase
 * line (`ESC[2K`) and erase down (`ESC[J`); anything else is printed as is.
 */
export function screen(text: string): string[] {
  const lines: string[] = [''];
  let row = 0;
  let col = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\x1b') {
      const m = /^\x1b\[(\d*)([A-Za-z])/.exec(text.slice(i));
      if (!m) throw new Error(`unknown escape at ${i}`);
      const n = Number(m[1] || '1');
      if (m[2] === 'A') row = Math.max(0, row - n);
      else if (m[2] === 'K') lines[row] = '';
      else if (m[2] === 'J') lines.splice(row + 1);
      else throw new Error(`unexpected escape ${m[0]}`);
      if (m[2] === 'J') lines[row] = (lines[row] ?? '').slice(0, col);
      i += m[0].length - 1;
    } else if (ch === '\r') col = 0;
    else if (ch === '\n') {
      row++;
      col = 0;
      if (lines.length <= row) lines.push('');
    } else {
      const l = (lines[row] ?? '').padEnd(col);
      lines[row] = l.slice(0, col) + ch + l.slice(col + 1);
      col++;
    }
  }
  if (lines.at(-1) === '') lines.pop();
  return lines;
}
