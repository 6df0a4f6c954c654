/**
 * Docker-compatible container endpoints: create, list, inspect, lifecycle, wait, remove, rename, update, prune.
 * Same engine as the libpod routes; only the request and reply shapes (and a few status codes) are Docker's.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { dockerCreateQuerySchema, dockerCreateSchema, dockerUpdateSchema, type DockerCreateBody, type DockerUpdateBody } from '../../schemas/compat-containers.js';
import * as Q from '../../schemas/container-queries.js';
import { BadRequestError, NotFoundError, PodserveError, Sentinel } from '../../src/errors.js';
import { dockerResources, dockerToSpecgen } from '../../src/spec/dockerToSpecgen.js';
import type { Container } from '../../src/engine/types.js';
import { dockerInspect, dockerListEntry } from '../shapes/containers.js';
import { dockerWaitCondition, dockerWaitOutcome } from '../shapes/compat-wait.js';
import { replyHeaders, useCompatErrors } from './scope.js';

type NameParams = { name: string };

const SIGKILL = 9;

const isActive = (c: Container | undefined): boolean => c?.state.status === 'running' || c?.state.status === 'paused';

export default async function compatContainerRoutes(app: FastifyInstance): Promise<void> {
  const engine = app.engine;
  useCompatErrors(app);
  // Docker's bodies are JSON whatever the client labels them (Podman decodes them regardless of Content-Type).
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text) as unknown);
    } catch (err) {
      done(new BadRequestError(`invalid JSON body: ${(err as Error).message}`), undefined);
    }
  });

  const noContent = async (reply: FastifyReply, work: Promise<unknown>): Promise<FastifyReply> => {
    await work;
    return reply.code(204).send();
  };

  app.post<{ Body: DockerCreateBody; Querystring: { name?: string } }>(
    '/containers/create',
    { schema: { body: dockerCreateSchema, querystring: dockerCreateQuerySchema } },
    async (request, reply) => {
      const image = request.body?.Image;
      // A 404 here is what makes the docker CLI pull and retry.
      if (image && !engine.images.exists(image)) throw new NotFoundError(Sentinel.noSuchImage, `No such image: ${image}`);
      const spec = dockerToSpecgen(request.body ?? {}, { name: request.query.name || undefined });
      const created = await engine.containers.create(spec);
      return reply.code(201).send({ Id: created.id, Warnings: created.warnings });
    },
  );

  app.get<{ Querystring: { all?: boolean; limit?: number; size?: boolean; filters?: Record<string, string[]> } }>(
    '/containers/json',
    { schema: { querystring: Q.listQuery } },
    async (request) => {
      const q = request.query;
      const limit = q.limit ?? 0;
      // As Docker: a limit lists stopped containers too, newest first.
      let list = engine.listContainers(q.filters ?? {}, (q.all ?? false) || limit > 0).reverse();
      if (limit > 0) list = list.slice(0, limit);
      return Promise.all(list.map(async (c) => dockerListEntry(c, q.size ? await engine.containerSize(c) : undefined)));
    },
  );

  app.get<{ Params: NameParams; Querystring: { size?: boolean } }>(
    '/containers/:name/json',
    { schema: { params: Q.nameParams, querystring: Q.inspectQuery } },
    async (request) => {
      const c = engine.containers.lookup(request.params.name);
      const size = request.query.size ? await engine.containerSize(c) : undefined;
      return dockerInspect(c, { execIds: engine.execIdsOf(c.id), sizeRw: size?.rw, sizeRootFs: size?.rootFs });
    },
  );

  app.post<{ Params: NameParams; Querystring: { detachKeys?: string } }>(
    '/containers/:name/start',
    { schema: { params: Q.nameParams, querystring: Q.startQuery } },
    (request, reply) => noContent(reply, engine.containers.start(request.params.name)),
  );

  app.post<{ Params: NameParams; Querystring: { t?: number } }>(
    '/containers/:name/stop',
    { schema: { params: Q.nameParams, querystring: Q.stopQuery } },
    (request, reply) => noContent(reply, engine.containers.stop(request.params.name, request.query.t)),
  );

  app.post<{ Params: NameParams; Querystring: { t?: number } }>(
    '/containers/:name/restart',
    { schema: { params: Q.nameParams, querystring: Q.restartQuery } },
    // Without t, Docker uses the container's stop timeout (Podman 4.3.1's compat handler used 0).
    (request, reply) => noContent(reply, engine.containers.restart(request.params.name, request.query.t)),
  );

  app.post<{ Params: NameParams; Querystring: { signal?: string } }>(
    '/containers/:name/kill',
    { schema: { params: Q.nameParams, querystring: Q.killQuery } },
    async (request, reply) => {
      const signal = engine.containers.killSignal(request.query.signal || 'KILL');
      const before = engine.containers.lookup(request.params.name);
      await engine.containers.kill(before.id, signal);
      // Docker answers a SIGKILL only once the container is gone. A frozen (paused) process only dies when
      // thawed, so there is nothing to wait for then.
      if (signal === SIGKILL && before.state.status === 'running') {
        const abort = new AbortController();
        reply.raw.once('close', () => abort.abort());
        await engine.containers.waitFor(before.id, (c) => !isActive(c), abort.signal);
      }
      return reply.code(204).send();
    },
  );

  app.post<{ Params: NameParams }>('/containers/:name/pause', { schema: { params: Q.nameParams } }, (request, reply) =>
    noContent(reply, engine.containers.pause(request.params.name)),
  );

  app.post<{ Params: NameParams }>('/containers/:name/unpause', { schema: { params: Q.nameParams } }, (request, reply) =>
    noContent(reply, engine.containers.unpause(request.params.name)),
  );

  app.post<{ Params: NameParams; Querystring: { condition?: string } }>(
    '/containers/:name/wait',
    { schema: { params: Q.nameParams, querystring: Q.compatWaitQuery } },
    async (request, reply) => {
      const condition = dockerWaitCondition(request.query.condition);
      const c = engine.containers.lookup(request.params.name);
      const abort = new AbortController();
      reply.raw.once('close', () => abort.abort());
      // Subscribe before anything is sent: docker calls wait before start, and a short-lived container may be
      // gone by the time the client reads the headers.
      const outcome = dockerWaitOutcome(engine.containers, c, condition, abort.signal);
      // The docker CLI blocks until it sees the response headers, so they go out now; the body follows the exit.
      reply.hijack();
      reply.raw.writeHead(200, { ...replyHeaders(reply), 'Content-Type': 'application/json' });
      reply.raw.flushHeaders();
      const body = await outcome;
      if (body !== undefined && !reply.raw.destroyed) reply.raw.end(`${JSON.stringify(body)}\n`);
      else reply.raw.destroy();
    },
  );

  app.delete<{ Params: NameParams; Querystring: { force?: boolean; v?: boolean; link?: boolean } }>(
    '/containers/:name',
    { schema: { params: Q.nameParams, querystring: Q.removeQuery } },
    async (request, reply) => {
      if (request.query.link) throw new BadRequestError('link is not supported', 'link is not supported');
      // Docker's force kills at once, without the stop signal and timeout.
      const force = request.query.force ?? false;
      await engine.containers.remove(request.params.name, { force, timeoutSec: force ? 0 : undefined });
      return reply.code(204).send();
    },
  );

  app.post<{ Params: NameParams; Querystring: { name: string } }>(
    '/containers/:name/rename',
    { schema: { params: Q.nameParams, querystring: Q.renameQuery } },
    (request, reply) => noContent(reply, engine.containers.rename(request.params.name, request.query.name)),
  );

  app.post<{ Params: NameParams; Body: DockerUpdateBody | null }>(
    '/containers/:name/update',
    { schema: { params: Q.nameParams, body: dockerUpdateSchema } },
    async (request) => {
      const body = request.body ?? {};
      const warnings: string[] = [];
      if (body.RestartPolicy?.Name) warnings.push('podserve cannot change the restart policy of an existing container: ignored');
      await engine.containers.updateResources(request.params.name, { ...dockerResources(body, { defaultSwap: false }) });
      return { Warnings: warnings };
    },
  );

  app.post<{ Querystring: { filters?: Record<string, string[]> } }>(
    '/containers/prune',
    { schema: { querystring: Q.pruneQuery } },
    async (request) => {
      const pruned = await engine.pruneContainers(request.query.filters ?? {});
      const failed = pruned.filter((p) => p.error !== undefined);
      // Docker stops at the first failure; like Podman, report them all in one error.
      if (failed.length > 0) throw new PodserveError(500, failed.map((p) => `${p.id}: ${p.error}`).join('; '));
      return {
        ContainersDeleted: pruned.length ? pruned.map((p) => p.id) : null,
        SpaceReclaimed: pruned.reduce((sum, p) => sum + p.size, 0),
      };
    },
  );
}
