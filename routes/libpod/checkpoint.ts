/**
 * Checkpoint and restore (libpod only, as in Podman 4.3.1's pkg/api/handlers/libpod/containers.go):
 *
 *   POST /libpod/containers/{name}/checkpoint  → 200 {"Id","RawInput","runtime_checkpoint_duration","criu_statistics"},
 *        or with export=true the checkpoint archive as the body (Podman's Content-Type for it, verbatim)
 *   POST /libpod/containers/{name}/restore     → 200 {"Id","RawInput","runtime_restore_duration","criu_statistics"};
 *        with import=true the request body is the archive and {name} is ignored (podman-remote sends "import")
 *
 * Every failure before the archive starts is a JSON error: 404 unknown container, 500 for state and CRIU errors.
 */
import type { FastifyInstance } from 'fastify';
import { PodserveError } from '../../src/errors.js';
import { acceptRawBodies } from '../streaming.js';

const bool = { type: 'boolean' } as const;
const str = { type: 'string' } as const;

const nameParams = {
  type: 'object',
  properties: { name: { type: 'string', minLength: 1 } },
  required: ['name'],
} as const;

const checkpointQuery = {
  type: 'object',
  properties: {
    keep: bool,
    leaveRunning: bool,
    tcpEstablished: bool,
    export: bool,
    ignoreRootFS: bool,
    ignoreVolumes: bool,
    preCheckpoint: bool,
    withPrevious: bool,
    fileLocks: bool,
    printStats: bool,
    createImage: str,
  },
} as const;

const restoreQuery = {
  type: 'object',
  properties: {
    keep: bool,
    tcpEstablished: bool,
    import: bool,
    name: str,
    ignoreRootFS: bool,
    ignoreVolumes: bool,
    ignoreStaticIP: bool,
    ignoreStaticMAC: bool,
    printStats: bool,
    fileLocks: bool,
    publishPorts: { anyOf: [str, { type: 'array', items: str }] },
    pod: str,
  },
} as const;

interface CheckpointQuery {
  keep?: boolean;
  leaveRunning?: boolean;
  tcpEstablished?: boolean;
  export?: boolean;
  ignoreRootFS?: boolean;
  ignoreVolumes?: boolean;
  preCheckpoint?: boolean;
  withPrevious?: boolean;
  fileLocks?: boolean;
  printStats?: boolean;
  createImage?: string;
}

interface RestoreQuery {
  keep?: boolean;
  tcpEstablished?: boolean;
  import?: boolean;
  name?: string;
  ignoreRootFS?: boolean;
  ignoreVolumes?: boolean;
  ignoreStaticIP?: boolean;
  ignoreStaticMAC?: boolean;
  printStats?: boolean;
  fileLocks?: boolean;
  publishPorts?: string | string[];
  pod?: string;
}

export default async function libpodCheckpointRoutes(app: FastifyInstance): Promise<void> {
  const checkpoints = app.engine.checkpoints;
  // The restore body is a checkpoint archive, read as a stream.
  acceptRawBodies(app);

  app.post<{ Params: { name: string }; Querystring: CheckpointQuery }>(
    '/libpod/containers/:name/checkpoint',
    { schema: { params: nameParams, querystring: checkpointQuery } },
    async (request, reply) => {
      const q = request.query;
      if (q.createImage) {
        throw new PodserveError(500, 'checkpoint images (createImage) are not supported by podserve; use export=true');
      }
      const result = await checkpoints.checkpoint(request.params.name, {
        keep: q.keep,
        leaveRunning: q.leaveRunning,
        tcpEstablished: q.tcpEstablished,
        export: q.export,
        ignoreRootFS: q.ignoreRootFS,
        ignoreVolumes: q.ignoreVolumes,
        preCheckpoint: q.preCheckpoint,
        withPrevious: q.withPrevious,
        fileLocks: q.fileLocks,
        printStats: q.printStats,
      });
      if (!result.archive) return result.report;
      // Podman serves the exported file with this (odd) type: utils.WriteResponse's *os.File case.
      reply.header('Content-Type', 'application/octet; charset=us-ascii');
      return reply.send(result.archive);
    },
  );

  app.post<{ Params: { name: string }; Querystring: RestoreQuery }>(
    '/libpod/containers/:name/restore',
    { schema: { params: nameParams, querystring: restoreQuery } },
    async (request) => {
      const q = request.query;
      if (q.pod) throw new PodserveError(500, 'restoring into a pod is not supported by podserve (it has no pods)');
      const ports = typeof q.publishPorts === 'string' ? q.publishPorts.split(/\s+/).filter(Boolean) : (q.publishPorts ?? []);
      if (ports.length > 0) throw new PodserveError(500, 'publishing ports on restore is not supported by podserve');
      const opts = {
        keep: q.keep,
        tcpEstablished: q.tcpEstablished,
        ignoreRootFS: q.ignoreRootFS,
        ignoreVolumes: q.ignoreVolumes,
        ignoreStaticIP: q.ignoreStaticIP,
        ignoreStaticMAC: q.ignoreStaticMAC,
        printStats: q.printStats,
        fileLocks: q.fileLocks,
        name: q.name || undefined,
      };
      if (q.import) return checkpoints.restoreFromArchive(request.raw, opts);
      // In place: `name` only applies to imports (Podman ignores it here too).
      request.raw.resume();
      return checkpoints.restore(request.params.name, { ...opts, name: undefined });
    },
  );
}
