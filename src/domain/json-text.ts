/**
 * JSON kept as the text the sender wrote. Intake never rewrites a payload (collector.md §2, fix:
 * Tracardi deletes empty nested objects), and re-serialising a parsed value would also round
 * numbers beyond double precision (`12345678901234567890`) and drop duplicate keys. So properties
 * travel and are stored as JSON text; only insignificant whitespace is removed.
 */
export type JsonText = string & { readonly __jsonText: unique symbol };

/** Marks text that is already known to be valid JSON. */
export function asJsonText(text: string): JsonText {
  return text as JsonText;
}

/** Serialises a value we built ourselves (forms, query strings, documents). */
export function toJsonText(value: unknown): JsonText {
  return JSON.stringify(value) as JsonText;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Removes whitespace outside strings from valid JSON text; everything else stays byte for byte. */
export function compactJson(text: string): JsonText {
  let out = '';
  let runStart = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = closingQuote(text, i);
      if (i === -1) break;
    } else if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      out += text.slice(runStart, i);
      runStart = i + 1;
    }
  }
  return (out + text.slice(runStart)) as JsonText;
}

/** Splits compact, valid JSON array text into the text of each element. */
export function splitJsonArray(compactArray: string): JsonText[] {
  const elements: JsonText[] = [];
  let depth = 0;
  let start = 1;
  for (let i = 1; i < compactArray.length - 1; i++) {
    const c = compactArray.charCodeAt(i);
    if (c === QUOTE) {
      i = closingQuote(compactArray, i);
      if (i === -1) break;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x2c && depth === 0) {
      elements.push(compactArray.slice(start, i) as JsonText);
      start = i + 1;
    }
  }
  if (compactArray.length > 2) elements.push(compactArray.slice(start, compactArray.length - 1) as JsonText);
  return elements;
}

/**
 * Nesting depth and number of object keys of JSON text, counted without parsing it, and whether
 * it has whitespace outside strings (only then does it need `compactJson`). Runs on every JSON
 * body before `JSON.parse`: it jumps over each string with `indexOf` rather than going through it a
 * character at a time, since most of a payload is strings (half the time, docs/performance.md,
 * finding 25).
 */
export function jsonShape(text: string): { depth: number; keys: number; spaced: boolean } {
  let depth = 0;
  let maxDepth = 0;
  let keys = 0;
  let spaced = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = closingQuote(text, i);
      if (i === -1) break; // unterminated: JSON.parse refuses it
    } else if (c === 0x7b || c === 0x5b) maxDepth = Math.max(maxDepth, ++depth);
    else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x3a) keys++;
    else if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) spaced = true;
  }
  return { depth: maxDepth, keys, spaced };
}

/** The index of the quote that ends the string opened at `open`, or -1 if none does. */
function closingQuote(text: string, open: number): number {
  let at = text.indexOf('"', open + 1);
  while (at !== -1) {
    // Escaped when an odd number of backslashes stands right before it.
    let before = at - 1;
    while (text.charCodeAt(before) === BACKSLASH) before--;
    if ((at - 1 - before) % 2 === 0) return at;
    at = text.indexOf('"', at + 1);
  }
  return -1;
}
