/**
 * Mounts every API group. Each plugin registers its paths once; the `/v{version}/` prefix is stripped before
 * routing (src/http/version-prefix.ts), so each path is served bare and versioned.
 */
import type { FastifyInstance } from 'fastify';
import systemRoutes from './system.js';
import libpodContainerRoutes from './libpod/containers.js';
import libpodImageRoutes from './libpod/images.js';
import compatContainerRoutes from './compat/containers.js';
import compatImageRoutes from './compat/images.js';
import compatArchiveRoutes from './compat/archive.js';
import libpodObserveRoutes from './libpod/observe.js';
import compatObserveRoutes from './compat/observe.js';
import libpodAttachRoutes from './libpod/attach.js';
import libpodExecRoutes from './libpod/exec.js';
import compatAttachExecRoutes from './compat/attach-exec.js';
import libpodCheckpointRoutes from './libpod/checkpoint.js';

export async function registerRoutes(app: FastifyInstance): Promise<void> {
  await app.register(systemRoutes);
  await app.register(libpodContainerRoutes);
  await app.register(libpodImageRoutes);
  await app.register(compatContainerRoutes);
  await app.register(compatImageRoutes);
  await app.register(compatArchiveRoutes);
  await app.register(libpodObserveRoutes);
  await app.register(compatObserveRoutes);
  await app.register(libpodAttachRoutes);
  await app.register(libpodExecRoutes);
  await app.register(compatAttachExecRoutes);
  await app.register(libpodCheckpointRoutes);
}
