/**
 * Libpod exec endpoints: create a session in a running container, start it (hijacked like attach, or detached),
 * inspect it, resize its terminal. Podman serves both trees with the same handlers; the compat twins
 * (routes/compat/attach-exec.ts) reuse these.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as Q from '../../schemas/container-queries.js';
import { execCreateSchema, execStartSchema, type ExecCreateBody, type ExecStartBody } from '../../schemas/exec.js';
import { execSessions, type TerminalSize } from '../../src/engine/exec.js';
import type { ExecSession } from '../../src/engine/types.js';
import { PodserveError } from '../../src/errors.js';
import { serveHijacked, type ResizeQuery } from './attach.js';

type NameParams = { name: string };
type IdParams = { id: string };

export const execIdParams = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1 } },
  required: ['id'],
} as const;

/** Podman's InspectExecSession, in its field order. */
export function execInspectBody(s: ExecSession): Record<string, unknown> {
  const [entrypoint, ...args] = s.config.cmd;
  return {
    CanRemove: s.state.status === 'stopped',
    ContainerID: s.containerId,
    DetachKeys: s.config.detachKeys ?? '',
    ExitCode: s.state.exitCode,
    ID: s.id,
    OpenStderr: s.config.attachStderr,
    OpenStdin: s.config.attachStdin,
    OpenStdout: s.config.attachStdout,
    Running: s.state.status === 'running',
    Pid: s.state.pid,
    ProcessConfig: {
      arguments: args.length > 0 ? args : null,
      entrypoint: entrypoint ?? '',
      privileged: s.config.privileged,
      tty: s.config.tty,
      user: s.config.user,
    },
  };
}

export function execCreateHandler(app: FastifyInstance) {
  return async (request: FastifyRequest<{ Params: NameParams; Body: ExecCreateBody | undefined }>, reply: FastifyReply): Promise<FastifyReply> => {
    const body = request.body ?? {};
    const id = execSessions(app.engine).create(request.params.name, {
      cmd: body.Cmd ?? [],
      env: body.Env ?? undefined,
      workDir: body.WorkingDir ?? undefined,
      user: body.User ?? undefined,
      tty: body.Tty ?? undefined,
      attachStdin: body.AttachStdin ?? undefined,
      attachStdout: body.AttachStdout ?? undefined,
      attachStderr: body.AttachStderr ?? undefined,
      privileged: body.Privileged ?? undefined,
      detachKeys: body.DetachKeys ?? undefined,
    });
    return reply.code(201).send({ Id: id });
  };
}

/** The initial terminal size of a start body: Podman's h/w, or Docker's ConsoleSize [h, w] (which 4.3.1 ignored). */
function startSize(body: ExecStartBody): TerminalSize | undefined {
  if (!body.Tty) return undefined;
  const height = body.h ?? body.ConsoleSize?.[0] ?? 0;
  const width = body.w ?? body.ConsoleSize?.[1] ?? 0;
  return height > 0 || width > 0 ? { height, width } : undefined;
}

export function execStartHandler(app: FastifyInstance) {
  return async (request: FastifyRequest<{ Params: IdParams; Body: ExecStartBody | undefined }>, reply: FastifyReply): Promise<FastifyReply | void> => {
    const body = request.body;
    if (body === undefined || body === null) {
      throw new PodserveError(400, 'EOF', `failed to decode parameters for ${request.raw.url ?? request.url}: EOF`);
    }
    const execs = execSessions(app.engine);
    if (body.Detach) {
      await execs.startDetached(request.params.id);
      // A 200 with a plain-text newline, as Podman's WriteResponse(w, 200, "") writes it.
      return reply.code(200).type('text/plain; charset=us-ascii').send('\n');
    }
    await serveHijacked(request, reply, (connect) => execs.startAttached(request.params.id, { size: startSize(body) }, connect));
  };
}

export function execInspectHandler(app: FastifyInstance) {
  return async (request: FastifyRequest<{ Params: IdParams }>): Promise<Record<string, unknown>> =>
    execInspectBody(await execSessions(app.engine).inspect(request.params.id));
}

export function execResizeHandler(app: FastifyInstance) {
  return async (request: FastifyRequest<{ Params: IdParams; Querystring: ResizeQuery }>, reply: FastifyReply): Promise<FastifyReply> => {
    const { h, w, running } = request.query;
    await execSessions(app.engine).resize(request.params.id, { height: h ?? 0, width: w ?? 0 }, running ?? false);
    // Not a 204, though nothing is written: Podman answers 201 here.
    return reply.code(201).send();
  };
}

export default async function libpodExecRoutes(app: FastifyInstance): Promise<void> {
  // Created here so the container lifecycle knows about exec sessions from the start.
  execSessions(app.engine);

  app.post<{ Params: NameParams; Body: ExecCreateBody | undefined }>(
    '/libpod/containers/:name/exec',
    { schema: { params: Q.nameParams, body: execCreateSchema } },
    execCreateHandler(app),
  );
  app.post<{ Params: IdParams; Body: ExecStartBody | undefined }>(
    '/libpod/exec/:id/start',
    { schema: { params: execIdParams, body: execStartSchema } },
    execStartHandler(app),
  );
  app.get<{ Params: IdParams }>('/libpod/exec/:id/json', { schema: { params: execIdParams } }, execInspectHandler(app));
  app.post<{ Params: IdParams; Querystring: ResizeQuery }>(
    '/libpod/exec/:id/resize',
    { schema: { params: execIdParams, querystring: Q.resizeQuery } },
    execResizeHandler(app),
  );
}
