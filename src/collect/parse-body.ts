import { TextDecoder } from 'node:util';
import busboy from 'busboy';
import { errors, IntakeError } from '../domain/errors.js';
import { asJsonText, compactJson, jsonShape, splitJsonArray, toJsonText, type JsonText } from '../domain/json-text.js';
import { addField, newFields, parseQuery, type Fields } from './parse-query.js';

/** JSON bodies deeper or with more keys in total are refused (hardening.md §3). */
const MAX_JSON_DEPTH = 64;
const MAX_JSON_KEYS = 10_000;

/** A parsed `Content-Type`: media type lower-cased, parameters by lower-cased name. */
export interface MediaType {
  type: string;
  params: Map<string, string>;
}

export function parseMediaType(header: string | undefined): MediaType | null {
  if (header === undefined || header.trim() === '') return null;
  const [type = '', ...rest] = header.split(';');
  const params = new Map<string, string>();
  for (const part of rest) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    params.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'));
  }
  return { type: type.trim().toLowerCase(), params };
}

type BodyKind = 'json' | 'form' | 'multipart' | 'text' | 'xml';

/**
 * Chooses the parser by media type, ignoring parameters and case (collector.md §2; fix: Tracardi
 * compares the whole header, so `application/json; charset=utf-8` failed).
 */
function bodyKind(media: MediaType | null): BodyKind | null {
  if (media === null) return 'text';
  const { type } = media;
  if (type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'))) return 'json';
  if (type === 'application/x-www-form-urlencoded') return 'form';
  if (type === 'multipart/form-data') return 'multipart';
  if (type === 'application/xml' || type === 'text/xml' || (type.startsWith('application/') && type.endsWith('+xml')))
    return 'xml';
  if (type.startsWith('text/')) return 'text';
  return null;
}

/**
 * Turns a POST body into the properties of one event per element: one for an object, several for
 * a JSON array of objects. Each is JSON text, exactly as sent apart from whitespace.
 */
export async function parseBody(contentType: string | undefined, body: Buffer): Promise<JsonText[]> {
  const media = parseMediaType(contentType);
  const kind = bodyKind(media);
  if (kind === null) throw errors.unsupportedContentType(media?.type ?? '');
  switch (kind) {
    case 'json':
      return parseJson(decodeUtf8(body, 'json'));
    case 'form':
      return [toJsonText(parseQuery(decodeUtf8(body, 'text')))];
    case 'multipart':
      return [toJsonText(await parseMultipart(contentType as string, body))];
    case 'xml':
      return [toJsonText({ body: decodeText(body, media) })];
    case 'text': {
      const text = decodeText(body, media);
      if (text.trim() === '') return [toJsonText({})];
      // Some senders (AWS SNS, for one) label JSON as text/plain.
      const looksLikeJson = /^\s*[[{]/.test(text);
      if (looksLikeJson) {
        try {
          return parseJson(text);
        } catch (error) {
          // Not JSON after all: kept as text below. JSON that breaks the JSON rules is refused.
          if (!(error instanceof IntakeError && error.code === 'INVALID_JSON')) throw error;
        }
      }
      return [toJsonText({ body: text })];
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

function decodeUtf8(body: Buffer, as: 'json' | 'text'): string {
  try {
    return utf8.decode(body);
  } catch {
    throw as === 'json' ? errors.invalidJson('the body is not valid UTF-8') : errors.invalidText('not valid UTF-8');
  }
}

function decodeText(body: Buffer, media: MediaType | null): string {
  const charset = media?.params.get('charset')?.toLowerCase() ?? 'utf-8';
  if (charset === 'utf-8' || charset === 'utf8') return decodeUtf8(body, 'text');
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charset, { fatal: true });
  } catch {
    throw errors.unsupportedCharset(charset);
  }
  if (decoder.encoding === 'windows-1252') return decodeWindows1252(body);
  try {
    return decoder.decode(body);
  } catch {
    throw errors.invalidText(`not valid ${charset}`);
  }
}

/**
 * windows-1252 (also what `iso-8859-1`, `latin1` and `us-ascii` mean on the web): Latin-1, except
 * bytes 0x80–0x9F, which are `€`, `“`, `”` and so on. Node 20.20's TextDecoder decodes those as
 * control characters, so they are mapped here, by the WHATWG Encoding Standard's table.
 */
const WINDOWS_1252_HIGH =
  '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f' +
  '\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';

function decodeWindows1252(body: Buffer): string {
  return body.toString('latin1').replace(/[\u0080-\u009f]/g, (c) => WINDOWS_1252_HIGH[c.charCodeAt(0) - 0x80] as string);
}

/**
 * JSON rules of collector.md §2: empty or `null` → `{}`; object → itself; array of objects → one
 * event each; empty array, non-object elements, or a scalar → 422; invalid JSON → 400.
 */
export function parseJson(text: string): JsonText[] {
  // Checked before parsing: a deeply nested body must not reach the parser (hardening.md §3).
  const shape = jsonShape(text);
  if (text === '' || (shape.spaced && text.trim() === '')) return [toJsonText({})];
  if (shape.depth > MAX_JSON_DEPTH) throw errors.jsonTooComplex(`nested deeper than ${MAX_JSON_DEPTH} levels`);
  if (shape.keys > MAX_JSON_KEYS) throw errors.jsonTooComplex(`more than ${MAX_JSON_KEYS} keys`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw errors.invalidJson(jsonErrorReason(error));
  }
  if (value === null) return [toJsonText({})];
  if (Array.isArray(value)) {
    if (value.length === 0) throw errors.emptyBatch();
    value.forEach((element, i) => {
      if (!isObject(element)) throw errors.batchElementNotObject(i);
    });
    return splitJsonArray(shape.spaced ? compactJson(text) : asJsonText(text));
  }
  if (!isObject(value)) throw errors.propertiesNotObject();
  // Compact JSON as most senders send it is stored as it came, without a second pass over it.
  return [shape.spaced ? compactJson(text) : asJsonText(text)];
}

/**
 * V8 quotes the start of the input in some messages (`Unexpected token 'S', "{"secret": S"... is
 * not valid JSON`); the quote is cut so that an answer never carries the payload (collector.md §4).
 */
function jsonErrorReason(error: unknown): string {
  if (!(error instanceof Error)) return 'unparseable';
  return error.message.replace(/, (\.\.\.)?".*"(\.\.\.)? is not valid JSON$/s, '');
}

function isObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Text fields as for forms; a file part becomes `{filename, contentType, size}`, content dropped. */
interface FilePart {
  filename: string;
  contentType: string;
  size: number;
}

function parseMultipart(contentType: string, body: Buffer): Promise<Fields<string | FilePart>> {
  return new Promise((resolve, reject) => {
    const fields = newFields<string | FilePart>();
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: { 'content-type': contentType },
        defParamCharset: 'utf8',
        limits: { fieldSize: body.length + 1 },
      });
    } catch (error) {
      reject(errors.invalidMultipart(error instanceof Error ? error.message : 'unreadable'));
      return;
    }
    let failed = false;
    const fail = (why: string) => {
      failed = true;
      reject(errors.invalidMultipart(why));
    };
    const reason = (error: unknown) => (error instanceof Error ? error.message : 'unreadable');
    // RFC 7578: every part has a name; one without would be stored under no key at all.
    const named = (name: string | undefined): name is string => (name ? true : (fail('a part has no name'), false));
    parser.on('field', (name, value) => {
      if (named(name)) addField(fields, name, value);
    });
    parser.on('file', (name, stream, info) => {
      let size = 0;
      stream.on('data', (chunk: Buffer) => (size += chunk.length));
      // A form cut off inside a file part ends its stream with an error, which must be ours to
      // answer (400): unhandled, it would stop the process.
      stream.on('error', (error) => fail(reason(error)));
      stream.on('end', () => {
        if (named(name)) addField(fields, name, { filename: info.filename ?? '', contentType: info.mimeType, size });
      });
    });
    parser.on('error', (error) => fail(reason(error)));
    // RFC 2046: a multipart body holds at least one part.
    parser.on('close', () => {
      if (failed) return;
      if (Object.keys(fields).length > 0) resolve(fields);
      else fail('it holds no parts');
    });
    // A body without its closing delimiter was cut short, or is no multipart body at all.
    const boundary = parseMediaType(contentType)?.params.get('boundary');
    if (boundary !== undefined && !body.includes(`--${boundary}--`)) {
      reject(errors.invalidMultipart('the closing boundary is missing'));
      return;
    }
    parser.end(body);
  });
}
