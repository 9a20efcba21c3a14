import { h } from './dom';

/**
 * JSON as a tree of nodes that keeps what JSON.parse would lose: numbers as their exact text (a
 * 64-bit order id stays exact) and every key, in order, even repeated. Intake stores payloads
 * byte-exact; the page shows them that way too.
 */
export type JsonNode =
  | { kind: 'object'; entries: [string, JsonNode][] }
  | { kind: 'array'; items: JsonNode[] }
  | { kind: 'string'; value: string }
  | { kind: 'number'; raw: string }
  | { kind: 'literal'; raw: 'true' | 'false' | 'null' };

// Sticky patterns match at `lastIndex` only, so a large document is never copied while parsing.
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const LITERAL = /true|false|null/y;

function matchAt(pattern: RegExp, text: string, at: number): string | null {
  pattern.lastIndex = at;
  return pattern.exec(text)?.[0] ?? null;
}

export function parseJson(text: string): JsonNode {
  let at = 0;
  const fail = (): never => {
    throw new SyntaxError(`Invalid JSON at ${at}`);
  };
  const space = () => {
    while (at < text.length && ' \t\n\r'.includes(text[at] as string)) at++;
  };
  const stringAt = (): string => {
    // Find the closing quote by hand (a regex could run out of stack on a long string); JSON.parse checks the rest.
    if (text[at] !== '"') return fail();
    let end = at + 1;
    while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
    const literal = text.slice(at, end + 1);
    at = end + 1;
    try {
      return JSON.parse(literal) as string;
    } catch {
      return fail();
    }
  };
  const value = (): JsonNode => {
    space();
    const c = text[at];
    if (c === '{') {
      at++;
      const entries: [string, JsonNode][] = [];
      space();
      if (text[at] === '}') return at++, { kind: 'object', entries };
      for (;;) {
        space();
        const key = stringAt();
        space();
        if (text[at++] !== ':') fail();
        entries.push([key, value()]);
        space();
        const next = text[at++];
        if (next === '}') return { kind: 'object', entries };
        if (next !== ',') fail();
      }
    }
    if (c === '[') {
      at++;
      const items: JsonNode[] = [];
      space();
      if (text[at] === ']') return at++, { kind: 'array', items };
      for (;;) {
        items.push(value());
        space();
        const next = text[at++];
        if (next === ']') return { kind: 'array', items };
        if (next !== ',') fail();
      }
    }
    if (c === '"') return { kind: 'string', value: stringAt() };
    const literal = matchAt(LITERAL, text, at);
    if (literal !== null) {
      at += literal.length;
      return { kind: 'literal', raw: literal as 'true' | 'false' | 'null' };
    }
    const number = matchAt(NUMBER, text, at);
    if (number === null) return fail();
    at += number.length;
    return { kind: 'number', raw: number };
  };
  const root = value();
  space();
  if (at !== text.length) fail();
  return root;
}

/** The member `key` of an object node (the last one, like JSON.parse, if it repeats). */
export function member(node: JsonNode | undefined, key: string): JsonNode | undefined {
  if (node?.kind !== 'object') return undefined;
  return node.entries.findLast(([k]) => k === key)?.[1];
}

export const isEmpty = (node: JsonNode | undefined): boolean =>
  node === undefined ||
  (node.kind === 'object' && node.entries.length === 0) ||
  (node.kind === 'array' && node.items.length === 0) ||
  (node.kind === 'literal' && node.raw === 'null');

/** Objects and arrays deeper than this start folded. */
const OPEN_DEPTH = 2;

function leaf(node: Exclude<JsonNode, { kind: 'object' | 'array' }>): HTMLElement {
  if (node.kind === 'string') return h('span', { class: 'json-string' }, JSON.stringify(node.value));
  if (node.kind === 'number') return h('span', { class: 'json-number' }, node.raw);
  return h('span', { class: `json-${node.raw === 'null' ? 'null' : 'boolean'}` }, node.raw);
}

function item(key: string | null, node: JsonNode, depth: number): HTMLElement {
  const label = key === null ? null : h('span', { class: 'json-key' }, key);
  if (node.kind !== 'object' && node.kind !== 'array') return h('li', null, label, label && ': ', leaf(node));
  const children = node.kind === 'object' ? node.entries : node.items.map((child, i) => [String(i), child] as const);
  const size = node.kind === 'object' ? `{${children.length} ${children.length === 1 ? 'key' : 'keys'}}` : `[${children.length}]`;
  if (children.length === 0) return h('li', null, label, label && ': ', h('span', { class: 'json-empty' }, node.kind === 'object' ? '{}' : '[]'));
  return h(
    'li',
    null,
    h(
      'details',
      { open: depth < OPEN_DEPTH },
      h('summary', null, label, label && ' ', h('span', { class: 'json-size' }, size)),
      h('ul', { role: 'group' }, children.map(([k, child]) => item(k, child, depth + 1))),
    ),
  );
}

/** A collapsible tree (native <details>, so Enter and Space fold it) with expand/collapse-all buttons. */
export function jsonTree(node: JsonNode, label: string): HTMLElement {
  const tree = h('ul', { class: 'json-tree', 'aria-label': label }, item(null, node, 0));
  const setAll = (open: boolean) => tree.querySelectorAll('details').forEach((d) => (d.open = open));
  const tools =
    node.kind === 'object' || node.kind === 'array'
      ? h(
          'div',
          { class: 'tree-tools' },
          h('button', { type: 'button', class: 'small', onclick: () => setAll(true), 'aria-label': `Expand all of ${label}` }, 'Expand all'),
          h('button', { type: 'button', class: 'small', onclick: () => setAll(false), 'aria-label': `Collapse all of ${label}` }, 'Collapse all'),
        )
      : null;
  return h('div', { class: 'json' }, tools, tree);
}
