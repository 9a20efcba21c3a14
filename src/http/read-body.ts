import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { IntakeError } from '../domain/errors.js';

/** A request body as read: the bytes (decompressed), or the first `limit` of them if it was larger. */
export interface ReadBody {
  bytes: Buffer;
  tooLarge: boolean;
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
export function readBody(request: IncomingMessage, payload: Readable, limit: number): Promise<ReadBody> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    payload.resume();
    return Promise.resolve({ bytes: Buffer.alloc(0), tooLarge: true });
  }
  const encoding = (request.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  let source: Readable = payload;
  if (encoding !== 'identity' && encoding !== '') {
    const decoder = DECODERS[encoding];
    if (decoder === undefined)
      return Promise.reject(new IntakeError('UNSUPPORTED_ENCODING', 415, `Unsupported content encoding ${encoding}`));
    source = payload.pipe(decoder()) as unknown as Readable;
    payload.on('error', (error) => source.destroy(error));
  }
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
    source.on('error', (error: Error & { code?: string }) =>
      finish(
        error.code?.startsWith('Z_') || source !== payload
          ? new IntakeError('INVALID_ENCODING', 400, `Invalid ${encoding} body`)
          : error,
      ),
    );
  });
}
