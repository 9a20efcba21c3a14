/**
 * The one payload every scenario sends: a Stripe `charge.succeeded` webhook as Stripe posts it,
 * trimmed to about 0.5 KB, with the headers a real sender adds. The bare server gets the same
 * bytes, so the ceiling and Intake parse the same request.
 */
export const PAYLOAD = JSON.stringify({
  id: 'evt_3PqR7sLkdIwHu7ix0Y9Jb1cD',
  object: 'event',
  api_version: '2024-06-20',
  created: 1764230725,
  type: 'charge.succeeded',
  livemode: false,
  pending_webhooks: 1,
  request: { id: 'req_8x2LmQ4Tn7vB1s', idempotency_key: '6d1e3c8a-59f4-4b07-9a2e-1f0c7d3b5e21' },
  data: {
    object: {
      id: 'ch_3PqR7sLkdIwHu7ix0cQ4zZ8F',
      object: 'charge',
      amount: 4990,
      amount_captured: 4990,
      currency: 'eur',
      customer: 'cus_QhW2e9Xy7Vb3Rt',
      description: 'Order A-1001',
      paid: true,
      status: 'succeeded',
      receipt_email: 'jane.doe@example.com',
      payment_method: 'pm_1PqR7rLkdIwHu7ixK2m4N6bV',
      billing_details: { address: { city: 'Berlin', country: 'DE', postal_code: '10115' }, name: 'Jane Doe' },
      metadata: { order_id: 'A-1001', cart: '3 items' },
    },
  },
});

/**
 * What a webhook sender puts beside the body. Intake stores them all with the event: none is one of
 * the secret headers it drops (collector.md §5); a signature is not a secret.
 */
export const HEADERS: Record<string, string> = {
  'content-type': 'application/json; charset=utf-8',
  'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
  'stripe-signature': 't=1764230725,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd',
  accept: '*/*; q=0.5, application/xml',
  'cache-control': 'no-cache',
};

/**
 * The same fields as a pixel's query string (GET has no body): the payload's scalar leaves,
 * flattened with dotted keys, so that the GET scenario carries about as many bytes.
 */
export const QUERY = new URLSearchParams(flatten(JSON.parse(PAYLOAD) as Record<string, unknown>)).toString();

function flatten(value: Record<string, unknown>, prefix = ''): [string, string][] {
  return Object.entries(value).flatMap(([key, v]) =>
    typeof v === 'object' && v !== null
      ? flatten(v as Record<string, unknown>, `${prefix}${key}.`)
      : [[`${prefix}${key}`, String(v)] as [string, string]],
  );
}
