import { ApiError, getDocument } from '../api';
import { h, href, timeElement } from '../dom';
import { isEmpty, jsonTree, member } from '../json-tree';
import type { SessionDoc } from '../types';
import type { View } from '../view';
import { documentTree, fact, idLink, notFound } from './detail-parts';
import { timeline } from './timeline';

const PARTS = ['context', 'device', 'os', 'app'] as const;

/** A session: its state, its profile and a timeline of its events. */
export async function sessionView(id: string, signal: AbortSignal): Promise<View> {
  let loaded: { doc: SessionDoc; text: string };
  try {
    loaded = await getDocument<SessionDoc>(`/api/sessions/${encodeURIComponent(id)}`, signal);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404)
      return notFound('Session', id, h('a', { href: href('profiles') }, 'Look up another'));
    throw error;
  }
  const { doc: session, text } = loaded;
  const tree = documentTree(text);
  const filled = PARTS.filter((key) => !isEmpty(member(tree ?? undefined, key)));

  return {
    title: `Session ${session.id}`,
    body: h(
      'article',
      { class: 'detail' },
      h('p', { class: 'crumbs' }, h('a', { href: href('profiles') }, '← Profiles & sessions')),
      h('h1', { tabindex: '-1' }, 'Session ', h('code', { class: 'subtle' }, session.id)),
      h(
        'dl',
        { class: 'facts' },
        fact('Profile', idLink('profiles', session.profile)),
        fact('Status', session.metadata.status),
        fact('Channel', session.metadata.channel === '' ? null : session.metadata.channel),
        fact('Started', timeElement(session.metadata.time.insert)),
        fact('Updated', timeElement(session.metadata.time.update)),
      ),
      filled.map((key) =>
        h('section', null, h('h2', null, key[0]?.toUpperCase() + key.slice(1)), jsonTree(member(tree ?? undefined, key) as never, key)),
      ),
      timeline({ session: session.id }, signal),
    ),
  };
}
