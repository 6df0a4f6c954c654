/** Libpod image endpoints: load, import, pull, push, list, inspect, exists, history, tag, untag, remove, prune, save. */
import type { FastifyInstance } from 'fastify';
import { PassThrough } from 'node:stream';
import { BadRequestError, PodserveError } from '../../src/errors.js';
import { toHistoryResponse, toLibpodImageData, toLibpodListEntry } from '../../src/engine/images.js';
import { imageFilter } from '../shapes/image-filters.js';
import { acceptRawBodies } from '../streaming.js';
import { openJsonStream, registryAuth } from '../shapes/registry.js';

const bool = { type: 'boolean' } as const;
const str = { type: 'string' } as const;
const strArray = { type: 'array', items: str } as const;
const filters = { type: 'object', additionalProperties: strArray } as const;
const nameParams = { type: 'object', properties: { name: { type: 'string', minLength: 1 } }, required: ['name'] } as const;

type NameParams = { name: string };
type Format = 'docker-archive' | 'oci-archive';

/** Podman's pull policies and their aliases (containers/common config.ParsePullPolicy). */
function pullPolicy(policy: string): 'always' | 'missing' | 'never' | 'newer' {
  switch (policy.toLowerCase()) {
    case 'always':
      return 'always';
    case 'missing':
    case 'ifmissing':
    case 'ifnotpresent':
      return 'missing';
    case 'never':
      return 'never';
    case 'newer':
    case 'ifnewer':
      return 'newer';
    default:
      throw new BadRequestError(`unsupported pull policy "${policy}"`);
  }
}

function archiveFormat(format: string | undefined): Format {
  const f = format ?? 'docker-archive';
  if (f === 'docker-archive' || f === 'oci-archive') return f;
  throw new BadRequestError(`unsupported format "${f}": podserve writes docker-archive and oci-archive`);
}

export default async function libpodImageRoutes(app: FastifyInstance): Promise<void> {
  const images = app.engine.images;
  acceptRawBodies(app);

  app.post('/libpod/images/load', async (request) => {
    const result = await images.load(request.raw);
    return { Names: result.names };
  });

  app.post<{ Querystring: { reference?: string; changes?: string[]; message?: string; url?: string } }>(
    '/libpod/images/import',
    { schema: { querystring: { type: 'object', properties: { reference: str, changes: strArray, message: str, url: str } } } },
    async (request) => {
      if (request.query.url) throw new BadRequestError('importing from a URL is not supported: send the tarball as the request body');
      const record = await images.import(request.raw, {
        reference: request.query.reference || undefined,
        changes: request.query.changes,
        message: request.query.message,
      });
      return { Id: `sha256:${record.id}` };
    },
  );

  type PullQuery = { reference?: string; policy?: string; quiet?: boolean; tlsVerify?: boolean; allTags?: boolean; Arch?: string; OS?: string; Variant?: string };
  app.post<{ Querystring: PullQuery }>(
    '/libpod/images/pull',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: { reference: str, policy: str, quiet: bool, tlsVerify: bool, allTags: bool, Arch: str, OS: str, Variant: str },
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      if (!q.reference) throw new PodserveError(500, 'reference parameter cannot be empty');
      const policy = pullPolicy(q.policy ?? 'always');
      const auth = registryAuth(request);
      // Podman's ImagePullReport stream: {"stream": line}…, then {"images": [ids], "id": last} or {"error": msg}.
      const out = openJsonStream(reply);
      try {
        const ids = await app.engine.pullImages(q.reference, policy, {
          tlsVerify: q.tlsVerify,
          auth,
          allTags: q.allTags,
          os: q.OS || undefined,
          arch: q.Arch || undefined,
          variant: q.Variant || undefined,
          progress: q.quiet ? undefined : (line) => out.write({ stream: line }),
          signal: out.signal,
        });
        out.write({ images: ids, id: ids[ids.length - 1] });
      } catch (err) {
        out.write({ error: err instanceof Error ? err.message : String(err) });
      }
      out.end();
      return reply;
    },
  );

  // podman-remote puts the image name into the path unescaped (`/libpod/images/localhost/busybox:latest/push`),
  // so push is a wildcard route, as Podman's `{name:.*}/push`.
  type PushQuery = { destination?: string; tlsVerify?: boolean; format?: string; compressionFormat?: string; quiet?: boolean; all?: boolean; removeSignatures?: boolean };
  app.post<{ Params: { '*': string }; Querystring: PushQuery }>(
    '/libpod/images/*',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: { destination: str, tlsVerify: bool, format: str, compressionFormat: str, quiet: bool, all: bool, removeSignatures: bool },
        },
      },
    },
    async (request, reply) => {
      const path = request.params['*'];
      if (!path.endsWith('/push') || path.length <= '/push'.length) {
        throw new PodserveError(404, 'Not Found', `no route for POST ${request.url.split('?')[0]}`);
      }
      const q = request.query;
      let source = path.slice(0, -'/push'.length);
      if (source.includes('%')) source = decodeURIComponent(source);
      const destination = q.destination || source;
      const auth = registryAuth(request);
      const options = {
        tlsVerify: q.tlsVerify,
        auth,
        format: q.format,
        compressionFormat: q.compressionFormat,
      };
      // Quiet is the default (older clients expected no body): the outcome is the status, as in Podman 4.3.1.
      if (q.quiet ?? true) {
        try {
          await images.push(source, destination, options);
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          throw new BadRequestError(`pushing image "${destination}": ${message}`, err instanceof PodserveError ? err.causeText : message);
        }
        return reply.type('text/plain; charset=us-ascii').send('\n');
      }
      const out = openJsonStream(reply);
      try {
        await images.push(source, destination, { ...options, progress: (line) => out.write({ stream: line }), signal: out.signal });
      } catch (err) {
        out.write({ error: err instanceof Error ? err.message : String(err) });
      }
      out.end();
      return reply;
    },
  );

  app.get<{ Querystring: { all?: boolean; filters?: Record<string, string[]> } }>(
    '/libpod/images/json',
    { schema: { querystring: { type: 'object', properties: { all: bool, filters } } } },
    async (request) => {
      const matches = imageFilter(request.query.filters ?? {}, (n) => images.details(n));
      return images.list(request.query.all ?? false).filter(matches).map(toLibpodListEntry);
    },
  );

  app.get<{ Params: NameParams }>('/libpod/images/:name/json', { schema: { params: nameParams } }, async (request) =>
    toLibpodImageData(images.details(request.params.name)),
  );

  app.get<{ Params: NameParams }>('/libpod/images/:name/exists', { schema: { params: nameParams } }, async (request, reply) => {
    images.resolve(request.params.name);
    return reply.code(204).send();
  });

  app.get<{ Params: NameParams }>('/libpod/images/:name/history', { schema: { params: nameParams } }, async (request) =>
    toHistoryResponse(images.history(request.params.name)),
  );

  app.post<{ Params: NameParams; Querystring: { repo?: string; tag?: string } }>(
    '/libpod/images/:name/tag',
    { schema: { params: nameParams, querystring: { type: 'object', properties: { repo: str, tag: str } } } },
    async (request, reply) => {
      if (!request.query.repo) throw new BadRequestError('repo is required: invalid argument');
      await images.tag(request.params.name, request.query.repo, request.query.tag || 'latest');
      return reply.code(201).send();
    },
  );

  app.post<{ Params: NameParams; Querystring: { repo?: string; tag?: string } }>(
    '/libpod/images/:name/untag',
    { schema: { params: nameParams, querystring: { type: 'object', properties: { repo: str, tag: str } } } },
    async (request, reply) => {
      await images.untag(request.params.name, request.query.repo || undefined, request.query.tag || undefined);
      return reply.code(201).send();
    },
  );

  const removeContainers = (imageId: string): Promise<void> => app.engine.removeContainersOfImage(imageId);

  app.delete<{ Params: NameParams; Querystring: { force?: boolean } }>(
    '/libpod/images/:name',
    { schema: { params: nameParams, querystring: { type: 'object', properties: { force: bool } } } },
    async (request) => {
      images.resolve(request.params.name); // 404 for an unknown image, as Podman
      const report = await images.remove([request.params.name], request.query.force ?? false, removeContainers);
      if (report.errors.length > 0) throw report.errors[0]!;
      return { Deleted: report.deleted, Untagged: report.untagged, ExitCode: 0, Errors: [] };
    },
  );

  app.delete<{ Querystring: { images?: string[]; force?: boolean; all?: boolean; ignore?: boolean } }>(
    '/libpod/images/remove',
    { schema: { querystring: { type: 'object', properties: { images: strArray, force: bool, all: bool, ignore: bool } } } },
    async (request) => {
      const q = request.query;
      const names = q.all ? images.list(true).map((d) => d.record.id) : (q.images ?? []);
      const report = await images.remove(names, q.force ?? false, q.force ? removeContainers : undefined);
      const errors = q.ignore ? report.errors.filter((e) => e.status !== 404) : report.errors;
      const exitCode = errors.length === 0 ? 0 : errors.some((e) => e.status === 409) ? 2 : 1;
      return {
        ...(report.deleted.length ? { Deleted: report.deleted } : {}),
        ...(report.untagged.length ? { Untagged: report.untagged } : {}),
        ExitCode: exitCode,
        Errors: errors.map((e) => e.message),
      };
    },
  );

  app.post<{ Querystring: { all?: boolean; filters?: Record<string, string[]> } }>(
    '/libpod/images/prune',
    { schema: { querystring: { type: 'object', properties: { all: bool, external: bool, filters } } } },
    async (request) => {
      const matches = imageFilter(request.query.filters ?? {}, (n) => images.details(n));
      const pruned = await images.prune(request.query.all ?? false, matches);
      return pruned.map((p) => ({ Id: p.id, Size: p.size, Err: null }));
    },
  );

  const sendArchive = async (
    reply: import('fastify').FastifyReply,
    names: string[],
    format: Format,
  ): Promise<void> => {
    for (const n of names) images.resolve(n); // fail with a JSON 404 before the body starts
    const body = new PassThrough();
    reply.type('application/x-tar').send(body);
    images.save(names, format, body).catch((err: unknown) => {
      reply.log.error({ err }, 'image save failed mid-stream');
      body.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  };

  app.get<{ Params: NameParams; Querystring: { format?: string; compress?: boolean } }>(
    '/libpod/images/:name/get',
    { schema: { params: nameParams, querystring: { type: 'object', properties: { format: str, compress: bool } } } },
    async (request, reply) => {
      await sendArchive(reply, [request.params.name], archiveFormat(request.query.format));
      return reply;
    },
  );

  app.get<{ Querystring: { references?: string[]; format?: string; compress?: boolean } }>(
    '/libpod/images/export',
    { schema: { querystring: { type: 'object', properties: { references: strArray, format: str, compress: bool } } } },
    async (request, reply) => {
      const names = request.query.references ?? [];
      if (names.length === 0) throw new PodserveError(400, 'no images given to export: use references=');
      await sendArchive(reply, names, archiveFormat(request.query.format));
      return reply;
    },
  );
}
