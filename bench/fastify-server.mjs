// The framework's own share: the least Fastify can do per webhook, configured as Intake configures
// it for collector requests (logger on, no access lines, every body read as raw bytes), with a
// route that parses the JSON body and answers a Tracardi-shaped body through a response schema.
// Intake cannot be faster than this; the gap between it and bare-server.mjs is Fastify's alone.
import Fastify from 'fastify';

const app = Fastify({ logger: { level: 'warn' } });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

const id = { type: 'object', properties: { id: { type: ['string', 'null'] } } };
const response = {
  200: {
    type: 'object',
    properties: {
      task: { type: 'string' },
      ux: { type: 'array' },
      response: { type: 'object' },
      events: { type: 'array', items: { type: 'string' } },
      profile: id,
      session: id,
      errors: { type: 'array' },
      warnings: { type: 'array' },
    },
  },
};

app.post('/collect/:event_type/:source_id', { schema: { response } }, async (request) => {
  JSON.parse(request.body.toString('utf8'));
  return { task: 't', ux: [], response: {}, events: ['e'], profile: { id: null }, session: { id: null }, errors: [], warnings: [] };
});

await app.listen({ port: Number(process.argv[2] ?? 0), host: '127.0.0.1' });
process.stdout.write(`listening on ${app.server.address().port}\n`);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
