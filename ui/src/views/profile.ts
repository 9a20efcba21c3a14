import { ApiError, getDocument } from '../api';
import { h, href, timeElement } from '../dom';
import { isEmpty, jsonTree, member } from '../json-tree';
import type { ProfileDoc } from '../types';
import type { View } from '../view';
import { documentTree, fact, notFound } from './detail-parts';
import { timeline } from './timeline';

const PARTS = ['data', 'traits', 'stats', 'segments', 'interests', 'consents'] as const;

/** A profile, found by any of its ids: its ids, visits, data and a timeline of its events. */
export async function profileView(id: string, signal: AbortSignal): Promise<View> {
  let loaded: { doc: ProfileDoc; text: string };
  try {
    loaded = await getDocument<ProfileDoc>(`/api/profiles/${encodeURIComponent(id)}`, signal);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404)
      return notFound('Profile', id, h('a', { href: href('profiles') }, 'Look up another'));
    throw error;
  }
  const { doc: profile, text } = loaded;
  const tree = documentTree(text);
  const time = profile.metadata?.time;
  const ids = profile.ids ?? [profile.id];
  const mergedFrom = profile.metadata?.merged_from ?? [];
  const filled = PARTS.filter((key) => !isEmpty(member(tree ?? undefined, key)));
  const empty = PARTS.filter((key) => !filled.includes(key));

  return {
    title: `Profile ${profile.id}`,
    body: h(
      'article',
      { class: 'detail' },
      h('p', { class: 'crumbs' }, h('a', { href: href('profiles') }, '← Profiles & sessions')),
      h('h1', { tabindex: '-1' }, 'Profile ', h('code', { class: 'subtle' }, profile.id)),
      profile.id !== id ? h('p', { class: 'notice info' }, 'Found by ', h('code', null, id), ', one of this profile’s ids.') : null,
      h(
        'dl',
        { class: 'facts' },
        fact('Created', timeElement(time?.insert)),
        fact('Updated', timeElement(time?.update)),
        fact('Visits', String(time?.visit?.count ?? 0)),
        fact('Current visit', timeElement(time?.visit?.current)),
        fact('Previous visit', timeElement(time?.visit?.last)),
      ),
      h('section', { 'aria-labelledby': 'ids-heading' },
        h('h2', { id: 'ids-heading' }, 'Ids'),
        h('p', { class: 'help' }, 'The profile is found by any of these.'),
        h('ul', { class: 'ids' }, ids.map((one) => h('li', null, h('code', null, one)))),
        mergedFrom.length > 0 ? [h('h3', null, 'Merged from'), h('ul', { class: 'ids' }, mergedFrom.map((one) => h('li', null, h('code', null, one))))] : null,
      ),
      filled.map((key) =>
        h('section', null, h('h2', null, key[0]?.toUpperCase() + key.slice(1)), jsonTree(member(tree ?? undefined, key) as never, key)),
      ),
      empty.length > 0 ? h('p', { class: 'help' }, `Empty: ${empty.join(', ')}.`) : null,
      timeline({ profile: profile.id }, signal),
    ),
  };
}
