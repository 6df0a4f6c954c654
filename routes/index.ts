/**
 * Mounts every API group. Each plugin registers its paths once; the `/v{version}/` prefix is stripped before
 * routing (src/http/version-prefix.ts), so each path is served bare and versioned.
 */
import type { FastifyInstance } from 'fastify';
import systemRoutes from './system.js';

export async function registerRoutes(app: FastifyInstance): Promise<void> {
  await app.register(systemRoutes);
}
