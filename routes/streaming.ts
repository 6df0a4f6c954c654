/** Helpers for routes whose request or response bodies are streams. */
import type { FastifyInstance } from 'fastify';

/**
 * In this plugin's scope, request bodies are not parsed or buffered whatever their content type: handlers
 * read `request.raw` themselves (image archives, checkpoint tars, container archives). Fastify's body limit
 * does not apply to them; the consumers stream.
 */
export function acceptRawBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));
}
