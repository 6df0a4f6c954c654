/**
 * Docker-compatible observation endpoints: logs (unframed for terminal containers), events (Docker's action
 * names), stats (Docker's StatsJSON) and top (`ps -ef` by default). The handlers are libpod's, as in Podman.
 */
import type { FastifyInstance } from 'fastify';
import { ConflictError } from '../../src/errors.js';
import { TopError } from '../../src/engine/top.js';
import {
  eventsQuery,
  logsQuery,
  serveContainerStats,
  serveEvents,
  serveLogs,
  serveTop,
  statsQuery,
  topQuery,
  type EventsQuery,
  type LogsQuery,
  type StatsQuery,
  type TopQuery,
} from '../libpod/observe.js';
import { useCompatErrors } from './scope.js';

type NameParams = { name: string };

const nameParams = { type: 'object', properties: { name: { type: 'string', minLength: 1 } }, required: ['name'] } as const;

export default async function compatObserveRoutes(app: FastifyInstance): Promise<void> {
  const engine = app.engine;
  useCompatErrors(app);

  app.get<{ Params: NameParams; Querystring: LogsQuery }>(
    '/containers/:name/logs',
    { schema: { params: nameParams, querystring: logsQuery } },
    (request, reply) => serveLogs(engine, request, reply, false),
  );

  app.get<{ Querystring: EventsQuery }>('/events', { schema: { querystring: eventsQuery } }, (request, reply) =>
    serveEvents(engine, request, reply, false),
  );

  app.get<{ Params: NameParams; Querystring: StatsQuery }>(
    '/containers/:name/stats',
    { schema: { params: nameParams, querystring: statsQuery } },
    (request, reply) => serveContainerStats(engine, request, reply, false),
  );

  app.get<{ Params: NameParams; Querystring: TopQuery }>(
    '/containers/:name/top',
    { schema: { params: nameParams, querystring: topQuery } },
    // Docker answers 409 for a container that does not run.
    (request, reply) => serveTop(engine, request, reply, (err) => (err instanceof TopError && err.notRunning ? new ConflictError(err.message) : err), '-ef'),
  );
}
