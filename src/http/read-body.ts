import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { errors, type IntakeError } from '../domain/errors.js';

/**
 * A request body as read: the bytes (decompressed), or the first `limit` of them if it was larger.
 * A body whose `Content-Encoding` is unknown or does not decode is kept as it arrived (up to the
 * limit), with the refusal: the pipeline refuses the request and quarantines those bytes.
 */
export interface ReadBody {
  bytes: Buffer;
  tooLarge: boolean;
  refusal?: IntakeError;
}

const DECODERS: Record<string, () => NodeJS.ReadWriteStream> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

/**
 * Reads a collector request body with the limit applied while reading, never after buffering it
 * whole (hardening.md §3): a `Content-Length` over the limit is refused before a byte is read,
 * and a gzip/deflate/br body is decompressed with the limit on the decompressed bytes, so a zip
 * bomb stops at the limit. Past the limit, reading stops and `tooLarge` is set: the pipeline then
 * refuses the request (413) and quarantines what was read.
 */
export function readBody(
  headers: { 'content-length'?: string | undefined; 'content-encoding'?: string | undefined },
  payload: Readable,
  limit: number,
): Promise<ReadBody> {
  const declared = Number(headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    payload.resume();
    return Promise.resolve({ bytes: Buffer.alloc(0), tooLarge: true });
  }
  const encoding = (headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  let source: Readable = payload;
  if (encoding !== 'identity' && encoding !== '') {
    const decoder = DECODERS[encoding];
    if (decoder === undefined)
      return readAll(payload, limit).then((raw) => ({
        ...raw,
        refusal: errors.unsupportedEncoding(encoding),
      }));
    source = payload.pipe(decoder()) as unknown as Readable;
  }
  // What arrived, kept beside the decoded bytes while it fits the limit: a body that does not
  // decode is quarantined as it came.
  const raw: Buffer[] = [];
  let rawSize = 0;
  if (source !== payload)
    payload.on('data', (chunk: Buffer) => {
      if (rawSize + chunk.length <= limit) raw.push(chunk);
      rawSize += chunk.length;
    });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: ReadBody | Error) => {
      if (done) return;
      done = true;
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    source.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        chunks.push(chunk.subarray(0, chunk.length - (size - limit)));
        if (source !== payload) source.destroy();
        payload.unpipe();
        payload.resume();
        finish({ bytes: Buffer.concat(chunks), tooLarge: true });
        return;
      }
      chunks.push(chunk);
    });
    source.on('end', () => finish({ bytes: Buffer.concat(chunks), tooLarge: false }));
    if (source === payload) {
      payload.on('error', finish);
      return;
    }
    // The sender hanging up fails the request as it is (an abort), whatever the decoder says.
    payload.on('error', (error) => {
      finish(error);
      source.destroy();
    });
    source.on('error', () => {
      if (payload.errored !== null) return finish(payload.errored);
      const refusal = errors.invalidEncoding(encoding);
      // The rest of what the sender sends, to the limit, belongs to what is kept.
      payload.unpipe();
      const kept = () => finish({ bytes: Buffer.concat(raw), tooLarge: rawSize > limit, refusal });
      if (payload.readableEnded) return kept();
      payload.on('end', kept);
      payload.on('error', kept);
      payload.resume();
    });
  });
}

/** The bytes of a stream as they come, the first `limit` of them; the rest is read and dropped. */
function readAll(stream: Readable, limit: number): Promise<ReadBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      if (size < limit) chunks.push(chunk.subarray(0, limit - size));
      size += chunk.length;
    });
    stream.on('end', () => resolve({ bytes: Buffer.concat(chunks), tooLarge: size > limit }));
    stream.on('error', reject);
    if (stream.readableEnded) resolve({ bytes: Buffer.concat(chunks), tooLarge: size > limit });
  });
}
