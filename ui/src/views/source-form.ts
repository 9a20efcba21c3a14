import { ApiError, getJson, request } from '../api';
import { h, href, notice } from '../dom';
import { flash } from '../flash';
import { SOURCE_TYPES, type Source } from '../types';
import type { View } from '../view';
import { webhookOptions } from './webhook-options';

const TYPE_HELP: Record<(typeof SOURCE_TYPES)[number], string> = {
  webhook: 'accepts the collector URLs',
  rest: 'for REST API senders (kept for Tracardi compatibility)',
  redirect: 'for redirect links (kept for Tracardi compatibility)',
};

/** A labelled field with optional help text tied to it by aria-describedby. */
function field(id: string, label: string, control: HTMLElement, help?: string): HTMLElement {
  if (help !== undefined) control.setAttribute('aria-describedby', `${id}-help`);
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    control,
    help !== undefined ? h('p', { id: `${id}-help`, class: 'help' }, help) : null,
  );
}

function checkbox(id: string, label: string, checked: boolean, help: string): HTMLElement {
  return h(
    'div',
    { class: 'field check' },
    h('input', { id, name: id, type: 'checkbox', checked, 'aria-describedby': `${id}-help` }),
    h('label', { for: id }, label),
    h('p', { id: `${id}-help`, class: 'help' }, help),
  );
}

/** Creating (`id` null) or editing a source. */
export async function sourceFormView(id: string | null, signal: AbortSignal): Promise<View> {
  let source: Source | null = null;
  if (id !== null) {
    try {
      source = await getJson<Source>(`/api/sources/${encodeURIComponent(id)}`, signal);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404)
        return {
          title: 'Source not found',
          body: h('section', null, h('h1', { tabindex: '-1' }, 'Source not found'), h('p', null, 'No source has the id ', h('code', null, id), '. ', h('a', { href: href('sources') }, 'Back to sources'))),
        };
      throw error;
    }
  }

  const message = h('div', { class: 'message' });
  const options = webhookOptions(source?.config ?? {});
  const input = (name: string, value: string, attrs: Record<string, string | boolean> = {}) =>
    h('input', { id: name, name, type: 'text', value, ...attrs });
  const form: HTMLFormElement = h(
    'form',
    {
      class: 'card source-form',
      novalidate: true,
      onsubmit: (event: SubmitEvent) => {
        event.preventDefault();
        void save();
      },
    },
    message,
    field('name', 'Name', input('name', source?.name ?? '', { required: true, maxlength: '256' })),
    source === null
      ? field(
          'id',
          'ID (optional)',
          input('id', '', { pattern: '[A-Za-z0-9._:\\-]{1,128}', maxlength: '128', autocapitalize: 'none', spellcheck: 'false' }),
          'Part of the webhook URLs: letters, digits and . _ : - (lower-cased). Leave it empty for a random id.',
        )
      : h('div', { class: 'field' }, h('span', { class: 'label' }, 'ID'), h('p', null, h('code', null, source.id), h('span', { class: 'help' }, ' (an id cannot change: it is in the senders’ URLs)'))),
    field('channel', 'Channel', input('channel', source?.channel ?? '', { maxlength: '256' }), 'Stored on every event of this source, e.g. “web” or “payments”.'),
    field('description', 'Description', h('textarea', { id: 'description', name: 'description', rows: 3, maxlength: '4096' }, source?.description ?? '')),
    h(
      'fieldset',
      { class: 'types' },
      h('legend', null, 'Types'),
      SOURCE_TYPES.map((type) =>
        h(
          'div',
          { class: 'field check' },
          h('input', { id: `type-${type}`, name: 'type', value: type, type: 'checkbox', checked: source === null ? type === 'webhook' : source.type.includes(type) }),
          h('label', { for: `type-${type}` }, type, h('span', { class: 'help' }, ` — ${TYPE_HELP[type]}`)),
        ),
      ),
    ),
    checkbox('enabled', 'Enabled', source?.enabled ?? true, 'A disabled source’s requests are refused with 401.'),
    checkbox('transitional', 'Transitional', source?.transitional ?? false, 'Requests are answered but nothing is stored (for testing a sender).'),
    h('h2', null, 'Webhook options'),
    options.element,
    h(
      'div',
      { class: 'form-actions' },
      h('button', { type: 'submit' }, source === null ? 'Create source' : 'Save changes'),
      h('a', { class: 'button secondary', href: href('sources') }, 'Cancel'),
      source !== null
        ? h('button', { type: 'button', class: 'danger', onclick: () => void remove() }, 'Delete source')
        : null,
    ),
  );

  const fail = (text: string) => {
    message.replaceChildren(notice('error', text));
    message.querySelector<HTMLElement>('.notice')?.setAttribute('tabindex', '-1');
    message.querySelector<HTMLElement>('.notice')?.focus();
  };

  async function save(): Promise<void> {
    const data = new FormData(form);
    const text = (name: string) => String(data.get(name) ?? '').trim();
    const types = data.getAll('type').map(String);
    if (text('name') === '') return fail('Give the source a name.');
    if (types.length === 0) return fail('Choose at least one type.');
    const read = options.read(data);
    if ('error' in read) return fail(read.error);
    const fields = {
      name: text('name'),
      channel: text('channel'),
      description: text('description'),
      type: types,
      enabled: data.has('enabled'),
      transitional: data.has('transitional'),
      config: read.config,
    };
    try {
      if (source === null) {
        const id = text('id');
        const created = JSON.parse(
          (await request('/api/sources', { method: 'POST', body: { ...fields, ...(id !== '' ? { id } : {}) } })).text,
        ) as Source;
        flash(`Source “${created.name}” created. Its webhook URLs are below.`);
      } else {
        await request(`/api/sources/${encodeURIComponent(source.id)}`, { method: 'PATCH', body: fields });
        flash(`Source “${fields.name}” saved.`);
      }
      location.hash = href('sources');
    } catch (error) {
      if (error instanceof ApiError && error.signedOut) return;
      fail(error instanceof Error ? error.message : String(error));
    }
  }

  async function remove(): Promise<void> {
    if (source === null) return;
    if (!window.confirm(`Delete the source “${source.name}”? Its senders will be refused; its stored events stay.`)) return;
    try {
      await request(`/api/sources/${encodeURIComponent(source.id)}`, { method: 'DELETE' });
      flash(`Source “${source.name}” deleted.`);
      location.hash = href('sources');
    } catch (error) {
      if (error instanceof ApiError && error.signedOut) return;
      fail(error instanceof Error ? error.message : String(error));
    }
  }

  const title = source === null ? 'New source' : `Edit ${source.name}`;
  return {
    title,
    body: h(
      'section',
      null,
      h('h1', { tabindex: '-1' }, title),
      h('p', null, h('a', { href: href('sources') }, '← All sources')),
      form,
    ),
  };
}
