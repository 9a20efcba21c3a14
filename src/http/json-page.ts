import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { JsonText } from '../domain/json-text.js';

/**
 * The size of the buffers a large page is written into. V8 places a string of more than about
 * 128 KiB in its large-object space, on pages of its own that the process must fault in every
 * time, and the allocator maps a buffer that large afresh: on a virtual machine whose page faults
 * are slow, a 140 KiB page of events spent more than a millisecond on that alone
 * (docs/performance.md, finding 23). Buffers of this size are reused by the allocator.
 */
const PIECE_BYTES = 32 * 1024;

/**
 * Sends a page of stored documents as `{"items":[…],"next":…}`, the documents as stored, never
 * parsed. A small page goes as one string; a larger one as a stream of buffers of about
 * `PIECE_BYTES`, the documents encoded straight into them (finding 34): no string of the page,
 * nor of a piece of it, is made, so a page of 140 KiB no longer puts as much again on the young
 * generation, whose collections are what the slowest reads wait for.
 */
export function sendJsonPage(reply: FastifyReply, items: readonly JsonText[], next: string | null): FastifyReply {
  reply.type('application/json; charset=utf-8');
  const texts = ['{"items":[', ...items.flatMap((item, i) => (i === 0 ? [item] : [',', item])), `],"next":${JSON.stringify(next)}}`];
  const sizes = texts.map((text) => Buffer.byteLength(text));
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total <= PIECE_BYTES) return reply.send(texts.join(''));
  const pieces: Buffer[] = [];
  let piece = Buffer.allocUnsafe(PIECE_BYTES);
  let used = 0;
  texts.forEach((text, i) => {
    const size = sizes[i]!;
    if (used + size > piece.length) {
      if (used > 0) pieces.push(piece.subarray(0, used));
      piece = Buffer.allocUnsafe(Math.max(PIECE_BYTES, size));
      used = 0;
    }
    used += piece.write(text, used);
  });
  pieces.push(piece.subarray(0, used));
  reply.header('content-length', total);
  return reply.send(Readable.from(pieces, { objectMode: false }));
}
