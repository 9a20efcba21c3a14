import './styles.css';
import { ApiError, session, SIGNED_OUT } from './api';
import { h, notice } from './dom';
import { takeFlash } from './flash';
import { eventView } from './views/event-detail';
import { liveView } from './views/live';
import { loginView } from './views/login';
import { lookupView } from './views/lookup';
import { profileView } from './views/profile';
import { quarantineEntryView, quarantineView } from './views/quarantine';
import { sessionView } from './views/session';
import { sourceFormView } from './views/source-form';
import { sourcesView } from './views/sources';
import type { View } from './view';

type Section = 'sources' | 'live' | 'profiles' | 'quarantine';
type Route = [RegExp, (params: string[], query: URLSearchParams, signal: AbortSignal) => Promise<View> | View, Section];

/** Hash routes (`#/live?source=shop`): the server serves /ui/ only, and every view is a link. */
const ROUTES: Route[] = [
  [/^\/sources$/, (_p, _q, signal) => sourcesView(signal), 'sources'],
  [/^\/sources\/new$/, (_p, _q, signal) => sourceFormView(null, signal), 'sources'],
  [/^\/sources\/([^/]+)\/edit$/, ([id], _q, signal) => sourceFormView(id as string, signal), 'sources'],
  [/^\/live$/, (_p, query, signal) => liveView(query, signal), 'live'],
  [/^\/events\/([^/]+)$/, ([id], _q, signal) => eventView(id as string, signal), 'live'],
  [/^\/profiles$/, (_p, query, signal) => lookupView(query, signal), 'profiles'],
  [/^\/profiles\/([^/]+)$/, ([id], _q, signal) => profileView(id as string, signal), 'profiles'],
  [/^\/sessions\/([^/]+)$/, ([id], _q, signal) => sessionView(id as string, signal), 'profiles'],
  [/^\/quarantine$/, (_p, query, signal) => quarantineView(query, signal), 'quarantine'],
  [/^\/quarantine\/([^/]+)$/, ([id], _q, signal) => quarantineEntryView(id as string, signal), 'quarantine'],
];

const NAV: [Section, string, string][] = [
  ['sources', 'Sources', '#/sources'],
  ['live', 'Live', '#/live'],
  ['profiles', 'Profiles & sessions', '#/profiles'],
  ['quarantine', 'Quarantine', '#/quarantine'],
];

const app = document.getElementById('app') as HTMLElement;
let current: AbortController | null = null;

function showLogin(reason: string | null): void {
  current?.abort();
  current = null;
  document.title = 'Sign in · Intake';
  app.replaceChildren(loginView(reason, () => void route(true)));
  app.querySelector('input')?.focus();
}

function layout(section: Section): { main: HTMLElement; view: HTMLElement } {
  const view = h('div', { id: 'view' });
  const main = h('main', { id: 'main', tabindex: '-1' }, view);
  app.replaceChildren(
    h('a', { class: 'skip-link', href: '#main', onclick: (e: Event) => (e.preventDefault(), main.focus()) }, 'Skip to content'),
    h(
      'header',
      { class: 'topbar' },
      h('a', { class: 'brand', href: '#/sources' }, 'Intake'),
      h(
        'nav',
        { 'aria-label': 'Main' },
        h(
          'ul',
          null,
          NAV.map(([key, label, link]) =>
            h('li', null, h('a', { href: link, 'aria-current': key === section ? 'page' : null }, label)),
          ),
        ),
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'secondary sign-out',
          onclick: () => {
            session.signOut();
            showLogin('Signed out.');
          },
        },
        'Sign out',
      ),
    ),
    main,
    h('div', { id: 'announcer', class: 'visually-hidden', 'aria-live': 'polite' }),
  );
  return { main, view };
}

async function route(moveFocus: boolean): Promise<void> {
  if (session.token() === null) return showLogin(null);
  const [path = '/', search = ''] = location.hash.replace(/^#/, '').split('?', 2);
  const match = ROUTES.map((r) => [r, r[0].exec(path)] as const).find(([, m]) => m !== null);
  if (match === undefined) {
    location.replace('#/sources');
    return;
  }
  const [[, render, section], params] = match;
  current?.abort();
  const controller = new AbortController();
  current = controller;

  const { main, view } = layout(section);
  view.replaceChildren(h('p', { class: 'loading', role: 'status' }, 'Loading…'));
  let result: View;
  try {
    result = await render(
      (params as RegExpExecArray).slice(1).map((p) => decodeURIComponent(p)),
      new URLSearchParams(search),
      controller.signal,
    );
  } catch (error) {
    if (controller.signal.aborted || (error instanceof ApiError && error.signedOut)) return;
    result = {
      title: 'Error',
      body: h(
        'section',
        null,
        h('h1', { tabindex: '-1' }, 'Something went wrong'),
        notice('error', error instanceof Error ? error.message : String(error)),
        h('button', { type: 'button', onclick: () => void route(true) }, 'Try again'),
      ),
    };
  }
  if (controller.signal.aborted) return;
  document.title = `${result.title} · Intake`;
  const flashed = takeFlash();
  view.replaceChildren(...(flashed !== null ? [notice('info', flashed)] : []), result.body);
  // Moving focus to the new heading tells screen-reader users the view changed.
  if (moveFocus) (view.querySelector<HTMLElement>('h1') ?? main).focus();
}

window.addEventListener(SIGNED_OUT, () => showLogin('The server refused the token. Sign in again.'));
window.addEventListener('hashchange', () => void route(true));
void route(false);
