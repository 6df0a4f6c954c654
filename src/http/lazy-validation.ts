/**
 * Route schemas compiled on first use instead of all at start-up.
 *
 * Under socket activation every cold connection waits for podserve to start, and compiling every route's
 * JSON Schema with ajv is most of that start (hundreds of milliseconds once all API groups are registered).
 * Fastify's `ajv.onCreate` hook hands us its private Ajv instance; its `compile` is replaced by one that returns a
 * stand-in, which compiles the real validator the first time a request needs it and then just forwards to it.
 * Validation itself is unchanged: same Ajv, same options, same error objects, same coercion (the stand-in passes
 * Fastify's parent-data context through, as Ajv's own functions get it).
 *
 * compilePendingValidators() compiles whatever has not been used yet, one schema per event-loop turn; the test
 * suite runs it on the real app so that a broken schema is found before it ships. The daemon does not: the
 * compiled validators of every route would stay in its heap for good (~20 MiB).
 */
import type { Logger } from 'pino';

interface ValidateFunction {
  (this: unknown, data: unknown, context?: unknown): unknown;
  errors?: unknown;
}

/** The part of Ajv this touches (Fastify's type for it is Ajv itself, from a package we do not depend on directly). */
interface AjvInstance {
  compile(schema: never): unknown;
  getSchema(keyRef: string): unknown;
}

/** Stand-ins not compiled yet, with their schema (for the log). */
const pending = new Map<() => void, unknown>();

/** Enough of a schema to recognise it in the log (Ajv's compile is not told which route it is for). */
function label(schema: unknown): string {
  const text = JSON.stringify(schema) ?? String(schema);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** For Fastify's `ajv.onCreate`: makes that Ajv instance compile lazily. */
export function compileOnFirstUse(ajv: AjvInstance): void {
  const compileNow = ajv.compile.bind(ajv) as (schema: unknown) => ValidateFunction;
  const compiledAlready = (schema: unknown): ValidateFunction | undefined => {
    const id = (schema as { $id?: unknown } | null)?.$id;
    return typeof id === 'string' ? (ajv.getSchema(id) as ValidateFunction | undefined) : undefined;
  };
  (ajv as unknown as { compile: (schema: unknown) => ValidateFunction }).compile = (schema: unknown): ValidateFunction => {
    let real: ValidateFunction | undefined;
    const compile = (): ValidateFunction => {
      pending.delete(compile);
      // Two routes may share a schema with an $id; Ajv compiles an $id once (eagerly, Fastify's compiler asks
      // getSchema first, which is too early here), so the second stand-in reuses the first one's function.
      real ??= compiledAlready(schema) ?? compileNow(schema);
      return real;
    };
    pending.set(compile, schema);
    const validate: ValidateFunction & { schemaEnv: boolean } = Object.assign(
      function (this: unknown, data: unknown, context?: unknown): unknown {
        const target = real ?? compile();
        const result = target.call(this, data, context);
        validate.errors = target.errors;
        return result;
      },
      // Fastify hands Ajv-made validators the parent object, so they can coerce a whole query or params value.
      { errors: null as unknown, schemaEnv: true },
    );
    return validate;
  };
}

/** How many validators are still waiting to be compiled. */
export function pendingValidatorCount(): number {
  return pending.size;
}

/**
 * Compiles every validator no request has needed yet, one per event-loop turn so requests are not held up;
 * a schema that does not compile is logged (a request using it would get a 500).
 */
export async function compilePendingValidators(logger: Logger): Promise<{ compiled: number; failed: number }> {
  let compiled = 0;
  let failed = 0;
  for (;;) {
    const next = pending.entries().next();
    if (next.done) break;
    const [compile, schema] = next.value;
    try {
      compile();
      compiled++;
    } catch (err) {
      pending.delete(compile);
      failed++;
      logger.error({ err: (err as Error).message, schema: label(schema) }, 'a route schema does not compile');
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { compiled, failed };
}
