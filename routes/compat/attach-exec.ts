/**
 * Docker-compatible attach, resize and exec endpoints (the libpod handlers, with Docker's status codes for state
 * errors), and Docker's WebSocket attach `GET /containers/{name}/attach/ws`, which Podman does not have.
 *
 * WebSocket attach, for browser terminals (xterm.js's attach addon connects straight to it):
 *   ws+unix:///run/podserve/podserve.sock:/containers/<name>/attach/ws?stream=1&stdin=1&stdout=1&stderr=1[&logs=1][&detachKeys=…]
 * Output arrives as binary messages carrying the raw bytes (never multiplexed, as Docker: with a TTY exactly
 * what the terminal shows, without one stdout and stderr interleaved); input may be text or binary messages.
 * Query defaults follow Podman's attach: `stream` true, all three streams when none is named. The detach
 * sequence ends the session with a last message `Error: detached from container\n` and a normal close.
 * Everything that can be refused is checked before the upgrade and answered as HTTP (unknown container 404,
 * bad detach keys 400, a paused container 409); the container is initialised and its attach socket connected
 * before the upgrade completes, so a client that starts the container once the socket is open loses no output.
 * Failures later on end the session with a last message `Error: …`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, type WebSocket } from 'ws';
import * as Q from '../../schemas/container-queries.js';
import { execCreateSchema, execStartSchema, type ExecCreateBody, type ExecStartBody } from '../../schemas/exec.js';
import { prepareAttach, runAttach, type PreparedAttach } from '../../src/engine/attach.js';
import { attachHandler, attachOptionsFromQuery, resizeHandler, type AttachQuery, type ResizeQuery } from '../libpod/attach.js';
import { execCreateHandler, execIdParams, execInspectHandler, execResizeHandler, execStartHandler } from '../libpod/exec.js';
import { useCompatErrors } from './scope.js';

type NameParams = { name: string };
type IdParams = { id: string };

/** Close code for a failure after the stream started (RFC 6455 "internal error"). */
const WS_INTERNAL_ERROR = 1011;
const WS_NORMAL_CLOSURE = 1000;

/** The WebSocket as a byte stream (binary messages out); ending it closes with 1000 rather than without a code. */
function websocketDuplex(socket: WebSocket): Duplex {
  const duplex = createWebSocketStream(socket);
  const closeSocket = duplex._final.bind(duplex);
  duplex._final = (callback: (error?: Error | null) => void): void => {
    if (socket.readyState === socket.OPEN) socket.close(WS_NORMAL_CLOSURE);
    closeSocket(callback);
  };
  return duplex;
}

export default async function compatAttachExecRoutes(app: FastifyInstance): Promise<void> {
  useCompatErrors(app);

  app.post<{ Params: NameParams; Querystring: AttachQuery }>(
    '/containers/:name/attach',
    { schema: { params: Q.nameParams, querystring: Q.attachQuery } },
    attachHandler(app),
  );
  app.post<{ Params: NameParams; Querystring: ResizeQuery }>(
    '/containers/:name/resize',
    { schema: { params: Q.nameParams, querystring: Q.resizeQuery } },
    resizeHandler(app),
  );

  // Attaches prepared before the upgrade, waiting for their WebSocket handler.
  const prepared = new WeakMap<IncomingMessage, PreparedAttach>();
  app.get<{ Params: NameParams; Querystring: AttachQuery }>(
    '/containers/:name/attach/ws',
    {
      websocket: true,
      schema: { params: Q.nameParams, querystring: Q.attachQuery },
      // Before the upgrade: refusals are HTTP answers to it, and the container is initialised and its attach
      // socket connected before the client sees the connection open (so attach-then-start loses nothing).
      preHandler: async (request: FastifyRequest<{ Params: NameParams; Querystring: AttachQuery }>) => {
        const options = { ...attachOptionsFromQuery(request.query), multiplexed: false };
        const ready = await prepareAttach(app.engine, request.params.name, options);
        prepared.set(request.raw, ready);
        // An upgrade that never completes leaves nobody to close the attach connection.
        request.raw.socket.once('close', () => ready.release());
      },
    },
    (socket: WebSocket, request: FastifyRequest<{ Params: NameParams; Querystring: AttachQuery }>) => {
      const ready = prepared.get(request.raw);
      prepared.delete(request.raw);
      if (!ready) {
        socket.close(WS_INTERNAL_ERROR, 'attach was not prepared');
        return;
      }
      const client = websocketDuplex(socket);
      client.on('error', (err) => request.log.debug({ err }, 'websocket attach stream error'));
      void runAttach(app.engine, ready, client);
    },
  );

  app.post<{ Params: NameParams; Body: ExecCreateBody | undefined }>(
    '/containers/:name/exec',
    { schema: { params: Q.nameParams, body: execCreateSchema } },
    execCreateHandler(app),
  );
  app.post<{ Params: IdParams; Body: ExecStartBody | undefined }>(
    '/exec/:id/start',
    { schema: { params: execIdParams, body: execStartSchema } },
    execStartHandler(app),
  );
  app.get<{ Params: IdParams }>('/exec/:id/json', { schema: { params: execIdParams } }, execInspectHandler(app));
  app.post<{ Params: IdParams; Querystring: ResizeQuery }>(
    '/exec/:id/resize',
    { schema: { params: execIdParams, querystring: Q.resizeQuery } },
    execResizeHandler(app),
  );
}
