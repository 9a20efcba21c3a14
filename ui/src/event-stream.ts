import { errorOf, session } from './api';

export interface StreamHandlers {
  /** The server fixed the stream's starting point: load what came before it now. */
  onReady(): void;
  onEvent(doc: string): void;
  /** More events arrived at once than the stream relays. */
  onSkipped(): void;
}

/**
 * Follows `GET /api/events/stream` until it ends, the signal aborts it or it fails. EventSource
 * cannot send an Authorization header, and a token in the URL would end up in logs and history,
 * so this reads the server-sent events from fetch's body stream instead.
 */
export async function followEvents(search: string, handlers: StreamHandlers, signal: AbortSignal): Promise<void> {
  const response = await fetch(`/api/events/stream${search}`, {
    headers: { authorization: `Bearer ${session.token() ?? ''}`, accept: 'text/event-stream' },
    signal,
    cache: 'no-store',
  });
  if (!response.ok || response.body === null) throw errorOf(response.status, await response.text());

  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = { type: 'message', data: [] as string[] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // The SSE format: lines of `field: value`, `:` comments, a blank line ends an event.
    let end: number;
    while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + (buffer.startsWith('\r\n', end) ? 2 : 1));
      if (line === '') {
        if (event.data.length > 0) dispatch(event.type, event.data.join('\n'), handlers);
        event = { type: 'message', data: [] };
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event.type = text;
        else if (field === 'data') event.data.push(text);
      }
    }
  }
}

function dispatch(type: string, data: string, handlers: StreamHandlers): void {
  if (type === 'ready') handlers.onReady();
  else if (type === 'message') handlers.onEvent(data);
  else if (type === 'skipped') handlers.onSkipped();
  else if (type === 'error') throw new Error((JSON.parse(data) as { detail: string }).detail);
}
