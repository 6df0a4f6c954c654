/**
 * Go's encoding/json accepts `null` for any field (it leaves the zero value), and Go clients send
 * null for nil slices, maps and pointers. `deepNullable` marks every typed sub-schema of a body
 * object property (at any depth) as `nullable: true` (an ajv keyword) so such bodies validate, while
 * wrong non-null types are still rejected. The root object, array elements and map values stay
 * non-nullable.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const SUBSCHEMA_MAPS = ['properties', 'patternProperties'] as const;
const SUBSCHEMA_SINGLE = ['items', 'additionalProperties'] as const;
const SUBSCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf'] as const;

function visit(node: Json, markSelf: boolean): Json {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return node;
  const copy: { [key: string]: Json } = { ...node };
  for (const key of SUBSCHEMA_MAPS) {
    const map = copy[key];
    if (map && typeof map === 'object' && !Array.isArray(map)) {
      copy[key] = Object.fromEntries(Object.entries(map).map(([k, v]) => [k, visit(v, true)]));
    }
  }
  for (const key of SUBSCHEMA_SINGLE) {
    const sub = copy[key];
    // Array elements and map values stay non-null (our code would have to handle null strings);
    // only their own object properties become nullable.
    if (sub && typeof sub === 'object' && !Array.isArray(sub)) copy[key] = visit(sub, false);
  }
  for (const key of SUBSCHEMA_LISTS) {
    const list = copy[key];
    // Alternatives are not marked one by one: a null branch is added once below.
    if (Array.isArray(list)) copy[key] = list.map((v) => visit(v, false));
  }
  if (markSelf) {
    if (typeof copy.type === 'string') copy.nullable = true;
    else if (Array.isArray(copy.anyOf) && !copy.anyOf.some((b) => typeof b === 'object' && b !== null && !Array.isArray(b) && b.type === 'null')) {
      copy.anyOf = [{ type: 'null' }, ...copy.anyOf];
    }
  }
  return copy;
}

/** Returns a copy of `schema` where every object property (at any depth) also accepts null. */
export function deepNullable<T extends object>(schema: T): T {
  return visit(schema as unknown as Json, false) as unknown as T;
}
