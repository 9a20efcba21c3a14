import type { MappingItem } from './mapping.js';

/** A built-in event type: what it means and what it copies into the profile. */
export interface EventTypeEntry {
  type: string;
  description: string;
  mapping: MappingItem[];
}

const contactAndPii: MappingItem[] = [
  { event: 'properties.email.main', profile: 'data.contact.email.main', op: 'set' },
  { event: 'properties.email.business', profile: 'data.contact.email.business', op: 'set' },
  { event: 'properties.email.private', profile: 'data.contact.email.private', op: 'set' },
  { event: 'properties.phone.main', profile: 'data.contact.phone.main', op: 'set' },
  { event: 'properties.phone.mobile', profile: 'data.contact.phone.mobile', op: 'set' },
  { event: 'properties.phone.business', profile: 'data.contact.phone.business', op: 'set' },
  { event: 'properties.phone.whatsapp', profile: 'data.contact.phone.whatsapp', op: 'set' },
  { event: 'properties.pk', profile: 'data.identifier.pk', op: 'set' },
  { event: 'properties.id', profile: 'data.identifier.id', op: 'set' },
  { event: 'properties.firstname', profile: 'data.pii.firstname', op: 'set' },
  { event: 'properties.lastname', profile: 'data.pii.lastname', op: 'set' },
];

/** A purchase: its total adds to the revenue, and its e-mail fills a missing contact. */
const revenue: MappingItem[] = [
  { event: 'properties.total', profile: 'stats.revenue', op: 'increment' },
  { event: 'properties.email', profile: 'data.contact.email.main', op: 'set_if_missing' },
];

/**
 * The event types Intake knows (identity.md §3), as data: `GET /api/event-types` lists them, and
 * an event of one of these types copies the listed values into its profile.
 */
export const EVENT_TYPE_CATALOGUE: readonly EventTypeEntry[] = [
  { type: 'identification', description: 'The visitor said who they are (e-mail, phone, ids, name).', mapping: contactAndPii },
  { type: 'sign-in', description: 'The customer signed in.', mapping: contactAndPii },
  { type: 'sign-up', description: 'A new customer account was created.', mapping: contactAndPii },
  { type: 'profile-update', description: "The customer's details changed.", mapping: contactAndPii },
  {
    type: 'consent-update',
    description: 'Consents were granted or revoked (lists of consent names).',
    mapping: [
      { event: 'properties.granted', profile: 'consents.granted', op: 'append' },
      { event: 'properties.revoked', profile: 'consents.revoked', op: 'append' },
    ],
  },
  {
    type: 'order-completed',
    description: 'An order was placed; its total adds to the revenue.',
    mapping: revenue,
  },
  {
    type: 'checkout-completed',
    description: 'A checkout finished; its total adds to the revenue.',
    mapping: revenue,
  },
  {
    type: 'payment-received',
    description: 'A payment arrived; its amount adds to the payments total.',
    mapping: [
      { event: 'properties.amount', profile: 'stats.payments', op: 'increment' },
      { event: 'properties.email', profile: 'data.contact.email.main', op: 'set_if_missing' },
    ],
  },
  {
    type: 'page-view',
    description: 'A page was viewed; its category joins the interests.',
    mapping: [
      { event: 'properties.url', profile: 'traits.last_page', op: 'set' },
      { event: 'properties.category', profile: 'interests.categories', op: 'append' },
    ],
  },
];
