import { h } from '../dom';

/**
 * A source's webhook options (`config`) as form fields: identity (docs/identity.md) and hardening
 * (sender verification, duplicate deliveries, limits). The server validates them on save and names
 * a bad key in its 422. Keys this form does not know are sent back unchanged.
 */

type Config = Record<string, unknown>;
const KNOWN = [
  'generate_profile',
  'identify_profile_by',
  'replace_profile_id',
  'replace_session_id',
  'sticky_session',
  'verify',
  'idempotency',
  'max_body_bytes',
  'rate_limit',
];

const SCHEMES: [string, string][] = [
  ['', 'None: any sender that knows the URL'],
  ['stripe', 'Stripe (Stripe-Signature)'],
  ['github', 'GitHub (X-Hub-Signature-256)'],
  ['shopify', 'Shopify (X-Shopify-Hmac-Sha256)'],
  ['slack', 'Slack (X-Slack-Signature)'],
  ['standard', 'Standard Webhooks / Svix (webhook-signature)'],
  ['hmac', 'HMAC of the body in a header you name'],
  ['basic', 'HTTP Basic auth (user:password)'],
  ['token', 'A shared token (header, or ?token=)'],
];

const IDENTIFY: [string, string][] = [
  ['none', 'Do not identify'],
  ['id', 'Their id in the payload'],
  ['email', 'Their e-mail address'],
  ['phone', 'Their phone number'],
];

const IDEMPOTENCY: [string, string][] = [
  ['default', 'By the sender’s delivery id (default)'],
  ['from', 'By keys named below'],
  ['content', 'By identical content'],
  ['off', 'Off: store every delivery'],
];

const isObject = (v: unknown): v is Config => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');

function help(id: string, message: string): HTMLElement {
  return h('p', { id: `${id}-help`, class: 'help' }, message);
}

function textField(id: string, label: string, value: string, hint?: string, attrs: Record<string, string> = {}): HTMLElement {
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    h('input', { id, name: id, type: 'text', value, spellcheck: 'false', autocapitalize: 'none', ...(hint ? { 'aria-describedby': `${id}-help` } : {}), ...attrs }),
    hint ? help(id, hint) : null,
  );
}

const numberField = (id: string, label: string, value: string, hint: string, placeholder = '') =>
  textField(id, label, value, hint, { inputmode: 'numeric', pattern: '[0-9]*', placeholder });

function selectField(id: string, label: string, options: [string, string][], value: string, hint?: string): HTMLElement {
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    h(
      'select',
      { id, name: id, ...(hint ? { 'aria-describedby': `${id}-help` } : {}) },
      options.map(([v, l]) => h('option', { value: v, selected: v === value }, l)),
    ),
    hint ? help(id, hint) : null,
  );
}

function checkField(id: string, label: string, checked: boolean, hint: string): HTMLElement {
  return h(
    'div',
    { class: 'field check' },
    h('input', { id, name: id, type: 'checkbox', checked, 'aria-describedby': `${id}-help` }),
    h('label', { for: id }, label),
    help(id, hint),
  );
}

function areaField(id: string, label: string, value: string, hint: string): HTMLElement {
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    h('textarea', { id, name: id, rows: 2, spellcheck: 'false', autocapitalize: 'none', 'aria-describedby': `${id}-help` }, value),
    help(id, hint),
  );
}

/** A group of options, folded unless the source uses it (the form stays short for a plain webhook). */
function group(title: string, open: boolean, ...children: HTMLElement[]): HTMLElement {
  return h(
    'details',
    { class: 'option-group', open },
    h('summary', null, title),
    h('fieldset', null, h('legend', { class: 'visually-hidden' }, title), ...children),
  );
}

export interface WebhookOptions {
  element: HTMLElement;
  /** The config to save, or what is wrong with the fields. */
  read(data: FormData): { config: Config } | { error: string };
}

export function webhookOptions(saved: Config): WebhookOptions {
  const verify = isObject(saved.verify) ? saved.verify : {};
  const idempotency = isObject(saved.idempotency) ? saved.idempotency : {};
  const rate = isObject(saved.rate_limit) ? saved.rate_limit : {};
  const idempotencyMode = typeof idempotency.mode === 'string' ? idempotency.mode : Array.isArray(idempotency.from) ? 'from' : 'default';

  const element = h(
    'div',
    { class: 'webhook-options' },
    group(
      'Identity',
      KNOWN.slice(0, 5).some((key) => key in saved),
      help('identity', 'Files webhook events under the right customer profile, from a value in the payload.'),
      checkField('cfg-generate', 'Give every event a profile', saved.generate_profile === true, 'Even on the URL without a session id, each event gets a profile and a session.'),
      selectField('cfg-identify', 'Identify the customer by', IDENTIFY, text(saved.identify_profile_by) || 'none'),
      textField('cfg-profile-path', 'Where that is in the payload', text(saved.replace_profile_id), 'A dot path into the event’s properties, e.g. data.object.customer_details.email.', { placeholder: 'data.object.customer_details.email' }),
      textField('cfg-session-path', 'Session id in the payload (optional)', text(saved.replace_session_id), 'A dot path; the payload’s session id is used like one in the URL.'),
      checkField('cfg-sticky', 'One session per customer', saved.sticky_session !== false, 'Without a session id from the URL or the payload, all of a customer’s events share one session.'),
    ),
    group(
      'Sender verification',
      'verify' in saved,
      selectField('cfg-scheme', 'Scheme', SCHEMES, text(verify.scheme), 'Requests that fail it are refused with 401 and kept in Quarantine.'),
      areaField(
        'cfg-secrets',
        'Secrets, one per line',
        Array.isArray(verify.secrets) ? verify.secrets.map(String).join('\n') : '',
        'Several while you rotate. Saved secrets are shown masked (…c0ff); leave a mask as it is to keep that secret.',
      ),
      numberField('cfg-tolerance', 'Timestamp tolerance (seconds)', text(verify.tolerance_s), 'How old a signed timestamp may be (schemes that sign one).', '300'),
      textField('cfg-header', 'Signature header', text(verify.header), 'The header carrying the signature (required for HMAC; for a token, default x-intake-token).'),
      selectField('cfg-algorithm', 'HMAC algorithm', [['sha256', 'SHA-256'], ['sha1', 'SHA-1'], ['sha512', 'SHA-512']], text(verify.algorithm) || 'sha256'),
      selectField('cfg-encoding', 'HMAC encoding', [['hex', 'Hex'], ['base64', 'Base64']], text(verify.encoding) || 'hex'),
      textField('cfg-prefix', 'HMAC signature prefix', text(verify.prefix), 'Text before the signature in the header, e.g. sha256=.'),
      checkField('cfg-url-session', 'Accept a session id in the URL', verify.allow_url_session === true, 'A verified source refuses one (403) unless this is on, since the URL is not signed.'),
    ),
    group(
      'Duplicate deliveries',
      'idempotency' in saved,
      selectField('cfg-idempotency', 'Recognise a retried delivery', IDEMPOTENCY, idempotencyMode, 'A retry is answered like the first delivery and stored once.'),
      areaField(
        'cfg-idempotency-from',
        'Keys, one per line',
        Array.isArray(idempotency.from) ? idempotency.from.map(String).join('\n') : '',
        'For “by keys”: header:<name>, body:<dot path> or query:<name>, e.g. header:x-request-id.',
      ),
      numberField('cfg-idempotency-window', 'Remember deliveries for (seconds)', text(idempotency.window_s), 'Default 604800 (7 days).', '604800'),
    ),
    group(
      'Limits',
      'max_body_bytes' in saved || 'rate_limit' in saved,
      numberField('cfg-max-body', 'Largest body (bytes)', text(saved.max_body_bytes), 'Larger bodies get 413. Empty: the server’s limit.'),
      numberField('cfg-rate', 'Requests per second', text(rate.per_second), 'Above it the sender gets 429 with Retry-After. Empty: no limit.'),
      numberField('cfg-burst', 'Burst', text(rate.burst), 'Requests allowed at once above the rate. Empty: the rate.'),
    ),
  );

  return {
    element,
    read(data) {
      const get = (name: string) => String(data.get(name) ?? '').trim();
      const lines = (name: string) => get(name).split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
      const whole = (name: string, label: string): number | undefined | string => {
        const raw = get(name);
        if (raw === '') return undefined;
        return /^[0-9]+$/.test(raw) && Number(raw) >= 1 ? Number(raw) : `${label} must be a whole number of at least 1.`;
      };
      // Keys this form does not know stay as they were.
      const config: Config = Object.fromEntries(Object.entries(saved).filter(([key]) => !KNOWN.includes(key)));

      const identify = get('cfg-identify');
      const profilePath = get('cfg-profile-path');
      const sessionPath = get('cfg-session-path');
      if (identify !== 'none' && profilePath === '') return { error: 'Say where the customer’s id, e-mail or phone is in the payload.' };
      // Always explicit when a path is set: Tracardi reads a path without it as "generate".
      if (data.has('cfg-generate') || profilePath !== '') config.generate_profile = data.has('cfg-generate');
      if (identify !== 'none') config.identify_profile_by = identify;
      if (profilePath !== '') config.replace_profile_id = profilePath;
      if (sessionPath !== '') config.replace_session_id = sessionPath;
      if (!data.has('cfg-sticky')) config.sticky_session = false;

      const scheme = get('cfg-scheme');
      if (scheme !== '') {
        const secrets = lines('cfg-secrets');
        if (secrets.length === 0) return { error: 'Give at least one secret for sender verification.' };
        const tolerance = whole('cfg-tolerance', 'The timestamp tolerance');
        if (typeof tolerance === 'string') return { error: tolerance };
        const verify: Config = { scheme, secrets };
        if (tolerance !== undefined) verify.tolerance_s = tolerance;
        if (get('cfg-header') !== '') verify.header = get('cfg-header');
        if (scheme === 'hmac') {
          verify.algorithm = get('cfg-algorithm');
          verify.encoding = get('cfg-encoding');
          if (get('cfg-prefix') !== '') verify.prefix = get('cfg-prefix');
        }
        if (data.has('cfg-url-session')) verify.allow_url_session = true;
        config.verify = verify;
      }

      const mode = get('cfg-idempotency');
      const window = whole('cfg-idempotency-window', 'The remembering time');
      if (typeof window === 'string') return { error: window };
      if (mode === 'off') config.idempotency = { mode: 'off' };
      else {
        const idem: Config = {};
        if (mode === 'content') idem.mode = 'content';
        if (mode === 'from') {
          const from = lines('cfg-idempotency-from');
          if (from.length === 0) return { error: 'Name at least one key for recognising retries, e.g. header:x-request-id.' };
          idem.from = from;
        }
        if (window !== undefined) idem.window_s = window;
        if (Object.keys(idem).length > 0) config.idempotency = idem;
      }

      const maxBody = whole('cfg-max-body', 'The largest body');
      if (typeof maxBody === 'string') return { error: maxBody };
      if (maxBody !== undefined) config.max_body_bytes = maxBody;
      const perSecond = whole('cfg-rate', 'Requests per second');
      const burst = whole('cfg-burst', 'The burst');
      if (typeof perSecond === 'string') return { error: perSecond };
      if (typeof burst === 'string') return { error: burst };
      if (burst !== undefined && perSecond === undefined) return { error: 'A burst needs a rate (requests per second).' };
      if (perSecond !== undefined) config.rate_limit = burst === undefined ? { per_second: perSecond } : { per_second: perSecond, burst };
      return { config };
    },
  };
}
