/**
 * `GET /api/profiles?email=` / `?phone=` (api.md, "Admin page"), over real HTTP on each real store:
 * the profiles that answer to an e-mail address or phone number, which identification stores only
 * as hashed ids (identity.md §4).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, STORES, type TestServer } from './helpers.js';

describe.each(STORES)('GET /api/profiles?email= | ?phone= on %s', (store) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({}, undefined, store);
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Sends a webhook to a source that identifies its customers by `by`, and returns the profile id. */
  async function identified(by: 'email' | 'phone', value: string): Promise<string> {
    const source = await t.source({ config: { generate_profile: true, identify_profile_by: by, replace_profile_id: 'customer' } });
    const res = await t.fetch(`/collect/order-paid/${source}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customer: value }),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { profile: { id: string } }).profile.id;
  }

  it('finds the profile of an e-mail address, normalised as identification does', async () => {
    const profile = await identified('email', 'Grace.Hopper@Example.com');
    const res = await t.api('GET', `/api/profiles?email=${encodeURIComponent('  grace.hopper@example.COM ')}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ items: [expect.objectContaining({ id: profile })], next: null });
    expect(res.body.items[0]).toEqual((await t.api('GET', `/api/profiles/${profile}`)).body);
  });

  it('finds the profile of a phone number, however it is written', async () => {
    const profile = await identified('phone', '+1 (555) 010-7777');
    const res = await t.api('GET', `/api/profiles?phone=${encodeURIComponent('+15550107777')}`);
    expect(res.status).toBe(200);
    expect(res.body.items.map((p: { id: string }) => p.id)).toEqual([profile]);
  });

  it('answers an empty list when no profile has it', async () => {
    const res = await t.api('GET', '/api/profiles?email=nobody%40example.com');
    expect(res).toMatchObject({ status: 200, body: { items: [], next: null } });
  });

  it('needs exactly one of email or phone: 422 otherwise', async () => {
    for (const query of ['', '?email=a%40b.c&phone=%2B1555']) {
      const res = await t.api('GET', `/api/profiles${query}`);
      expect(res.status).toBe(422);
      expect(res.body).toEqual({ detail: 'give exactly one of email or phone' });
    }
  });

  it('needs the admin token, like the rest of the API', async () => {
    const res = await t.fetch('/api/profiles?email=a%40b.c');
    expect(res.status).toBe(401);
  });
});
