import { ApiError, getDocument, query } from '../api';
import { h, href, timeElement } from '../dom';
import { isEmpty, jsonTree, member, type JsonNode } from '../json-tree';
import type { EventDoc } from '../types';
import type { View } from '../view';
import { documentTree, fact, idLink, notFound } from './detail-parts';

function headersTable(headers: Record<string, string>): HTMLElement {
  const names = Object.keys(headers);
  if (names.length === 0) return h('p', { class: 'empty' }, 'No headers were stored.');
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'headers' },
      h('caption', { class: 'visually-hidden' }, 'Request headers'),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Header'), h('th', { scope: 'col' }, 'Value'))),
      h('tbody', null, names.map((name) => h('tr', null, h('th', { scope: 'row' }, name), h('td', null, headers[name] ?? '')))),
    ),
  );
}

/** One event: its facts, properties as a collapsible tree, its request and headers, links onwards. */
export async function eventView(id: string, signal: AbortSignal): Promise<View> {
  let loaded: { doc: EventDoc; text: string };
  try {
    loaded = await getDocument<EventDoc>(`/api/events/${encodeURIComponent(id)}`, signal);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return notFound('Event', id, h('a', { href: href('live') }, 'Back to Live'));
    throw error;
  }
  const { doc: event, text } = loaded;
  const tree = documentTree(text);
  const request = event.request;

  const extra = (['context', 'traits', 'data'] as const)
    .map((key) => [key, member(tree ?? undefined, key)] as const)
    .filter(([, node]) => !isEmpty(node));

  return {
    title: `${event.type} event`,
    body: h(
      'article',
      { class: 'detail' },
      h('p', { class: 'crumbs' }, h('a', { href: href('live') }, '← Live')),
      h('h1', { tabindex: '-1' }, event.name, ' ', h('span', { class: 'subtle' }, `(${event.type})`)),
      h(
        'dl',
        { class: 'facts' },
        fact('Event ID', h('code', null, event.id)),
        fact('Time', timeElement(event.metadata.time.insert)),
        fact('Source', h('a', { href: `${href('live')}${query({ source: event.source.id })}` }, event.source.id)),
        fact('Session', idLink('sessions', event.session)),
        fact('Profile', idLink('profiles', event.profile)),
        fact('Channel', event.metadata.channel === '' ? null : event.metadata.channel),
        fact('Status', event.metadata.status),
      ),
      h('section', { 'aria-labelledby': 'properties-heading' },
        h('h2', { id: 'properties-heading' }, 'Properties'),
        tree === null ? h('pre', { class: 'raw' }, text) : jsonTree(member(tree, 'properties') ?? { kind: 'object', entries: [] }, 'Properties'),
      ),
      h('section', { 'aria-labelledby': 'request-heading' },
        h('h2', { id: 'request-heading' }, 'Request'),
        request === null
          ? h('p', { class: 'empty' }, 'This event was not made from a request (a system event).')
          : [
              h(
                'dl',
                { class: 'facts' },
                fact('Method', request.method),
                fact('Path', h('code', null, request.path)),
                fact('Query', request.query === '' ? null : h('code', null, request.query)),
                fact('Client IP', request.ip),
              ),
              h('h3', null, 'Headers'),
              headersTable(request.headers),
            ],
      ),
      extra.map(([key, node]) =>
        h('section', null, h('h2', null, key[0]?.toUpperCase() + key.slice(1)), jsonTree(node as JsonNode, key)),
      ),
      h('details', { class: 'raw-doc' }, h('summary', null, 'The event as stored (JSON)'), h('pre', { class: 'raw' }, text)),
    ),
  };
}
