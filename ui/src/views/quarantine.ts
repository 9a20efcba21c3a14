import { ApiError, getJson, query, request, type Page } from '../api';
import { h, href, notice, timeElement } from '../dom';
import { flash } from '../flash';
import { jsonTree } from '../json-tree';
import type { Source } from '../types';
import type { View } from '../view';
import { documentTree, fact, notFound } from './detail-parts';

interface QuarantineSummary {
  id: string;
  source: string;
  received_at: string;
  reason: string;
  detail: string;
  method: string;
  path: string;
  query: string;
  truncated: boolean;
  size: number;
}

interface QuarantineEntry extends QuarantineSummary {
  headers: [string, string][];
  body: string;
  body_text: string | null;
}

const PAGE = 50;

const size = (bytes: number) => (bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`);
const requestLine = (e: QuarantineSummary) => `${e.method} ${e.path}${e.query === '' ? '' : `?${e.query}`}`;

/** Requests Intake refused for a reason an operator can fix (a secret, the config, the format), newest first. */
export async function quarantineView(params: URLSearchParams, signal: AbortSignal): Promise<View> {
  const filter = { source: params.get('source') ?? '', reason: params.get('reason') ?? '' };
  const sources = (await getJson<Page<Source>>('/api/sources?limit=1000', signal)).items;

  const sourceSelect = h(
    'select',
    { id: 'quarantine-source', name: 'source' },
    h('option', { value: '' }, 'All sources'),
    sources.map((s) => h('option', { value: s.id, selected: s.id === filter.source }, `${s.name} (${s.id})`)),
  );
  const reasonInput = h('input', { id: 'quarantine-reason', name: 'reason', type: 'text', value: filter.reason, placeholder: 'e.g. SIGNATURE_FAILED', spellcheck: 'false' });
  const apply = () => {
    location.hash = `${href('quarantine')}${query({ source: sourceSelect.value, reason: reasonInput.value.trim() })}`;
  };
  sourceSelect.addEventListener('change', apply);

  const tbody = h('tbody');
  const status = h('p', { class: 'loading', role: 'status' }, 'Loading…');
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load older requests');
  const table = h(
    'table',
    { class: 'events quarantine', hidden: true },
    h('caption', { class: 'visually-hidden' }, 'Refused requests, newest first'),
    h('thead', null, h('tr', null, ['Received', 'Reason', 'Source', 'Request', 'Size'].map((c) => h('th', { scope: 'col' }, c)))),
    tbody,
  );
  let cursor: string | null = null;
  const load = async () => {
    more.disabled = true;
    try {
      const page: Page<QuarantineSummary> = await getJson(`/api/quarantine${query({ ...filter, limit: PAGE, cursor })}`, signal);
      for (const entry of page.items) {
        const link = href('quarantine', entry.id);
        tbody.append(
          h(
            'tr',
            { 'data-id': entry.id, onclick: (e: MouseEvent) => !(e.target instanceof HTMLAnchorElement) && (location.hash = link) },
            h('td', { 'data-label': 'Received' }, timeElement(entry.received_at)),
            h('td', { 'data-label': 'Reason' }, h('a', { href: link, class: 'event-type' }, entry.reason), h('div', { class: 'help' }, entry.detail)),
            h('td', { 'data-label': 'Source' }, entry.source),
            h('td', { 'data-label': 'Request' }, h('code', null, requestLine(entry))),
            h('td', { 'data-label': 'Size' }, size(entry.size)),
          ),
        );
      }
      cursor = page.next;
      more.hidden = cursor === null;
      table.hidden = tbody.rows.length === 0;
      status.textContent = tbody.rows.length === 0 ? 'Nothing is quarantined.' : '';
    } catch (error) {
      if (!signal.aborted) status.textContent = `Could not load the quarantine: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', () => void load());
  void load();

  return {
    title: 'Quarantine',
    body: h(
      'section',
      null,
      h('h1', { tabindex: '-1' }, 'Quarantine'),
      h(
        'p',
        { class: 'lead' },
        'Requests refused for a reason you can fix (a failed signature, a body in the wrong format) are kept here with ' +
          'their body. Fix the cause, then replay them; an unknown or disabled source is not kept.',
      ),
      h(
        'form',
        { class: 'filters', role: 'search', 'aria-label': 'Filter refused requests', onsubmit: (e: SubmitEvent) => (e.preventDefault(), apply()) },
        h('div', { class: 'field' }, h('label', { for: 'quarantine-source' }, 'Source'), sourceSelect),
        h('div', { class: 'field' }, h('label', { for: 'quarantine-reason' }, 'Reason'), reasonInput),
        h('button', { type: 'submit' }, 'Apply'),
      ),
      status,
      h('div', { class: 'table-wrap' }, table),
      more,
    ),
  };
}

function bodyView(entry: QuarantineEntry): HTMLElement {
  const note = entry.truncated ? h('p', { class: 'notice info' }, `Only the start of the body was kept (it was larger than the source’s limit).`) : null;
  if (entry.body_text === null)
    return h('div', null, note, h('p', null, `Binary, ${size(entry.size)}. Base64:`), h('pre', { class: 'raw' }, entry.body));
  if (entry.body_text === '') return h('p', { class: 'empty' }, 'No body.');
  const tree = documentTree(entry.body_text);
  return h('div', null, note, tree === null ? h('pre', { class: 'raw' }, entry.body_text) : jsonTree(tree, 'Body'));
}

/** One refused request: why, its body and headers, and the buttons to replay or drop it. */
export async function quarantineEntryView(id: string, signal: AbortSignal): Promise<View> {
  let entry: QuarantineEntry;
  try {
    entry = await getJson<QuarantineEntry>(`/api/quarantine/${encodeURIComponent(id)}`, signal);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404)
      return notFound('Quarantined request', id, h('a', { href: href('quarantine') }, 'Back to Quarantine'));
    throw error;
  }
  const message = h('div', { class: 'message' });
  const show = (node: HTMLElement) => {
    node.setAttribute('tabindex', '-1');
    message.replaceChildren(node);
    node.focus();
  };
  const failed = (error: unknown) => {
    if (error instanceof ApiError && error.signedOut) return;
    show(notice('error', `Refused again: ${error instanceof Error ? error.message : String(error)}. It stays in the quarantine.`));
  };

  const replay = async () => {
    try {
      const result = JSON.parse((await request(`/api/quarantine/${encodeURIComponent(entry.id)}/replay`, { method: 'POST' })).text) as { events: string[] };
      flash(`Replayed: ${result.events.length} ${result.events.length === 1 ? 'event' : 'events'} stored; the request left the quarantine.`);
      location.hash = result.events.length > 0 ? href('events', result.events[0] as string) : href('quarantine');
    } catch (error) {
      failed(error);
    }
  };
  const drop = async () => {
    if (!window.confirm('Drop this request for good? It is not stored.')) return;
    try {
      await request(`/api/quarantine/${encodeURIComponent(entry.id)}`, { method: 'DELETE' });
      flash('The request was dropped.');
      location.hash = href('quarantine');
    } catch (error) {
      failed(error);
    }
  };

  return {
    title: `Quarantined ${entry.reason}`,
    body: h(
      'article',
      { class: 'detail' },
      h('p', { class: 'crumbs' }, h('a', { href: href('quarantine') }, '← Quarantine')),
      h('h1', { tabindex: '-1' }, 'Refused: ', h('span', { class: 'subtle' }, entry.reason)),
      message,
      h('p', { class: 'notice error' }, entry.detail),
      h(
        'div',
        { class: 'form-actions' },
        h('button', { type: 'button', onclick: () => void replay() }, 'Replay'),
        h('button', { type: 'button', class: 'danger', onclick: () => void drop() }, 'Drop'),
      ),
      h('p', { class: 'help' }, 'Replay runs the same bytes and headers through the collector again, with the source’s current settings.'),
      h(
        'dl',
        { class: 'facts' },
        fact('Received', timeElement(entry.received_at)),
        fact('Source', entry.source),
        fact('Request', h('code', null, requestLine(entry))),
        fact('Size', size(entry.size)),
      ),
      h('section', null, h('h2', null, 'Body'), bodyView(entry)),
      h(
        'section',
        null,
        h('h2', null, 'Headers'),
        h('p', { class: 'help' }, 'Secret headers (authorization, cookies, API keys, a token scheme’s header) were not kept.'),
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { class: 'headers' },
            h('caption', { class: 'visually-hidden' }, 'Request headers'),
            h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Header'), h('th', { scope: 'col' }, 'Value'))),
            h('tbody', null, entry.headers.map(([name, value]) => h('tr', null, h('th', { scope: 'row' }, name), h('td', null, value)))),
          ),
        ),
      ),
    ),
  };
}
