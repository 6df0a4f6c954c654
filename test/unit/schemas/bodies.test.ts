import t from 'tap';
import { Ajv } from 'ajv';
import { containerUpdateSchema, specGeneratorSchema } from '../../../schemas/containers.js';
import { dockerCreateSchema } from '../../../schemas/compat-containers.js';
import { execCreateSchema, execStartSchema, parseExecEnv } from '../../../schemas/exec.js';
import { containerCreateResponseSchema, errorResponseSchema, idResponseSchema } from '../../../schemas/common.js';
import { dockerCliCreateBody, podmanRemoteCreateBody } from '../spec/captured-bodies.js';

// Two validators: ajv's defaults, and the options Fastify's ajv compiler uses.
const plain = new Ajv({ strict: true });
const fastifyLike = new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: true, allErrors: false });

/** [name, body, valid under plain ajv, valid under fastify's coercing ajv (default: same)]. */
type Row = [name: string, body: unknown, valid: boolean, validForFastify?: boolean];
/** Validates each row with both validators; returns [got, wanted, message] triples to assert. */
function runTable(schema: object, rows: Row[]): Array<[boolean, boolean, string]> {
  const validators = [['plain', plain.compile(schema)], ['fastify', fastifyLike.compile(schema)]] as const;
  const results: Array<[boolean, boolean, string]> = [];
  for (const [name, body, valid, validForFastify] of rows) {
    for (const [label, validate] of validators) {
      const copy = structuredClone(body);
      const want = label === 'fastify' && validForFastify !== undefined ? validForFastify : valid;
      const got = validate(copy) as boolean;
      results.push([got, want, `${label}: ${name}${validate.errors ? ` ${JSON.stringify(validate.errors[0])}` : ''}`]);
    }
  }
  return results;
}

t.test('SpecGenerator schema', async (t) => {
  for (const [got, want, msg] of runTable(specGeneratorSchema, [
    ['podman-remote body', podmanRemoteCreateBody, true],
    ['minimal', { image: 'busybox' }, true],
    ['unknown fields ignored', { image: 'busybox', some_future_field: { x: 1 } }, true],
    ['nulls everywhere', { image: 'busybox', command: null, env: null, mounts: null, resource_limits: { memory: null, pids: { limit: null } }, netns: null, stop_signal: null }, true],
    ['stop_signal as name', { image: 'b', stop_signal: 'SIGTERM' }, true],
    ['command must be an array', { image: 'b', command: { a: 1 } }, false],
    ['env must be a map of strings', { image: 'b', env: ['A=B'] }, false],
    ['env values must be strings (fastify coerces numbers)', { image: 'b', env: { A: 1 } }, false, true],
    ['terminal must be boolean', { image: 'b', terminal: 'yes' }, false],
    ['mounts items must be objects', { image: 'b', mounts: ['/a:/b'] }, false],
    ['r_limits need a type', { image: 'b', r_limits: [{ hard: 1, soft: 1 }] }, false],
    ['r_limits cannot be negative', { image: 'b', r_limits: [{ type: 'nofile', hard: -1, soft: 1 }] }, false],
    ['stop_timeout is unsigned', { image: 'b', stop_timeout: -5 }, false],
    ['memory limit must be an integer', { image: 'b', resource_limits: { memory: { limit: 'lots' } } }, false],
    ['oom_score_adj range', { image: 'b', oom_score_adj: 2000 }, false],
    ['netns must be an object', { image: 'b', netns: 'host' }, false],
    ['labels must be strings', { image: 'b', labels: { a: { b: 1 } } }, false],
  ])) t.equal(got, want, msg);
});

t.test('update body (LinuxResources)', async (t) => {
  for (const [got, want, msg] of runTable(containerUpdateSchema, [
    ['memory and cpu', { memory: { limit: 104857600, swap: -1 }, cpu: { shares: 512, quota: 50000, period: 100000 }, pids: { limit: 30 } }, true],
    ['empty', {}, true],
    ['nulls', { memory: null, cpu: { shares: null } }, true],
    ['shares unsigned', { cpu: { shares: -2 } }, false],
    ['pids limit integer', { pids: { limit: 'x' } }, false],
  ])) t.equal(got, want, msg);
});

t.test('Docker create schema', async (t) => {
  for (const [got, want, msg] of runTable(dockerCreateSchema, [
    ['docker CLI body', dockerCliCreateBody, true],
    ['Cmd as a string', { Image: 'b', Cmd: 'echo hi' }, true],
    ['Entrypoint null', { Image: 'b', Entrypoint: null, Cmd: null }, true],
    ['HostConfig null', { Image: 'b', HostConfig: null }, true],
    ['PortBindings', { Image: 'b', HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }], '81/tcp': null } } }, true],
    ['Env must be an array', { Image: 'b', Env: { A: 'B' } }, false],
    ['Memory must be an integer', { Image: 'b', HostConfig: { Memory: 'lots' } }, false],
    ['Tty boolean', { Image: 'b', Tty: 'sure' }, false],
    ['Ulimits need Name', { Image: 'b', HostConfig: { Ulimits: [{ Soft: 1, Hard: 1 }] } }, false],
    ['Cmd items strings (fastify coerces numbers)', { Image: 'b', Cmd: [1, 2] }, false, true],
    ['Cmd items cannot be objects', { Image: 'b', Cmd: [{}] }, false],
  ])) t.equal(got, want, msg);
});

t.test('coercion keeps meaning under fastify options', async (t) => {
  const validate = fastifyLike.compile(dockerCreateSchema);
  const body: Record<string, unknown> = { Image: 'b', Cmd: 'echo', Entrypoint: null, HostConfig: { Init: null, PidsLimit: null } };
  t.ok(validate(body));
  t.strictSame(body.Cmd, ['echo'], 'a string Cmd becomes an array');
  t.equal(body.Entrypoint, null, 'null stays null');
  t.strictSame(body.HostConfig, { Init: null, PidsLimit: null });
  const spec = fastifyLike.compile(specGeneratorSchema);
  const s: Record<string, unknown> = { image: 'b', stop_signal: 'SIGKILL', netns: null, r_limits: [{ type: 'nofile', hard: 5, soft: 5 }] };
  t.ok(spec(s));
  t.equal(s.stop_signal, 'SIGKILL');
  t.equal(s.netns, null);
});

t.test('exec bodies', async (t) => {
  for (const [got, want, msg] of runTable(execCreateSchema, [
    ['podman-remote exec', { User: 'nobody', Privileged: true, Tty: false, AttachStdin: true, AttachStderr: true, AttachStdout: true, Detach: false, DetachKeys: 'ctrl-p,ctrl-q', Env: ['X=1'], WorkingDir: '/tmp', Cmd: ['sh', '-c', 'echo'] }, true],
    ['docker exec with ConsoleSize', { Cmd: ['sh'], Tty: true, ConsoleSize: [24, 80], Env: null }, true],
    ['Cmd must be an array', { Cmd: { a: 1 } }, false],
    ['Tty boolean', { Cmd: ['sh'], Tty: 'x' }, false],
    ['ConsoleSize pair', { Cmd: ['sh'], ConsoleSize: [24] }, false],
  ])) t.equal(got, want, msg);
  for (const [got, want, msg] of runTable(execStartSchema, [
    ['podman start', { Detach: false, Tty: true, h: 24, w: 80 }, true],
    ['docker start', { Detach: false, Tty: false }, true],
    ['empty', {}, true],
    ['negative h', { h: -1 }, false],
    ['Detach boolean', { Detach: 'no' }, false],
  ])) t.equal(got, want, msg);
  t.strictSame(parseExecEnv(['A=1', 'B=x=y', 'C=', 'BAD', '=v']), { env: { A: '1', B: 'x=y', C: '' }, invalid: ['BAD', '=v'] });
  t.strictSame(parseExecEnv(null), { env: {}, invalid: [] });
});

t.test('reply schemas', async (t) => {
  t.ok(plain.validate(errorResponseSchema, { cause: 'no such container', message: 'x', response: 404 }));
  t.notOk(plain.validate(errorResponseSchema, { message: 'x' }));
  t.ok(plain.validate(idResponseSchema, { Id: 'abc' }));
  t.ok(plain.validate(containerCreateResponseSchema, { Id: 'abc', Warnings: [] }));
});
