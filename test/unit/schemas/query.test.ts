import t from 'tap';
import { Ajv } from 'ajv';
import { normalizeFilters, normalizeQuery } from '../../../schemas/query.js';
import { goBool, parseGoBool, GO_BOOL_PATTERN } from '../../../schemas/common.js';

const logsQuery = {
  type: 'object',
  properties: {
    follow: goBool,
    stdout: goBool,
    tail: { type: 'string' },
    since: { type: 'string' },
    allTags: goBool,
    timeout: { type: 'integer' },
    interval: { type: 'number' },
    condition: { type: 'array', items: { type: 'string' } },
    signals: { type: 'array', items: { type: 'integer' } },
    filters: { type: 'object' },
  },
} as const;

t.test('Go booleans', async (t) => {
  for (const s of ['1', 't', 'T', 'TRUE', 'true', 'True']) t.equal(parseGoBool(s), true, s);
  for (const s of ['0', 'f', 'F', 'FALSE', 'false', 'False']) t.equal(parseGoBool(s), false, s);
  for (const s of ['', 'yes', 'tRUE', '2', 'on']) t.equal(parseGoBool(s), undefined, JSON.stringify(s));
  const re = new RegExp(GO_BOOL_PATTERN);
  t.ok(re.test('True'));
  t.notOk(re.test('tRue'));
});

t.test('normalizeQuery table', async (t) => {
  const table: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
    ['docker style 1/0', { follow: '1', stdout: '0' }, { follow: true, stdout: false }],
    ['Go spellings', { follow: 'True', stdout: 'F' }, { follow: true, stdout: false }],
    ['case-insensitive keys', { alltags: 'true', FOLLOW: 't' }, { allTags: true, follow: true }],
    ['exact key wins over folding', { allTags: 'false' }, { allTags: false }],
    ['last value wins for scalars', { follow: ['1', '0'] }, { follow: false }],
    ['bad bool stays a string', { follow: 'yes' }, { follow: 'yes' }],
    ['empty value is absent', { follow: '', timeout: '' }, {}],
    ['integers', { timeout: '10' }, { timeout: 10 }],
    ['negative integer', { timeout: '-1' }, { timeout: -1 }],
    ['bad integer stays', { timeout: '1.5' }, { timeout: '1.5' }],
    ['numbers', { interval: '1.5' }, { interval: 1.5 }],
    ['strings untouched', { tail: 'all', since: '0001-01-01T00:00:00Z' }, { tail: 'all', since: '0001-01-01T00:00:00Z' }],
    ['empty string kept for strings', { tail: '' }, { tail: '' }],
    ['repeated key → array', { condition: ['running', 'exited'] }, { condition: ['running', 'exited'] }],
    ['single value → array', { condition: 'running' }, { condition: ['running'] }],
    ['case-folded repeats merge', { condition: 'running', Condition: 'exited' }, { condition: ['running', 'exited'] }],
    ['typed array items', { signals: ['1', '15'] }, { signals: [1, 15] }],
    ['unknown keys kept', { foo: 'bar', baz: ['1', '2'] }, { foo: 'bar', baz: ['1', '2'] }],
    ['filters JSON', { filters: '{"label":["a=b"],"status":["running"]}' }, { filters: { label: ['a=b'], status: ['running'] } }],
    ['filters legacy map', { filters: '{"label":{"a=b":true,"c":false}}' }, { filters: { label: ['a=b'] } }],
    ['filters key folding', { Filters: '{"id":"abc"}' }, { filters: { id: ['abc'] } }],
    ['bad filters JSON stays', { filters: '{nope' }, { filters: '{nope' }],
  ];
  for (const [name, input, want] of table) t.strictSame(normalizeQuery(input, logsQuery), want, name);
});

t.test('filters without a schema property are still normalized', async (t) => {
  t.strictSame(normalizeQuery({ filters: '{"name":["x"]}', all: '1' }, { properties: {} }), { filters: { name: ['x'] }, all: '1' });
  t.strictSame(normalizeQuery({ all: '1' }, undefined), { all: '1' });
  t.equal(normalizeFilters(''), undefined);
  t.strictSame(normalizeFilters({ a: 'b', n: 3 }), { a: ['b'], n: ['3'] });
});

t.test('normalized queries validate with ajv (fastify options)', async (t) => {
  const ajv = new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: true, allErrors: false });
  const validate = ajv.compile(logsQuery);
  t.ok(validate(normalizeQuery({ follow: '1', stdout: 'True', condition: 'running' }, logsQuery)));
  // Without normalisation fastify's ajv rejects Go spellings…
  t.notOk(validate({ follow: '1' }), 'raw "1" rejected');
  t.notOk(validate({ follow: 'True' }), 'raw "True" rejected');
  // …and after it, an invalid spelling is still a 400.
  t.notOk(validate(normalizeQuery({ follow: 'yes' }, logsQuery)));
  t.notOk(validate(normalizeQuery({ timeout: 'abc' }, logsQuery)));
});
