/**
 * The admin page (issue 7): how it is served, then the operator's path through it in a real
 * Chromium (Debian's, driven by playwright-core): log in, create a source through the form, send a
 * webhook to it over HTTP, see it in Live within two seconds, open it, follow it to its profile.
 *
 * `INTAKE_UPDATE_SCREENSHOTS=1 npx vitest run test/admin-page.test.ts` also saves a screenshot of
 * each view to docs/screenshots/ (the README shows them).
 */
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, tempDir, type TestServer } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
/** .ci/run installs Chromium; a machine without it skips the browser half, and says so. */
const runBrowser = existsSync(CHROMIUM) || process.env.CI !== undefined;
if (!runBrowser) console.log(`\n[intake] admin page browser tests SKIPPED: no ${CHROMIUM} (apt-get install chromium)\n`);

const SCREENSHOTS = process.env.INTAKE_UPDATE_SCREENSHOTS === '1' ? new URL('../docs/screenshots/', import.meta.url).pathname : null;
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t?.close();
});

describe('served at /ui/ by the same server', () => {
  it('/ redirects to /ui/', async () => {
    const res = await t.fetch('/', { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/ui/');
  });

  it('/ui/ is the page, without a token, allowed to load only its own files', async () => {
    const res = await t.fetch('/ui/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const html = await res.text();
    const assets = [...html.matchAll(/(?:src|href)="(\/ui\/[^"]+)"/g)].map((m) => m[1] as string);
    expect(assets.some((a) => a.endsWith('.js'))).toBe(true);
    expect(assets.some((a) => a.endsWith('.css'))).toBe(true);
    // Everything is served locally: no other origin is named.
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
    for (const asset of assets) {
      const file = await t.fetch(asset);
      expect(file.status, asset).toBe(200);
      if (asset.includes('/assets/')) expect(file.headers.get('cache-control')).toContain('immutable');
    }
  });

  it('an unknown file under /ui/ is 404 in the usual error shape', async () => {
    const res = await t.fetch('/ui/assets/nothing-here.js');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ detail: 'Not found' });
  });
});

describe.skipIf(!runBrowser)('in Chromium', () => {
  let context: BrowserContext;
  let userDataDir: string;
  let page: Page;
  /** Script errors and refused loads (a CSP violation shows here); refused API calls are expected. */
  const problems: string[] = [];

  beforeAll(async () => {
    userDataDir = tempDir('intake-chromium-');
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: LAPTOP,
    });
    // Bounded waits: a step that does not happen fails in seconds, not at the test's timeout.
    context.setDefaultTimeout(10_000);
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => problems.push(String(error)));
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(message.text());
    });
    if (SCREENSHOTS !== null) mkdirSync(SCREENSHOTS, { recursive: true });
  }, 30_000);
  afterAll(async () => {
    await context?.close();
    if (userDataDir !== undefined) rmSync(userDataDir, { recursive: true, force: true });
  });

  const shot = async (name: string, fullPage = false) => {
    if (SCREENSHOTS !== null) await page.screenshot({ path: `${SCREENSHOTS}${name}.png`, animations: 'disabled', fullPage });
  };
  const heading = (name: string | RegExp) => page.getByRole('heading', { level: 1, name });
  // Evaluated in the page, so written as expressions: the test itself compiles without the DOM's types.
  /** The form controls without an accessible name (a label, or aria-label). */
  const unlabelledControls = () =>
    page.evaluate<string[]>(`[...document.querySelectorAll('input, select, textarea')]
      .filter((c) => c.type !== 'hidden' && !c.classList.contains('offscreen'))
      .filter((c) => (c.labels?.length ?? 0) === 0 && !c.getAttribute('aria-label'))
      .map((c) => c.id || c.name)`);
  /** Whether anything is wider than the screen (sideways scrolling on a phone). */
  const overflowsSideways = () => page.evaluate<boolean>('document.documentElement.scrollWidth > window.innerWidth');

  async function webhook(path: string, body: string): Promise<{ events: string[]; profile: { id: string | null } }> {
    const res = await t.fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' }, body });
    expect(res.status).toBe(200);
    return (await res.json()) as { events: string[]; profile: { id: string | null } };
  }

  it('log in, create a source, see its webhook in Live within two seconds, open it, follow it to its profile', { timeout: 90_000 }, async () => {
    // A source made through the API, so the list is not a list of one.
    await t.api('POST', '/api/sources', { id: 'shop', name: 'Web shop', channel: 'web', description: 'Page views and orders from the storefront' });

    // ---- log in: the page asks for the token once, with the keyboard alone ----
    await page.goto(`${t.url}/`);
    expect(page.url()).toBe(`${t.url}/ui/`);
    const token = page.getByLabel('Admin token');
    await expect.poll(() => token.getAttribute('type')).toBe('password');
    await expect.poll(() => page.evaluate<string | undefined>('document.activeElement?.id')).toBe('token');
    await shot('login');
    await page.keyboard.type('not-the-admin-token');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').filter({ hasText: 'That token was refused' }).waitFor();
    await token.fill(t.token);
    await page.keyboard.press('Enter');
    await heading('Sources').waitFor();
    expect(await page.evaluate<string | null>("sessionStorage.getItem('intake.adminToken')")).toBe(t.token);

    // ---- create a source through the form ----
    await page.getByRole('link', { name: 'New source' }).click();
    await heading('New source').waitFor();
    expect(await unlabelledControls()).toEqual([]);
    await page.getByLabel('Name').fill('Stripe payments');
    await page.getByLabel('ID (optional)').fill('Stripe');
    await page.getByLabel('Channel').fill('payments');
    await page.getByLabel('Description').fill('Checkout and payment webhooks from Stripe');
    // Identity (docs/identity.md) as form fields: the customer is found by the e-mail in the payload.
    expect(await page.locator('details.option-group').first().getAttribute('open')).toBeNull();
    await page.locator('summary', { hasText: 'Identity' }).click();
    await page.getByLabel('Give every event a profile').check();
    await page.getByLabel('Identify the customer by').selectOption('email');
    await page.getByLabel('Where that is in the payload').fill('data.object.customer_details.email');
    await shot('source-form', true);
    await page.getByRole('button', { name: 'Create source' }).click();
    await heading('Sources').waitFor();
    const card = page.getByRole('article', { name: 'Stripe payments' });
    await card.waitFor();
    expect(await card.textContent()).toContain(`${t.url}/collect/{event_type}/stripe`);
    expect(await card.textContent()).toContain(`curl -X POST '${t.url}/collect/test-event/stripe'`);
    const created = await t.api('GET', '/api/sources/stripe');
    expect(created.body).toMatchObject({
      name: 'Stripe payments',
      channel: 'payments',
      enabled: true,
      type: ['webhook'],
      config: { generate_profile: true, identify_profile_by: 'email', replace_profile_id: 'data.object.customer_details.email' },
    });

    // ---- Live: a webhook sent over HTTP appears within two seconds ----
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Live' }).click();
    await heading('Live events').waitFor();
    await page.locator('.stream-status[data-state="live"]').waitFor();
    await webhook('/collect/page-view/shop/visit-7f3a', '{"page": "/pricing", "referrer": "https://www.google.com/"}');
    const paid = await webhook(
      '/collect/checkout-completed/stripe/cs_test_a1b2c3',
      '{"id": "evt_1PqR2sLkdIwHu7ix", "type": "checkout.session.completed", "livemode": false, "balance_transaction": 9007199254740993, ' +
        '"data": {"object": {"id": "cs_test_a1b2c3", "amount_total": 4990, "currency": "eur", "payment_status": "paid", ' +
        '"customer_details": {"email": "ada@example.com", "name": "Ada Lovelace"}, "line_items": [{"sku": "PRO-12", "quantity": 1}]}}}',
    );
    const eventId = paid.events[0] as string;
    const profileId = paid.profile.id as string;
    const row = page.locator(`tr[data-id="${eventId}"]`);
    await row.waitFor({ state: 'visible', timeout: 2_000 });
    expect(await row.textContent()).toContain('checkout-completed');
    expect(await row.textContent()).toContain('stripe');
    // Newest on top.
    expect(await page.locator('table.events tbody tr').first().getAttribute('data-id')).toBe(eventId);
    await shot('live');

    // ---- open it: properties as a tree (numbers exact), headers, links on ----
    await row.getByRole('link', { name: 'checkout-completed' }).click();
    await heading(/Checkout Completed/).waitFor();
    const properties = page.getByRole('list', { name: 'Properties' });
    expect(await properties.textContent()).toContain('9007199254740993');
    expect(await properties.textContent()).toContain('"ada@example.com"');
    await page.getByRole('button', { name: 'Collapse all of Properties' }).click();
    expect(await properties.getByText('"ada@example.com"').isVisible()).toBe(false);
    await page.getByRole('button', { name: 'Expand all of Properties' }).click();
    expect(await properties.getByText('"ada@example.com"').isVisible()).toBe(true);
    expect(await page.getByRole('table').filter({ hasText: 'Header' }).textContent()).toContain('content-type');
    await shot('event');
    await page.setViewportSize(PHONE);
    expect(await overflowsSideways()).toBe(false);
    await shot('phone-event');
    await page.setViewportSize(LAPTOP);

    // ---- follow the link to its profile ----
    await page.getByRole('link', { name: profileId }).click();
    await heading(/Profile/).waitFor();
    expect(await heading(/Profile/).textContent()).toContain(profileId);
    const timeline = page.locator('ol.timeline');
    await timeline.getByRole('link', { name: 'checkout-completed' }).waitFor();
    // All of its events fit one page: no button for older ones.
    expect(await page.getByRole('button', { name: 'Load older events' }).isVisible()).toBe(false);
    await shot('profile');

    // ...and on to the session, with its own timeline.
    await timeline.getByRole('link', { name: 'session cs_test_a1b2c3' }).first().click();
    await heading(/Session/).waitFor();
    await page.locator('ol.timeline').getByRole('link', { name: 'checkout-completed' }).waitFor();
    await shot('session');

    // ...and found again by the customer's e-mail address, which the profile holds as a hashed id.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Profiles & sessions' }).click();
    await page.getByLabel('E-mail address or phone number', { exact: true }).fill(' Ada@Example.com ');
    await page.getByLabel('E-mail address or phone number', { exact: true }).press('Enter');
    await page.getByRole('heading', { name: /Profiles with the e-mail address/ }).waitFor();
    await page.locator('ul.results').getByRole('link', { name: profileId }).waitFor();
    await shot('lookup');

    // ---- the remaining views, for the README, and on a phone ----
    await page.goto(`${t.url}/ui/#/sources`);
    await page.getByRole('article', { name: 'Stripe payments' }).getByText(/1 event/).waitFor();
    await shot('sources');
    await page.goto(`${t.url}/ui/#/live`);
    await page.locator(`tr[data-id="${eventId}"]`).waitFor();
    await page.setViewportSize(PHONE);
    expect(await overflowsSideways()).toBe(false);
    await shot('phone-live');
    await page.setViewportSize(LAPTOP);

    expect(problems).toEqual([]);
  });

  it('turn on sender verification in the form; an unsigned delivery is quarantined, shown with its reason and body, and dropped', { timeout: 60_000 }, async () => {
    const secret = 'whsec_test_0123456789abcdefghij';
    await page.goto(`${t.url}/ui/#/sources`);
    await page.getByRole('link', { name: 'Edit Stripe payments' }).click();
    await heading('Edit Stripe payments').waitFor();
    expect(await unlabelledControls()).toEqual([]);
    // The identity options saved at creation are shown, unfolded, in their fields.
    expect(await page.getByLabel('Identify the customer by').inputValue()).toBe('email');
    await page.locator('summary', { hasText: 'Sender verification' }).click();
    await page.getByLabel('Scheme').selectOption('stripe');
    await page.getByLabel('Secrets, one per line').fill(secret);
    await page.getByRole('button', { name: 'Save changes' }).click();
    await heading('Sources').waitFor();
    const saved = await t.api('GET', '/api/sources/stripe');
    expect(saved.body.config).toMatchObject({ identify_profile_by: 'email', verify: { scheme: 'stripe' } });
    // Secrets are write-only: the API shows a mask, and saving the form again keeps the secret.
    expect(saved.body.config.verify.secrets).toEqual([expect.not.stringContaining('0123456789')]);
    await page.getByRole('link', { name: 'Edit Stripe payments' }).click();
    await heading('Edit Stripe payments').waitFor();
    await page.getByRole('button', { name: 'Save changes' }).click();
    await heading('Sources').waitFor();
    const body = '{"id": "evt_signed", "type": "charge.succeeded"}';
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
    const signed = await t.fetch('/collect/charge-succeeded/stripe', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': `t=${timestamp},v1=${signature}` },
      body,
    });
    expect(signed.status).toBe(200);

    // An unsigned delivery is refused and kept.
    const unsigned = await t.fetch('/collect/charge-succeeded/stripe', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"id": "evt_unsigned", "type": "charge.succeeded", "amount": 4990}',
    });
    expect(unsigned.status).toBe(401);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Quarantine' }).click();
    await heading('Quarantine').waitFor();
    const row = page.locator('table.quarantine tbody tr');
    await row.getByRole('link', { name: 'SIGNATURE_FAILED' }).waitFor();
    await shot('quarantine');
    await row.getByRole('link', { name: 'SIGNATURE_FAILED' }).click();
    await heading(/Refused/).waitFor();
    expect(await page.getByRole('list', { name: 'Body' }).textContent()).toContain('"evt_unsigned"');
    // Replaying it fails the same way while it is unsigned; it stays.
    await page.getByRole('button', { name: 'Replay' }).click();
    await page.getByRole('alert').filter({ hasText: 'Refused again' }).waitFor();
    await shot('quarantine-entry');
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Drop' }).click();
    await heading('Quarantine').waitFor();
    await page.getByText('Nothing is quarantined.').waitFor();
    expect((await t.api('GET', '/api/quarantine')).body.items).toEqual([]);
    expect(problems).toEqual([]);
  });
});
