/**
 * docker cp and docker export: HEAD/GET/PUT /containers/{name}/archive (the path-stat header, a tar of a path,
 * extraction of a tar into a directory) and GET /containers/{name}/export (the whole root filesystem).
 * A running container is reached through its mount namespace (/proc/<pid>/root, so tmpfs and bind mounts are
 * seen as the container sees them); a stopped one through its root filesystem, mounted for the request.
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { PodserveError } from '../../src/errors.js';
import * as Q from '../../schemas/container-queries.js';
import { acceptRawBodies } from '../streaming.js';
import { encodePathStat, extractArchive, PATH_STAT_HEADER, statInRoot, writeArchive } from './container-fs.js';
import { useCompatErrors } from './scope.js';

type NameParams = { name: string };

const archiveQuery = {
  type: 'object',
  properties: { path: { type: 'string' } },
} as const;

const putQuery = {
  type: 'object',
  properties: { path: { type: 'string' }, copyUIDGID: { type: 'boolean' }, noOverwriteDirNonDir: { type: 'boolean' }, rename: { type: 'string' } },
} as const;

/** File system errors as HTTP errors: a read-only root is Docker's 403, a missing path a 404. */
function fsError(err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EROFS') return new PodserveError(403, 'container rootfs is marked read-only', `${(err as Error).message}: container rootfs is marked read-only`);
  if (code === 'ENOENT') return new PodserveError(404, 'no such file or directory', (err as Error).message);
  return err;
}

export default async function compatArchiveRoutes(app: FastifyInstance): Promise<void> {
  const engine = app.engine;
  useCompatErrors(app);
  acceptRawBodies(app);

  /** Runs `use` with the root the container's processes see, kept available until `use` settles. */
  const withRoot = async <T>(nameOrId: string, use: (root: string) => Promise<T>): Promise<T> => {
    const c = engine.containers.lookup(nameOrId);
    try {
      if ((c.state.status === 'running' || c.state.status === 'paused') && c.state.pid > 0) return await use(`/proc/${c.state.pid}/root`);
      return await engine.withContainerRootfs(c.id, (rootfs) => use(rootfs));
    } catch (err) {
      throw fsError(err);
    }
  };

  app.head<{ Params: NameParams; Querystring: { path?: string } }>(
    '/containers/:name/archive',
    { schema: { params: Q.nameParams, querystring: archiveQuery } },
    async (request, reply) => {
      const source = await withRoot(request.params.name, (root) => statInRoot(root, request.query.path ?? ''));
      return reply.header(PATH_STAT_HEADER, encodePathStat(source.stat)).code(200).send();
    },
  );

  app.get<{ Params: NameParams; Querystring: { path?: string } }>(
    '/containers/:name/archive',
    { schema: { params: Q.nameParams, querystring: archiveQuery } },
    async (request, reply) => {
      await withRoot(request.params.name, async (root) => {
        const source = await statInRoot(root, request.query.path ?? '');
        const body = new PassThrough();
        reply.header(PATH_STAT_HEADER, encodePathStat(source.stat)).type('application/x-tar').send(body);
        // The root must stay mounted until the archive is written: wait for it here.
        await writeArchive(body, source.hostPath, source.stat.name).catch((err: unknown) => {
          request.log.warn({ err }, 'container archive failed mid-stream');
          body.destroy(err instanceof Error ? err : new Error(String(err)));
        });
      });
      return reply;
    },
  );

  app.put<{ Params: NameParams; Querystring: { path?: string; copyUIDGID?: boolean; noOverwriteDirNonDir?: boolean; rename?: string } }>(
    '/containers/:name/archive',
    { schema: { params: Q.nameParams, querystring: putQuery } },
    async (request, reply) => {
      const q = request.query;
      if (q.rename) throw new PodserveError(400, 'rename is not supported', 'renaming entries while copying into a container is not supported');
      await withRoot(request.params.name, (root) =>
        extractArchive(root, q.path || '/', request.raw, { copyUidGid: q.copyUIDGID ?? false, noOverwriteDirNonDir: q.noOverwriteDirNonDir ?? false }),
      );
      return reply.code(200).send();
    },
  );

  app.get<{ Params: NameParams }>('/containers/:name/export', { schema: { params: Q.nameParams } }, async (request, reply) => {
    await engine.withContainerRootfs(request.params.name, async (rootfs) => {
      const body = new PassThrough();
      reply.type('application/x-tar').send(body);
      await writeArchive(body, rootfs, '').catch((err: unknown) => {
        request.log.warn({ err }, 'container export failed mid-stream');
        body.destroy(err instanceof Error ? err : new Error(String(err)));
      });
    });
    return reply;
  });
}
