/** Libpod container endpoints: lifecycle, inspect, list, rename, update, prune. */
import type { FastifyInstance } from 'fastify';
import { specGeneratorSchema, containerUpdateSchema, type SpecGenerator } from '../../schemas/containers.js';
import * as Q from '../../schemas/container-queries.js';
import { PodserveError } from '../../src/errors.js';
import { libpodInspect, libpodListEntry } from '../shapes/containers.js';

type NameParams = { name: string };

/** Container states Podman's wait accepts; "stopped" also matches "exited", as in libpod. */
const WAIT_CONDITIONS = ['configured', 'created', 'running', 'stopped', 'paused', 'exited', 'removing', 'stopping'];

export default async function libpodContainerRoutes(app: FastifyInstance): Promise<void> {
  const engine = app.engine;

  app.post<{ Body: SpecGenerator }>(
    '/libpod/containers/create',
    { schema: { body: specGeneratorSchema } },
    async (request, reply) => {
      const created = await engine.containers.create(request.body);
      return reply.code(201).send({ Id: created.id, Warnings: created.warnings });
    },
  );

  app.get<{ Querystring: { all?: boolean; limit?: number; last?: number; size?: boolean; filters?: Record<string, string[]> } }>(
    '/libpod/containers/json',
    { schema: { querystring: Q.listQuery } },
    async (request) => {
      const q = request.query;
      let list = engine.listContainers(q.filters ?? {}, q.all ?? false);
      const last = q.last ?? q.limit ?? 0;
      if (last > 0) list = list.slice(-last);
      const shaped = await Promise.all(
        list.map(async (c) => libpodListEntry(c, q.size ? await engine.containerSize(c) : undefined)),
      );
      return shaped.reverse();
    },
  );

  app.get<{ Params: NameParams; Querystring: { size?: boolean } }>(
    '/libpod/containers/:name/json',
    { schema: { params: Q.nameParams, querystring: Q.inspectQuery } },
    async (request) => {
      const c = engine.containers.lookup(request.params.name);
      const size = request.query.size ? await engine.containerSize(c) : undefined;
      return libpodInspect(c, { execIds: engine.execIdsOf(c.id), sizeRw: size?.rw, sizeRootFs: size?.rootFs });
    },
  );

  app.get<{ Params: NameParams }>('/libpod/containers/:name/exists', { schema: { params: Q.nameParams } }, async (request, reply) => {
    engine.containers.lookup(request.params.name);
    return reply.code(204).send();
  });

  const noContent = async <T>(reply: { code: (n: number) => { send: () => unknown } }, work: Promise<T>): Promise<unknown> => {
    try {
      await work;
      return reply.code(204).send();
    } catch (err) {
      if (err instanceof PodserveError && err.status === 304) return reply.code(304).send();
      throw err;
    }
  };

  app.post<{ Params: NameParams }>('/libpod/containers/:name/init', { schema: { params: Q.nameParams } }, (request, reply) =>
    noContent(reply, engine.containers.init(request.params.name)),
  );

  app.post<{ Params: NameParams; Querystring: { detachKeys?: string } }>(
    '/libpod/containers/:name/start',
    { schema: { params: Q.nameParams, querystring: Q.startQuery } },
    (request, reply) => noContent(reply, engine.containers.start(request.params.name)),
  );

  app.post<{ Params: NameParams; Querystring: { timeout?: number; t?: number; ignore?: boolean } }>(
    '/libpod/containers/:name/stop',
    { schema: { params: Q.nameParams, querystring: Q.stopQuery } },
    async (request, reply) => {
      const { timeout, t, ignore } = request.query;
      try {
        return await noContent(reply, engine.containers.stop(request.params.name, timeout ?? t));
      } catch (err) {
        // ignore=true: a container that is already gone is not an error (podman stop --ignore).
        if (ignore && err instanceof PodserveError && err.status === 404) return reply.code(204).send();
        throw err;
      }
    },
  );

  app.post<{ Params: NameParams; Querystring: { signal?: string } }>(
    '/libpod/containers/:name/kill',
    { schema: { params: Q.nameParams, querystring: Q.killQuery } },
    (request, reply) => noContent(reply, engine.containers.kill(request.params.name, request.query.signal ?? 'SIGKILL')),
  );

  app.post<{ Params: NameParams; Querystring: { t?: number; timeout?: number } }>(
    '/libpod/containers/:name/restart',
    { schema: { params: Q.nameParams, querystring: Q.restartQuery } },
    (request, reply) => noContent(reply, engine.containers.restart(request.params.name, request.query.t ?? request.query.timeout)),
  );

  app.post<{ Params: NameParams }>('/libpod/containers/:name/pause', { schema: { params: Q.nameParams } }, (request, reply) =>
    noContent(reply, engine.containers.pause(request.params.name)),
  );

  app.post<{ Params: NameParams }>('/libpod/containers/:name/unpause', { schema: { params: Q.nameParams } }, (request, reply) =>
    noContent(reply, engine.containers.unpause(request.params.name)),
  );

  app.post<{ Params: NameParams; Querystring: { condition?: string[] } }>(
    '/libpod/containers/:name/wait',
    { schema: { params: Q.nameParams, querystring: Q.waitQuery } },
    async (request, reply) => {
      const conditions = request.query.condition?.length ? request.query.condition : ['stopped', 'exited'];
      for (const cond of conditions) {
        if (!WAIT_CONDITIONS.includes(cond)) {
          throw new PodserveError(400, `invalid condition: "${cond}" is not a valid container state`);
        }
      }
      const abort = new AbortController();
      request.raw.once('close', () => abort.abort());
      const code = await engine.waitForConditions(request.params.name, conditions, abort.signal);
      return reply.type('application/json').send(`${code}\n`);
    },
  );

  app.delete<{ Params: NameParams; Querystring: { force?: boolean; timeout?: number; ignore?: boolean } }>(
    '/libpod/containers/:name',
    { schema: { params: Q.nameParams, querystring: Q.removeQuery } },
    async (request) => {
      const { force, timeout, ignore } = request.query;
      try {
        const id = await engine.containers.remove(request.params.name, { force, timeoutSec: timeout });
        return [{ Id: id, RawInput: request.params.name }];
      } catch (err) {
        if (ignore && err instanceof PodserveError && err.status === 404) return [];
        throw err;
      }
    },
  );

  app.post<{ Params: NameParams; Querystring: { name: string } }>(
    '/libpod/containers/:name/rename',
    { schema: { params: Q.nameParams, querystring: Q.renameQuery } },
    async (request, reply) => {
      await engine.containers.rename(request.params.name, request.query.name);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: NameParams; Body: Record<string, unknown> }>(
    '/libpod/containers/:name/update',
    { schema: { params: Q.nameParams, body: containerUpdateSchema } },
    async (request, reply) => {
      const c = await engine.containers.updateResources(request.params.name, request.body ?? {});
      return reply.code(201).type('text/plain; charset=utf-8').send(c.id);
    },
  );

  app.post<{ Querystring: { filters?: Record<string, string[]> } }>(
    '/libpod/containers/prune',
    { schema: { querystring: Q.pruneQuery } },
    async (request) => {
      const pruned = await engine.pruneContainers(request.query.filters ?? {});
      return pruned.map((p) => ({ Id: p.id, Size: p.size, Err: p.error ?? null }));
    },
  );
}
