/**
 * Docker-compatible image endpoints: list, inspect, history, load, save (get), tag, remove, prune and import
 * (create?fromSrc=-). Docker clients put image names with slashes into the path unescaped
 * (`/images/localhost/busybox:latest/json`), so the per-image routes are wildcards split here.
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { BadRequestError, NotFoundError, PodserveError } from '../../src/errors.js';
import { toDockerImageInspect, toDockerListEntry, toHistoryResponse } from '../../src/engine/images.js';
import { imageFilter } from '../shapes/image-filters.js';
import { acceptRawBodies } from '../streaming.js';
import { useCompatErrors } from './scope.js';
import { compatPull, compatPush } from './registry.js';

const bool = { type: 'boolean' } as const;
const str = { type: 'string' } as const;
const strArray = { type: 'array', items: str } as const;
const filters = { type: 'object', additionalProperties: strArray } as const;

type Filters = Record<string, string[]>;

/** `{name}/{action}` of a wildcard path; the name may hold slashes, colons and a digest. */
function splitImagePath(wildcard: string, actions: readonly string[]): { name: string; action: string } | undefined {
  const slash = wildcard.lastIndexOf('/');
  if (slash <= 0) return undefined;
  const action = wildcard.slice(slash + 1);
  if (!actions.includes(action)) return undefined;
  return { name: wildcard.slice(0, slash), action };
}

function noRoute(method: string, path: string): PodserveError {
  return new PodserveError(404, 'Not Found', `no route for ${method} ${path}`);
}

/** Docker's "Loaded image" lines, one JSON message per image (the docker CLI prints each `stream`). */
export function loadedImageMessages(names: readonly string[]): string {
  return names
    .map((n) => JSON.stringify({ stream: n.startsWith('sha256:') ? `Loaded image ID: ${n}\n` : `Loaded image: ${n}\n` }))
    .map((line) => `${line}\n`)
    .join('');
}

/** fromImage plus tag, where the "tag" may be a digest (Podman's mergeNameAndTagOrDigest). */
export function imageReference(name: string, tagOrDigest: string | undefined): string {
  if (!tagOrDigest) return name;
  return `${name}${/^[a-z0-9]+:[a-f0-9]{32,}$/.test(tagOrDigest) ? '@' : ':'}${tagOrDigest}`;
}

export default async function compatImageRoutes(app: FastifyInstance): Promise<void> {
  const engine = app.engine;
  const images = engine.images;
  useCompatErrors(app);
  acceptRawBodies(app);

  /** 404 with the wording docker-py looks for ("No such image"), as Podman's compat inspect answers. */
  const details = (name: string) => {
    try {
      return images.details(name);
    } catch (err) {
      if (err instanceof PodserveError && err.status === 404) {
        const message = `failed to find image ${name}: ${name}: No such image`;
        throw new NotFoundError(message, message);
      }
      throw err;
    }
  };

  app.get<{ Querystring: { all?: boolean; filters?: Filters; filter?: string } }>(
    '/images/json',
    { schema: { querystring: { type: 'object', properties: { all: bool, digests: bool, filter: str, filters, 'shared-size': bool } } } },
    async (request) => {
      const f: Filters = { ...(request.query.filters ?? {}) };
      // API 1.24's `filter=` names a reference.
      if (request.query.filter) f.reference = [...(f.reference ?? []), request.query.filter];
      const matches = imageFilter(f, (n) => images.details(n));
      return images.list(request.query.all ?? false).filter(matches).map(toDockerListEntry);
    },
  );

  app.post<{ Querystring: { quiet?: boolean } }>(
    '/images/load',
    { schema: { querystring: { type: 'object', properties: { quiet: bool } } } },
    async (request, reply) => {
      const result = await images.load(request.raw);
      if (result.names.length === 0) throw new PodserveError(500, 'one or more images are required');
      // Exactly "application/json" (a Buffer, so Fastify adds no charset): the docker client compares the header
      // verbatim to decide the body is a message stream.
      return reply.header('content-type', 'application/json').send(Buffer.from(loadedImageMessages(result.names)));
    },
  );

  app.post<{ Querystring: { all?: boolean; filters?: Filters } }>(
    '/images/prune',
    { schema: { querystring: { type: 'object', properties: { filters } } } },
    async (request) => {
      const { dangling, ...rest } = request.query.filters ?? {};
      // Docker prunes dangling images unless told dangling=false, which means "every unused image".
      const all = (dangling ?? []).some((v) => v === 'false' || v === '0');
      const pruned = await images.prune(all, imageFilter(rest, (n) => images.details(n)));
      return {
        ImagesDeleted: pruned.map((p) => ({ Deleted: p.id })),
        SpaceReclaimed: pruned.reduce((sum, p) => sum + p.size, 0),
      };
    },
  );

  app.post<{ Querystring: { fromSrc?: string; fromImage?: string; repo?: string; tag?: string; changes?: string[]; message?: string; platform?: string } }>(
    '/images/create',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: { fromSrc: str, fromImage: str, repo: str, tag: str, changes: strArray, message: str, platform: str },
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      if (q.fromImage) return compatPull(engine, request, reply, imageReference(q.fromImage, q.tag), q.platform);
      if (!q.fromSrc) throw new BadRequestError('fromSrc or fromImage is required');
      if (q.fromSrc !== '-') throw new BadRequestError('importing from a URL is not supported: send the tarball as the request body with fromSrc=-');
      const [os, architecture, variant] = (q.platform ?? '').split('/');
      const reference = q.repo ? (q.tag ? `${q.repo}:${q.tag}` : q.repo) : undefined;
      const record = await images.import(request.raw, {
        reference,
        changes: q.changes,
        message: q.message,
        os: os || undefined,
        architecture: architecture || undefined,
        variant: variant || undefined,
      });
      const id = `sha256:${record.id}`;
      return { status: id, progress: '', progressDetail: {}, id };
    },
  );

  const sendArchive = (reply: FastifyReply, names: string[]): FastifyReply => {
    for (const n of names) images.resolve(n); // a JSON 404 before the body starts
    const body = new PassThrough();
    images.save(names, 'docker-archive', body).catch((err: unknown) => {
      reply.log.error({ err }, 'image save failed mid-stream');
      body.destroy(err instanceof Error ? err : new Error(String(err)));
    });
    return reply.type('application/x-tar').send(body);
  };

  app.get<{ Querystring: { names?: string[] } }>(
    '/images/get',
    { schema: { querystring: { type: 'object', properties: { names: strArray } } } },
    async (request, reply) => {
      const names = request.query.names ?? [];
      if (names.length === 0) throw new BadRequestError('no images to download', 'no images to download');
      return sendArchive(reply, names);
    },
  );

  app.get<{ Params: { '*': string } }>('/images/*', async (request, reply) => {
    const target = splitImagePath(request.params['*'], ['json', 'history', 'get']);
    if (!target) throw noRoute('GET', request.url.split('?')[0]!);
    switch (target.action) {
      case 'json':
        return toDockerImageInspect(details(target.name));
      case 'history':
        return toHistoryResponse(images.history(target.name));
      default:
        return sendArchive(reply, [target.name]);
    }
  });

  app.post<{ Params: { '*': string }; Querystring: { repo?: string; tag?: string; destination?: string; tlsVerify?: boolean; format?: string } }>(
    '/images/*',
    { schema: { querystring: { type: 'object', properties: { repo: str, tag: str, destination: str, tlsVerify: bool, format: str } } } },
    async (request, reply) => {
      const target = splitImagePath(request.params['*'], ['tag', 'push']);
      if (!target) throw noRoute('POST', request.url.split('?')[0]!);
      if (target.action === 'push') return compatPush(engine, request, reply, target.name); // routes/compat/registry.ts
      images.resolve(target.name);
      if (!request.query.repo) {
        throw new BadRequestError('repo parameter is required to tag an image', 'repo parameter is required to tag an image');
      }
      await images.tag(target.name, request.query.repo, request.query.tag || 'latest');
      return reply.code(201).send();
    },
  );

  app.delete<{ Params: { '*': string }; Querystring: { force?: boolean; noprune?: boolean } }>(
    '/images/*',
    { schema: { querystring: { type: 'object', properties: { force: bool, noprune: bool } } } },
    async (request) => {
      const name = request.params['*'];
      images.resolve(name); // 404 for an unknown image
      const force = request.query.force ?? false;
      const report = await images.remove([name], force, force ? (id) => engine.removeContainersOfImage(id) : undefined);
      if (report.errors.length > 0) throw report.errors[0]!;
      // Docker's order (untagged, then deleted); the IDs are bare as in Podman's compat reply.
      return [...report.untagged.map((u) => ({ Untagged: u })), ...report.deleted.map((d) => ({ Deleted: d }))];
    },
  );
}
