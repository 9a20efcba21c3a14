/** Building the page's DOM without innerHTML, so stored payloads can never become markup. */

type Child = Node | string | number | null | undefined | false | Child[];
type AttrValue = string | number | boolean | null | undefined;
type Attrs = Record<string, AttrValue | ((event: never) => void)>;

/** `h('a', { href: '#/live', onclick: … }, 'Live')`: `on…` keys add listeners, `true` adds a bare attribute. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (typeof value === 'function') element.addEventListener(name.slice(2), value as EventListener);
    else if (value === true) element.setAttribute(name, '');
    else if (value !== false && value !== null && value !== undefined) element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else if (child !== null && child !== undefined && child !== false) parent.appendChild(document.createTextNode(String(child)));
  }
}

/** A link inside the page (hash routing: the server only ever serves /ui/). */
export const href = (...segments: string[]) => `#/${segments.map(encodeURIComponent).join('/')}`;

export function formatTime(iso: string | null | undefined): string {
  if (iso === null || iso === undefined) return '—';
  const time = new Date(iso);
  if (Number.isNaN(time.getTime())) return iso;
  const sameDay = time.toDateString() === new Date().toDateString();
  return sameDay
    ? time.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : time.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

/** `<time>` with the exact ISO time as its machine value and tooltip. */
export const timeElement = (iso: string | null | undefined) =>
  h('time', iso ? { datetime: iso, title: iso } : null, formatTime(iso));

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export function formatAgo(iso: string): string {
  const seconds = Math.round((Date.parse(iso) - Date.now()) / 1000);
  const steps: [Intl.RelativeTimeFormatUnit, number][] = [
    ['day', 86_400],
    ['hour', 3_600],
    ['minute', 60],
  ];
  for (const [unit, size] of steps) if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  return relative.format(seconds, 'second');
}

/** Says something to screen readers (and shows it briefly) without moving focus. */
export function announce(message: string): void {
  const region = document.getElementById('announcer');
  if (region === null) return;
  region.textContent = '';
  // A fresh text node after clearing makes screen readers repeat an identical message.
  window.setTimeout(() => (region.textContent = message), 50);
}

/** Copies text; the clipboard API needs a secure context, so plain-HTTP pages use the older way. */
export async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard !== undefined && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the older way
  }
  const area = h('textarea', { readonly: true, class: 'offscreen', 'aria-hidden': 'true' }, text);
  document.body.appendChild(area);
  area.select();
  const copied = document.execCommand('copy');
  area.remove();
  return copied;
}

/** A value with a Copy button beside it; `label` names what is copied, for screen readers. */
export function copyable(text: string, label: string, kind: 'url' | 'command' = 'url'): HTMLElement {
  const button = h(
    'button',
    {
      type: 'button',
      class: 'copy',
      'aria-label': `Copy ${label}`,
      onclick: async () => {
        const ok = await copyText(text);
        button.textContent = ok ? 'Copied' : 'Copy failed';
        announce(ok ? `${label} copied` : `Could not copy ${label}; select it and copy by hand`);
        window.setTimeout(() => (button.textContent = 'Copy'), 2000);
      },
    },
    'Copy',
  );
  return h('div', { class: `copyable ${kind}` }, h('code', null, text), button);
}

/** A message box: `alert` interrupts (errors), `status` waits its turn. */
export const notice = (kind: 'error' | 'info', ...children: Child[]) =>
  h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...children);
