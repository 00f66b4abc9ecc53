/**
 * JSON decoding with the outcomes of Go's `encoding/json` into `any`, which BuildKit uses for
 * exec-form arguments and JSON directives. JS's `JSON.parse` accepts inputs Go rejects:
 * numbers beyond float64 (Go fails the whole decode) and nesting deeper than 10000. Strings
 * are returned as parsed: callers pass the ones they use through `goString`.
 */

/** Go's maximum nesting depth for JSON documents. */
const maxNestingDepth = 10000;

function tooDeep(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxNestingDepth) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

// Walks the document without recursion (it may be 10000 levels deep).
function hasOverflow(doc: unknown): boolean {
  const stack: unknown[] = [doc];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return true;
    } else if (v !== null && typeof v === 'object') {
      for (const x of Array.isArray(v) ? v : Object.values(v)) stack.push(x);
    }
  }
  return false;
}

/** Decodes `text` as Go's `json.Unmarshal` into `any` would; `undefined` when Go fails. */
export function parseGoJSON(text: string): unknown {
  if (tooDeep(text)) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  return hasOverflow(doc) ? undefined : doc;
}

/** A decoded JSON string as Go holds it: lone surrogate escapes become U+FFFD. */
export function goString(s: string): string {
  return s.toWellFormed();
}
