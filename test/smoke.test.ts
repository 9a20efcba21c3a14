import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './helpers.js';

describe('smoke', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.close());

  it('stores a posted event and reads it back', async () => {
    const source = await t.source();
    const res = await t.fetch(`/collect/order/${source}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"n": 12345678901234567890}',
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { events: string[] };
    const event = await t.fetch(`/api/events/${body.events[0]}`, { auth: true });
    expect(await event.text()).toContain('"properties":{"n":12345678901234567890}');
  });
});
