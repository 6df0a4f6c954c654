/**
 * Libpod attach and resize: `POST /libpod/containers/{name}/attach` (hijacked: `101 UPGRADED` when the client
 * asked to upgrade, else `200 OK`, then the raw or multiplexed stream) and `POST /libpod/containers/{name}/resize`.
 * The handlers are shared with the Docker-compatible twins (routes/compat/attach-exec.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Duplex } from 'node:stream';
import * as Q from '../../schemas/container-queries.js';
import { attachContainer, resizeContainer, type ContainerAttachOptions, type StreamSelection } from '../../src/engine/attach.js';
import { hijack } from '../../src/stream/hijack.js';

export interface AttachQuery {
  detachKeys?: string;
  logs?: boolean;
  stream?: boolean;
  stdin?: boolean;
  stdout?: boolean;
  stderr?: boolean;
}

export interface ResizeQuery {
  h?: number;
  w?: number;
  running?: boolean;
}

type NameParams = { name: string };

/**
 * Takes the request's connection over: Fastify stops handling the reply, the hijack header goes out at once, and
 * the bare connection is returned. The connection stays counted by the idle tracker and the stream limit (both
 * hold the request until its response closes, which for a hijacked one is when the socket closes).
 */
export function takeConnection(request: FastifyRequest, reply: FastifyReply): Duplex {
  reply.hijack();
  const { socket } = hijack(request.raw);
  return socket;
}

/**
 * Runs `work` with a `connect` that hijacks the connection. An error before the hijack is rethrown (the app's
 * error handler answers it); after the hijack the engine has already reported it on the connection.
 */
export async function serveHijacked(
  request: FastifyRequest,
  reply: FastifyReply,
  work: (connect: () => Duplex) => Promise<unknown>,
): Promise<void> {
  let hijacked = false;
  try {
    await work(() => {
      hijacked = true;
      return takeConnection(request, reply);
    });
  } catch (err) {
    if (!hijacked) throw err;
    request.log.warn({ err }, 'hijacked stream failed');
  }
}

/** Podman's query rules: none of stdin/stdout/stderr given → all three; `stream` defaults to true. */
export function attachOptionsFromQuery(q: AttachQuery): ContainerAttachOptions {
  const named = q.stdin !== undefined || q.stdout !== undefined || q.stderr !== undefined;
  const streams: StreamSelection | undefined = named ? { stdin: q.stdin ?? false, stdout: q.stdout ?? false, stderr: q.stderr ?? false } : undefined;
  return { streams, detachKeys: q.detachKeys, logs: q.logs ?? false, stream: q.stream ?? true };
}

export function attachHandler(app: FastifyInstance) {
  return async (request: FastifyRequest<{ Params: NameParams; Querystring: AttachQuery }>, reply: FastifyReply): Promise<void> => {
    const options = attachOptionsFromQuery(request.query);
    await serveHijacked(request, reply, (connect) => attachContainer(app.engine, request.params.name, options, connect));
  };
}

export function resizeHandler(app: FastifyInstance) {
  return async (request: FastifyRequest<{ Params: NameParams; Querystring: ResizeQuery }>, reply: FastifyReply): Promise<FastifyReply> => {
    await resizeContainer(app.engine, request.params.name, request.query.h ?? 0, request.query.w ?? 0);
    // Not a 204, though nothing is written: Podman answers 200 for compatibility.
    return reply.code(200).send();
  };
}

export default async function libpodAttachRoutes(app: FastifyInstance): Promise<void> {
  app.post<{ Params: NameParams; Querystring: AttachQuery }>(
    '/libpod/containers/:name/attach',
    { schema: { params: Q.nameParams, querystring: Q.attachQuery } },
    attachHandler(app),
  );

  app.post<{ Params: NameParams; Querystring: ResizeQuery }>(
    '/libpod/containers/:name/resize',
    { schema: { params: Q.nameParams, querystring: Q.resizeQuery } },
    resizeHandler(app),
  );
}
