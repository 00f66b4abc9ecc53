/** Output helpers for the CLI's tables and sizes, in docker's formats. */

/** docker's HumanSize: decimal units, 3 significant digits ("12.3MB", "1kB"). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let n = bytes;
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${Number(n.toPrecision(3))}${units[i]}`;
}

/** docker's "x ago" for CREATED columns. */
export function ago(iso: string | undefined, now = Date.now()): string {
  if (!iso) return 'N/A';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'N/A';
  const s = Math.max(0, Math.round((now - t) / 1000));
  const unit = (n: number, u: string) => `${n} ${u}${n === 1 ? '' : 's'} ago`;
  if (s < 1) return 'Less than a second ago';
  if (s < 60) return unit(s, 'second');
  const m = Math.round(s / 60);
  if (m < 60) return m === 1 ? 'About a minute ago' : unit(m, 'minute');
  const h = Math.round(s / 3600);
  if (h < 48) return h === 1 ? 'About an hour ago' : unit(h, 'hour');
  const d = Math.round(s / 86400);
  if (d < 14) return unit(d, 'day');
  if (d < 60) return unit(Math.round(d / 7), 'week');
  if (d < 730) return unit(Math.round(d / 30), 'month');
  return unit(Math.round(d / 365), 'year');
}

/** Left-aligned columns separated by three spaces, as docker's tabwriter output. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3)))
      .join('')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
