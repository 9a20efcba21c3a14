import { getJson, query, type Page } from '../api';
import { h, href, timeElement } from '../dom';
import type { ProfileDoc } from '../types';
import type { View } from '../view';

function lookupForm(id: string, label: string, help: string, go: (value: string) => string, control?: HTMLElement): HTMLElement {
  const input = h('input', { id, name: id, type: 'search', required: true, spellcheck: 'false', autocapitalize: 'none', 'aria-describedby': `${id}-help` });
  return h(
    'form',
    {
      class: 'card lookup',
      role: 'search',
      'aria-label': `Find by ${label.toLowerCase()}`,
      onsubmit: (event: SubmitEvent) => {
        event.preventDefault();
        const value = input.value.trim();
        if (value !== '') location.hash = go(value);
      },
    },
    control ?? null,
    h('label', { for: id }, label),
    h('div', { class: 'inline' }, input, h('button', { type: 'submit' }, 'Find')),
    h('p', { id: `${id}-help`, class: 'help' }, help),
  );
}

/** The profiles answering to an e-mail address or phone number (they hold it as a hashed id). */
async function contactResults(kind: 'email' | 'phone', value: string, signal: AbortSignal): Promise<HTMLElement> {
  const page = await getJson<Page<ProfileDoc>>(`/api/profiles${query({ [kind]: value })}`, signal);
  const what = kind === 'email' ? 'e-mail address' : 'phone number';
  return h(
    'section',
    { 'aria-labelledby': 'results-heading' },
    h('h2', { id: 'results-heading' }, `Profiles with the ${what} `, h('code', null, value)),
    page.items.length === 0
      ? h('p', { class: 'empty', role: 'status' }, `No profile has this ${what}.`)
      : h(
          'ul',
          { class: 'results' },
          page.items.map((p) =>
            h('li', null, h('a', { href: href('profiles', p.id), class: 'id' }, p.id), ' · created ', timeElement(p.metadata?.time?.insert)),
          ),
        ),
  );
}

/** Opening a profile by any of its ids, e-mail or phone, or a session by its id. */
export async function lookupView(params: URLSearchParams, signal: AbortSignal): Promise<View> {
  const email = params.get('email');
  const phone = params.get('phone');
  const contactKind = h(
    'select',
    { id: 'contact-kind', name: 'contact-kind' },
    h('option', { value: 'email', selected: phone === null }, 'E-mail address'),
    h('option', { value: 'phone', selected: phone !== null }, 'Phone number'),
  );
  const results = email !== null ? await contactResults('email', email, signal) : phone !== null ? await contactResults('phone', phone, signal) : null;
  return {
    title: 'Profiles & sessions',
    body: h(
      'section',
      null,
      h('h1', { tabindex: '-1' }, 'Profiles & sessions'),
      h(
        'div',
        { class: 'cards two' },
        lookupForm('profile-id', 'Profile id', 'Any of the profile’s ids. Events and sessions link to their profile too.', (v) => href('profiles', v)),
        lookupForm('session-id', 'Session id', 'The last path segment of a collector URL that carried a session.', (v) => href('sessions', v)),
        lookupForm(
          'contact',
          'E-mail address or phone number',
          'Profiles keep them as hashed ids (docs/identity.md); the server hashes what you type the same way.',
          (v) => `${href('profiles')}${query({ [contactKind.value]: v })}`,
          h('div', { class: 'field' }, h('label', { for: 'contact-kind' }, 'Look up by'), contactKind),
        ),
      ),
      results,
    ),
  };
}
