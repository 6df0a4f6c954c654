/**
 * What every Docker-compatible plugin shares: the status codes Docker clients expect for engine errors, applied
 * in the plugin's own scope before the app's error handler writes the body.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { PodserveError, Sentinel } from '../../src/errors.js';

/**
 * The engine reports illegal state changes as Podman's libpod handlers answer them (500, "container state
 * improper"); Docker answers 409 Conflict, and docker clients only show the status for some calls.
 */
export function toCompatError(err: unknown): unknown {
  if (err instanceof PodserveError && err.causeText === Sentinel.stateImproper && err.status === 500) {
    const mapped = new PodserveError(409, err.causeText, err.message);
    mapped.stack = err.stack;
    return mapped;
  }
  return err;
}

/** Installs the compat error mapping in this plugin's scope; the app's handler still writes the body. */
export function useCompatErrors(app: FastifyInstance): void {
  app.setErrorHandler((err, _request, reply) => {
    // "Already in that state" is an empty 304, as Docker and Podman answer for start and stop.
    if (err instanceof PodserveError && err.status === 304) return reply.code(304).send();
    // Rethrowing hands the error to the parent scope's handler (Podman's error body).
    throw toCompatError(err);
  });
}

/** Headers the app's hooks set on the reply, for responses written straight to the socket. */
export function replyHeaders(reply: FastifyReply): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}
