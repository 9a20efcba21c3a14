import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { JsonText } from '../domain/json-text.js';

/**
 * The longest piece of a page built as one string, in characters (up to three times as many
 * bytes in UTF-8). V8 places a string of more than about 128 KiB in its large-object space, on
 * pages of its own that the process must fault in every time, and writing it to the socket copies
 * it once more into a buffer as large: on a virtual machine whose page faults are slow, a 140 KiB
 * page of events spent more than a millisecond on that alone (docs/performance.md, finding 23).
 * Pieces of this size come from the young generation.
 */
const PIECE_CHARS = 32 * 1024;

/**
 * Sends a page of stored documents as `{"items":[…],"next":…}`, the documents as stored, never
 * parsed. A small page goes as one string; a larger one as a stream of pieces of about
 * `PIECE_CHARS` characters, with its `Content-Length` counted piece by piece, so that no string
 * or buffer of the whole page is made.
 */
export function sendJsonPage(reply: FastifyReply, items: readonly JsonText[], next: string | null): FastifyReply {
  reply.type('application/json; charset=utf-8');
  const parts: string[] = [];
  let piece: string[] = [];
  let chars = 0;
  const add = (text: string) => {
    if (chars > 0 && chars + text.length > PIECE_CHARS) {
      parts.push(piece.join(''));
      piece = [];
      chars = 0;
    }
    piece.push(text);
    chars += text.length;
  };
  add('{"items":[');
  items.forEach((item, i) => add(i === 0 ? item : `,${item}`));
  add(`],"next":${JSON.stringify(next)}}`);
  parts.push(piece.join(''));
  if (parts.length === 1) return reply.send(parts[0]);
  reply.header('content-length', parts.reduce((bytes, part) => bytes + Buffer.byteLength(part), 0));
  return reply.send(Readable.from(parts, { objectMode: false }));
}
