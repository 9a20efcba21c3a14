import { h, href } from '../dom';
import { parseJson, type JsonNode } from '../json-tree';
import type { View } from '../view';

/** The pieces the detail views (event, profile, session, quarantined request) share. */

export const fact = (label: string, value: Node | string | null) =>
  h('div', null, h('dt', null, label), h('dd', null, value ?? h('span', { class: 'none' }, '—')));

export const idLink = (kind: 'sessions' | 'profiles', ref: { id: string } | null) =>
  ref === null ? null : h('a', { href: href(kind, ref.id), class: 'id' }, ref.id);

/** Parses a stored document for the trees; one too deeply nested for the page is shown as text. */
export function documentTree(text: string): JsonNode | null {
  try {
    return parseJson(text);
  } catch {
    return null;
  }
}

export const notFound = (what: string, id: string, back: Node): View => ({
  title: `${what} not found`,
  body: h('section', null, h('h1', { tabindex: '-1' }, `${what} not found`), h('p', null, `No ${what.toLowerCase()} has the id `, h('code', null, id), '.'), h('p', null, back)),
});

