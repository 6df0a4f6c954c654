/**
 * Lazily compiled route schemas validate exactly as eagerly compiled ones: same answers, same defaults, same
 * error messages; they compile on first use, compilePendingValidators compiles the rest and logs a broken one; every schema of the real app compiles.
 */
import t from 'tap';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseCommandLine } from '../../../src/args.js';
import { Engine } from '../../../src/engine/engine.js';
import { buildApp } from '../../../src/server.js';
import { compileOnFirstUse, compilePendingValidators, pendingValidatorCount } from '../../../src/http/lazy-validation.js';

const customOptions = { coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false } as const;

function routes(app: FastifyInstance): void {
  app.post(
    '/create',
    {
      schema: {
        body: {
          type: 'object',
          required: ['Image'],
          properties: {
            Image: { type: 'string', minLength: 1 },
            Tty: { type: 'boolean', default: false },
            Env: { type: 'array', items: { type: 'string' } },
            Limits: { type: 'object', properties: { Memory: { type: 'integer', minimum: 0 } } },
          },
        },
        querystring: { type: 'object', properties: { name: { type: 'string', pattern: '^[a-z]+$' } } },
      },
    },
    async (request) => ({ body: request.body, query: request.query }),
  );
  app.get('/items/:id', { schema: { params: { type: 'object', properties: { id: { type: 'string', maxLength: 4 } } } } }, async (request) => request.params);
  const shared = { $id: 'shared-name', type: 'object', properties: { name: { type: 'string', maxLength: 3 } } };
  app.get('/shared-a', { schema: { querystring: shared } }, async (request) => request.query);
  app.get('/shared-b', { schema: { querystring: shared } }, async (request) => request.query);
  app.get('/unused', { schema: { querystring: { type: 'object', properties: { x: { type: 'string' } } } } }, async () => 'ok');
}

async function build(lazy: boolean): Promise<FastifyInstance> {
  const app = Fastify({ ajv: lazy ? { customOptions, onCreate: compileOnFirstUse } : { customOptions } });
  routes(app);
  await app.ready();
  return app;
}

const cases: { method: 'GET' | 'POST'; url: string; payload?: unknown }[] = [
  { method: 'POST', url: '/create', payload: { Image: 'busybox' } },
  { method: 'POST', url: '/create?name=web', payload: { Image: 'busybox', Env: ['A=1'], Limits: { Memory: 5 } } },
  { method: 'POST', url: '/create', payload: { Tty: true } },
  { method: 'POST', url: '/create', payload: { Image: '' } },
  { method: 'POST', url: '/create', payload: { Image: 'x', Env: [1] } },
  { method: 'POST', url: '/create', payload: { Image: 'x', Limits: { Memory: -1 } } },
  { method: 'POST', url: '/create?name=Web1', payload: { Image: 'x' } },
  { method: 'GET', url: '/items/abcd' },
  { method: 'GET', url: '/items/abcde' },
  { method: 'GET', url: '/shared-a?name=abc' },
  { method: 'GET', url: '/shared-b?name=abcd' },
  { method: 'GET', url: '/shared-b?name=ab' },
  { method: 'GET', url: '/shared-a?name=abcd' },
];

t.test('lazy and eager validation answer alike', async (t) => {
  const before = pendingValidatorCount();
  const lazy = await build(true);
  const eager = await build(false);
  t.teardown(async () => {
    await lazy.close();
    await eager.close();
  });
  t.ok(pendingValidatorCount() >= before + 4, 'nothing compiled at start-up');
  for (const c of cases) {
    const [a, b] = await Promise.all([lazy.inject(c as never), eager.inject(c as never)]);
    t.equal(a.statusCode, b.statusCode, `${c.method} ${c.url} ${JSON.stringify(c.payload ?? '')}: status ${b.statusCode}`);
    t.same(a.json(), b.json(), 'same body (defaults applied, same error message)');
  }
  const afterUse = pendingValidatorCount();
  t.ok(afterUse >= 1, 'the schema no request used is still pending');
  const logged: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => logged.push(line) });
  const result = await compilePendingValidators(logger);
  t.equal(result.failed, 0);
  t.ok(result.compiled >= 1);
  t.equal(pendingValidatorCount(), 0, 'all compiled by the pass');
  t.equal((await lazy.inject({ method: 'GET', url: '/unused?x=1' })).statusCode, 200);
});

t.test('a broken schema is reported by the compile pass, and its requests fail cleanly', async (t) => {
  const app = Fastify({ exposeHeadRoutes: false, ajv: { customOptions, onCreate: compileOnFirstUse } });
  app.get('/broken', { schema: { querystring: { type: 'object', properties: { x: { type: 'nonsense' } } } } }, async () => 'never');
  app.get('/broken-too', { schema: { querystring: { type: 'object', properties: { y: { type: 'nonsense' } } } } }, async () => 'never');
  await app.ready();
  t.teardown(() => app.close());
  t.equal((await app.inject({ method: 'GET', url: '/broken?x=1' })).statusCode, 500, 'a request on it gets a 500, the daemon lives');
  const logged: string[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => logged.push(line) });
  const result = await compilePendingValidators(logger);
  t.equal(result.failed, 1, 'the unused broken schema is found', { logged });
  t.match(logged.join(''), /a route schema does not compile.*|"schema":".*nonsense/);
  t.match(logged.join(''), /\\"y\\"/, 'the log shows which schema');
});

t.test('every route schema of the real app compiles', async (t) => {
  const dir = mkdtempSync('/tmp/psv-');
  const logger = pino({ level: 'silent' });
  const cmd = parseCommandLine(['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), 'service']);
  if (cmd.kind !== 'service') throw new Error('expected service');
  const engine = await Engine.open(cmd.config, logger);
  const app = await buildApp({ engine, logger });
  await app.ready();
  t.teardown(async () => {
    await app.close();
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });
  t.ok(pendingValidatorCount() > 100, `${pendingValidatorCount()} route schemas left for their first use`);
  const logged: string[] = [];
  const result = await compilePendingValidators(pino({ level: 'error' }, { write: (line: string) => logged.push(line) }));
  t.equal(result.failed, 0, 'none fails to compile', { logged });
  t.equal(pendingValidatorCount(), 0);
});
