/**
 * Query-string schemas of the container endpoints (both trees). Parameter names and defaults follow
 * swagger-v4.3.1 (reconstructed) and Podman's handlers; schemas/query.ts normalises Go-style values first.
 */
const bool = { type: 'boolean' } as const;
const int = { type: 'integer' } as const;
const uint = { type: 'integer', minimum: 0 } as const;
const str = { type: 'string' } as const;
const filters = { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } } as const;

export const nameParams = {
  type: 'object',
  properties: { name: { type: 'string', minLength: 1 } },
  required: ['name'],
} as const;

export const listQuery = {
  type: 'object',
  properties: { all: bool, limit: int, last: int, size: bool, sync: bool, namespace: bool, pod: bool, filters },
} as const;

export const inspectQuery = { type: 'object', properties: { size: bool } } as const;

export const startQuery = { type: 'object', properties: { detachKeys: str } } as const;

export const stopQuery = { type: 'object', properties: { timeout: uint, t: uint, ignore: bool, all: bool } } as const;

export const killQuery = { type: 'object', properties: { signal: str, all: bool } } as const;

export const restartQuery = { type: 'object', properties: { t: uint, timeout: uint } } as const;

export const waitQuery = {
  type: 'object',
  properties: { condition: { type: 'array', items: str }, interval: str },
} as const;

export const compatWaitQuery = { type: 'object', properties: { condition: str } } as const;

export const removeQuery = {
  type: 'object',
  properties: { force: bool, v: bool, volumes: bool, depend: bool, ignore: bool, timeout: uint, link: bool },
} as const;

export const renameQuery = {
  type: 'object',
  properties: { name: { type: 'string', minLength: 1 } },
  required: ['name'],
} as const;

export const logsQuery = {
  type: 'object',
  properties: { follow: bool, since: str, until: str, tail: str, timestamps: bool, stdout: bool, stderr: bool },
} as const;

export const topQuery = { type: 'object', properties: { ps_args: { anyOf: [str, { type: 'array', items: str }] }, stream: bool, delay: uint } } as const;

export const statsQuery = { type: 'object', properties: { stream: bool, 'one-shot': bool, interval: uint } } as const;

export const statsAllQuery = {
  type: 'object',
  properties: { containers: { type: 'array', items: str }, stream: bool, interval: uint },
} as const;

export const pruneQuery = { type: 'object', properties: { filters } } as const;

export const resizeQuery = {
  type: 'object',
  properties: { h: uint, w: uint, running: bool },
} as const;

export const attachQuery = {
  type: 'object',
  properties: { detachKeys: str, logs: bool, stream: bool, stdin: bool, stdout: bool, stderr: bool },
} as const;
