/**
 * Docker-compatible registry endpoints, called from routes/compat/images.ts (which owns the `/images/create`
 * and `/images/{name}/…` paths): `POST /images/create?fromImage=` (pull) and `POST /images/{name}/push`.
 * Both answer 200 at once and then stream Docker JSON messages; errors arrive in-band as
 * `{"errorDetail":{"message":…},"error":…}`, as Podman 4.3.1's compat handlers write them.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Engine } from '../../src/engine/engine.js';
import { Sentinel } from '../../src/errors.js';
import { dockerProgressMessage, openJsonStream, queryHas, registryAuth } from '../shapes/registry.js';

function errorMessage(message: string): Record<string, unknown> {
  return { errorDetail: { message }, error: message };
}

/**
 * Docker's pull. Short names are Docker Hub names (Podman's NormalizeToDockerHub for Docker clients);
 * `platform` is `os[/arch[/variant]]`. Loopback registries are reached over plain HTTP when they do not speak
 * TLS, as the Docker daemon allows by default.
 */
export async function compatPull(engine: Engine, request: FastifyRequest, reply: FastifyReply, reference: string, platform?: string): Promise<FastifyReply> {
  const auth = registryAuth(request);
  const [os, arch, variant] = (platform ?? '').split('/');
  const out = openJsonStream(reply);
  try {
    const ids = await engine.pullImages(reference, 'always', {
      auth,
      dockerHubDefault: true,
      os: os || undefined,
      arch: arch || undefined,
      variant: variant || undefined,
      onEvent: (event) => out.write(dockerProgressMessage(event, 'pull')),
      signal: out.signal,
    });
    out.write({ status: 'Download complete', progressDetail: {}, id: ids[0]!.slice(0, 12) });
  } catch (err) {
    out.write({ progressDetail: {}, ...errorMessage(err instanceof Error ? err.message : String(err)) });
  }
  out.end();
  return reply;
}

/** Docker's push of `name` (plus `tag`), to `destination` when given, else to the name itself. */
export async function compatPush(
  engine: Engine,
  request: FastifyRequest<{ Querystring: { tag?: string; destination?: string; tlsVerify?: boolean; format?: string } }>,
  reply: FastifyReply,
  name: string,
): Promise<FastifyReply> {
  const q = request.query;
  const imageName = q.tag ? `${name}:${q.tag}` : name;
  const auth = registryAuth(request);
  const out = openJsonStream(reply);
  out.write({ status: `The push refers to repository [${imageName}]` });
  try {
    const result = await engine.images.push(imageName, queryHas(request, 'destination') ? (q.destination ?? '') : imageName, {
      auth,
      tlsVerify: q.tlsVerify,
      format: q.format,
      onEvent: (event) => out.write(dockerProgressMessage(event, 'push')),
      signal: out.signal,
    });
    out.write({ status: `${q.tag || 'latest'}: digest: ${result.digest} size: ${result.manifestSize}` });
  } catch (err) {
    let message = err instanceof Error ? err.message : String(err);
    if (message.endsWith(Sentinel.noSuchImage)) message = `An image does not exist locally with the tag: ${imageName}`;
    out.write(errorMessage(message));
  }
  out.end();
  return reply;
}
