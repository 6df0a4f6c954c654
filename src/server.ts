/**
 * The Fastify application: version prefixes, Podman's headers and error bodies, request ids and logging,
 * idle tracking, and every route plugin. It does not listen (see service.ts), so tests can inject.
 */
import { randomBytes } from 'node:crypto';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type preValidationHookHandler,
} from 'fastify';
import fastifyWebsocket from '@fastify/websocket';
import type { Logger } from 'pino';
import { PodserveError } from './errors.js';
import { installUpgradeDispatcher } from './stream/hijack.js';
import { stripVersionPrefix, type VersionedRequest } from './http/version-prefix.js';
import type { IdleTracker } from './http/idle.js';
import { clientErrorHandler, httpServerOptions, resolveLimits, StreamGate, type HttpLimits } from './http/limits.js';
import { compileOnFirstUse } from './http/lazy-validation.js';
import type { Server as HttpsServer, ServerOptions as HttpsServerOptions } from 'node:https';
import type { ServerOptions as HttpServerOptions } from 'node:http';
import type { FastifyHttpsOptions } from 'fastify';
import { COMPAT_API_VERSION, LIBPOD_API_VERSION } from './version.js';
import type { Engine } from './engine/engine.js';
import { registerRoutes } from '../routes/index.js';
import { normalizeQuery, type QuerySchemaLike } from '../schemas/query.js';

export interface AppOptions {
  engine: Engine;
  logger: Logger;
  idle?: IdleTracker;
  /** Size, time and concurrency limits (src/http/limits.ts); defaults when absent. */
  limits?: Partial<HttpLimits>;
  /** Serve HTTPS with these options (src/http/tls.ts: client certificates required); plain HTTP when absent. */
  https?: HttpsServerOptions;
  /** Counts and caps long-lived requests; the service passes its own to know what is left at shutdown. */
  streams?: StreamGate;
}

declare module 'fastify' {
  interface FastifyInstance {
    engine: Engine;
  }
  interface FastifyRequest {
    /** API version from the `/v{version}/` prefix, when there was one. */
    apiVersion?: string;
  }
}

/** Podman's error body. */
export interface ErrorBody {
  cause: string;
  message: string;
  response: number;
}

export function errorBody(status: number, message: string, cause?: string): ErrorBody {
  return { cause: cause ?? message, message, response: status };
}

/** Sends an error as Podman does: `{"cause","message","response"}` with the given status. */
export function sendError(reply: FastifyReply, status: number, message: string, cause?: string): FastifyReply {
  return reply.code(status).type('application/json').send(errorBody(status, message, cause));
}

/** Random bytes for reference ids, drawn 4 KiB at a time: one call into the CSPRNG per 512 requests, not per request. */
let idPool = Buffer.alloc(0);
let idOffset = 0;

function newReferenceId(): string {
  if (idOffset + 8 > idPool.length) {
    idPool = randomBytes(4096);
    idOffset = 0;
  }
  idOffset += 8;
  return idPool.toString('hex', idOffset - 8, idOffset);
}

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const limits = resolveLimits(opts.limits);
  const serverOptions: FastifyHttpsOptions<HttpsServer> & { http: HttpServerOptions } = {
    // Node's server limits (head size, slowloris) apply to plain HTTP and to HTTPS alike.
    http: httpServerOptions(limits),
    https: opts.https ? { ...httpServerOptions(limits), ...opts.https } : null,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // No socket inactivity or whole-request timeout: they would cut quiet long-lived responses (events, logs -f,
    // attach, wait). Slow request heads are bounded by headersTimeout instead.
    connectionTimeout: 0,
    requestTimeout: 0,
    clientErrorHandler: clientErrorHandler(opts.logger, limits),
    loggerInstance: opts.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'reqId' }),
    // HEAD routes are declared where Podman has them (/_ping); other HEADs are 405s as in Podman.
    exposeHeadRoutes: false,
    genReqId: (req) => {
      const given = req.headers['x-reference-id'];
      return typeof given === 'string' && given.length > 0 && given.length <= 128 ? given : newReferenceId();
    },
    rewriteUrl: (req) => stripVersionPrefix(req as VersionedRequest),
    // Image archives and checkpoint tars arrive as request bodies; they are streamed, never buffered.
    bodyLimit: limits.bodyLimit,
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 1024 },
    // No type coercion: query strings are converted by normalizeQuery (Go rules); bodies must have the right types.
    ajv: {
      customOptions: { coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false },
      // Compile each route schema when first needed, not all at start-up: socket activation pays start-up on every
      // cold connection (src/http/lazy-validation.ts; the service compiles the rest once it serves).
      onCreate: compileOnFirstUse,
    },
    forceCloseConnections: 'idle',
    return503OnClosing: false,
  };
  // An https.Server serves the same IncomingMessage/ServerResponse pairs, so the app's http-typed surface holds.
  const app = Fastify(serverOptions) as unknown as FastifyInstance;
  app.decorate('engine', opts.engine);
  app.addHook('onRequest', (opts.streams ?? new StreamGate(limits.maxStreams)).onRequest);

  // Remember every route's method and path shape, so an existing path asked with the wrong method gets a 405.
  const routeShapes: { method: string; pattern: RegExp }[] = [];
  app.addHook('onRoute', (route) => {
    const pattern = new RegExp(
      '^' + route.url.replace(/[.+^$()|[\]\\]/g, '\\$&').replace(/\*$/, '.*').replace(/:[A-Za-z_]+/g, '[^/]+') + '/?$',
    );
    for (const method of [route.method].flat()) routeShapes.push({ method, pattern });
  });

  // The hooks every request passes through are plain callbacks (no promise per hook and request), and the
  // per-request debug lines are only hooked in when debug logging is on.
  const debugRequests = opts.logger.isLevelEnabled('debug');
  app.addHook('onRequest', (request, reply, done) => {
    const raw = request.raw as VersionedRequest;
    request.apiVersion = raw.apiVersion;
    reply.headers({
      'Api-Version': COMPAT_API_VERSION,
      'Libpod-Api-Version': LIBPOD_API_VERSION,
      Server: `Libpod/${LIBPOD_API_VERSION} (linux)`,
      'X-Reference-Id': request.id,
    });
    if (opts.idle) {
      const end = opts.idle.begin();
      reply.raw.once('close', end);
    }
    if (raw.badApiVersion !== undefined) {
      done(new PodserveError(400, `invalid API version "${raw.badApiVersion}": expected /v{major}.{minor}[.{patch}]/`));
      return;
    }
    if (debugRequests) request.log.debug({ method: request.method, url: request.url }, 'request');
    done();
  });

  // Go-style query strings (case-insensitive keys, strconv.ParseBool booleans, repeated keys, JSON filters),
  // converted before ajv validates them against the route's schema; hooked only into routes that have one.
  app.addHook('onRoute', (route) => {
    const schema = route.schema?.querystring as QuerySchemaLike | undefined;
    if (!schema) return;
    const normalize: preValidationHookHandler = (request, _reply, done) => {
      request.query = normalizeQuery(request.query as Record<string, unknown>, schema);
      done();
    };
    route.preValidation = [normalize, ...[route.preValidation ?? []].flat()];
  });

  // Podman labels JSON exactly `application/json`; the docker CLI compares it literally (image load).
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (reply.getHeader('content-type') === 'application/json; charset=utf-8') reply.header('content-type', 'application/json');
    done(null, payload);
  });

  if (debugRequests) {
    app.addHook('onResponse', (request, reply, done) => {
      request.log.debug(
        { method: request.method, url: request.url, status: reply.statusCode, ms: Number(reply.elapsedTime.toFixed(2)) },
        'request done',
      );
      done();
    });
  }

  app.setErrorHandler((err: FastifyError | PodserveError, request: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof PodserveError) {
      if (err.status >= 500) request.log.error({ err }, 'request failed');
      else request.log.debug({ err: err.message, status: err.status }, 'request refused');
      return sendError(reply, err.status, err.message, err.causeText);
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      const where = fe.validationContext ?? 'request';
      return sendError(reply, 400, `invalid ${where}: ${fe.message}`);
    }
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      return sendError(reply, fe.statusCode, fe.message);
    }
    // Internal errors: the stack goes to the log, never to the wire.
    request.log.error({ err }, 'internal error');
    return sendError(reply, 500, fe.message || 'internal error');
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    if (routeShapes.some((r) => r.method !== request.method && r.pattern.test(path))) {
      return sendError(reply, 405, `method ${request.method} not allowed for ${path}`, 'Method Not Allowed');
    }
    return sendError(reply, 404, `no route for ${request.method} ${path}`, 'Not Found');
  });

  // Podman decodes JSON bodies whatever their Content-Type (podman-remote sends none on some calls):
  // anything that is not declared JSON is parsed as JSON too; an empty body is no body.
  const parseJsonLeniently = (_request: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void): void => {
    const text = (body as string).trim();
    if (text === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(new PodserveError(400, `decode(): ${(err as Error).message}`), undefined);
    }
  };
  app.addContentTypeParser('*', { parseAs: 'string' }, parseJsonLeniently);
  // An empty body labelled JSON is no body, as Podman reads it (Fastify would refuse it with a 400).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJsonLeniently);

  // Docker's WebSocket attach (routes/compat/attach-exec.ts). The plugin takes every 'upgrade' of the server;
  // installStreamDispatcher gives attach/exec upgrades (Upgrade: tcp) back to their routes.
  await app.register(fastifyWebsocket, { options: { maxPayload: limits.bodyLimit } });
  await app.register(registerRoutes);
  return app;
}

/**
 * Call right after `await app.ready()` (once @fastify/websocket has put its 'upgrade' listener on the server):
 * `Upgrade: websocket` goes to the WebSocket routes, every other upgrade and the attach/exec-start requests are
 * detached from Node's HTTP parser before their route runs, so a hijacked stream keeps the stdin bytes that
 * arrived with the request (src/stream/hijack.ts). Returns the uninstaller.
 */
export function installStreamDispatcher(app: FastifyInstance, logger: Logger): () => void {
  return installUpgradeDispatcher(app.server, { logger: logger.child({ part: 'upgrade' }) });
}
