/**
 * Shared JSON Schemas (plain objects for Fastify's ajv): Podman's error body, the `{Id}` reply and the
 * building blocks the other schema files use.
 */

/** Podman's error body (pkg/errorhandling ErrorModel). */
export const errorResponseSchema = {
  type: 'object',
  properties: {
    cause: { type: 'string' },
    message: { type: 'string' },
    response: { type: 'integer' },
  },
  required: ['cause', 'message', 'response'],
} as const;

export interface ErrorResponse {
  cause: string;
  message: string;
  response: number;
}

/** `{"Id": "..."}` as answered by exec create and friends. */
export const idResponseSchema = {
  type: 'object',
  properties: { Id: { type: 'string' } },
  required: ['Id'],
} as const;

export interface IdResponse {
  Id: string;
}

/** Container create reply (libpod and compat). */
export const containerCreateResponseSchema = {
  type: 'object',
  properties: {
    Id: { type: 'string' },
    Warnings: { type: 'array', items: { type: 'string' } },
  },
  required: ['Id', 'Warnings'],
} as const;

export interface ContainerCreateResponse {
  Id: string;
  Warnings: string[];
}

/**
 * A query-string boolean. Go's strconv.ParseBool spellings ("1", "t", "True", …) are turned into
 * real booleans by `normalizeQuery` (schemas/query.ts) before validation, so the schema itself is
 * a plain boolean.
 */
export const goBool = { type: 'boolean' } as const;

/** The spellings Go's strconv.ParseBool accepts, as one regular expression. */
export const GO_BOOL_PATTERN = '^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$';

/** Go's strconv.ParseBool: true/false for its accepted spellings, undefined otherwise. */
export function parseGoBool(text: string): boolean | undefined {
  switch (text) {
    case '1': case 't': case 'T': case 'TRUE': case 'true': case 'True':
      return true;
    case '0': case 'f': case 'F': case 'FALSE': case 'false': case 'False':
      return false;
    default:
      return undefined;
  }
}

// Building blocks. `nullable: true` (understood by ajv) because Go clients marshal nil slices/maps/pointers as null.
export const stringArray = { type: 'array', items: { type: 'string' } } as const;
export const nullableStringArray = { type: 'array', items: { type: 'string' }, nullable: true } as const;
export const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;
export const nullableStringMap = { type: 'object', additionalProperties: { type: 'string' }, nullable: true } as const;
export const nullableString = { type: 'string', nullable: true } as const;
export const nullableBoolean = { type: 'boolean', nullable: true } as const;
export const nullableInteger = { type: 'integer', nullable: true } as const;
export const nonNegativeInteger = { type: 'integer', minimum: 0 } as const;
