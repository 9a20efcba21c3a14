import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errors, IntakeError } from '../domain/errors.js';

/**
 * Maps every error to `{"detail": ...}` (api.md, collector.md §7): named IntakeErrors by their
 * status, Fastify's own 4xx errors by theirs, schema failures to 422, anything else to a 500 that
 * names only the request id (the details go to the log).
 */
export function installErrorHandling(app: FastifyInstance, bodyLimit: number): void {
  app.setErrorHandler(errorReply(bodyLimit));
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ detail: 'Not found' }));
}

/**
 * The error answer itself; also Fastify's `frameworkErrors`, so that errors raised before routing
 * (a malformed escape in the path) get the same `{"detail"}` body instead of Fastify's own.
 */
export function errorReply(bodyLimit: number) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const known = toIntakeError(error, bodyLimit);
    if (known !== null) {
      if (known.status >= 500) request.log.warn({ code: known.code }, known.message);
      const body = known.status >= 500 ? { detail: known.message, id: request.id } : { detail: known.message };
      return reply.code(known.status).headers(known.headers).send(body);
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.code(500).send({ detail: 'Internal error', id: request.id });
  };
}

function toIntakeError(error: FastifyError, bodyLimit: number): IntakeError | null {
  if (error instanceof IntakeError) return error;
  if (error.validation) {
    const where = error.validationContext ?? 'request';
    const first = error.validation[0];
    const path = first?.instancePath ? first.instancePath : '';
    return errors.invalidField(`${where}${path} ${first?.message ?? 'is invalid'}`);
  }
  switch (error.code) {
    // The sender hung up before its body arrived: no one hears the answer, and it is not ours.
    case 'ECONNRESET':
      return errors.clientAborted();
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return errors.bodyTooLarge(bodyLimit);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new IntakeError(error.code, 415, 'Unsupported or malformed content type');
    case 'FST_ERR_BAD_URL':
      return errors.malformedPath();
  }
  const status = error.statusCode;
  if (status !== undefined && status >= 400 && status < 500) return new IntakeError(error.code, status, error.message);
  return null;
}
