/**
 * Query strings the Go way (gorilla/schema as Podman configures it), applied before ajv validation:
 * - key names match the schema's properties case-insensitively (`alltags` → `allTags`);
 * - booleans use strconv.ParseBool spellings (1/t/T/TRUE/true/True, 0/f/F/FALSE/false/False);
 * - integers and numbers are parsed; an empty value counts as absent;
 * - a repeated key becomes an array where the schema says array, otherwise the last value wins;
 * - `filters` (a JSON string) becomes an object map of string arrays (Docker's legacy
 *   `{"label":{"a=b":true}}` form is accepted too);
 * - unknown keys are kept untouched (gorilla ignores them; the schema lets them through).
 * A value that cannot be converted is left as the original string, so the schema rejects it (400).
 */
import { parseGoBool } from './common.js';

/** The part of a JSON Schema normalizeQuery looks at. */
export interface QuerySchemaLike {
  properties?: Record<string, PropertySchemaLike>;
}

export interface PropertySchemaLike {
  type?: string | readonly string[];
  items?: PropertySchemaLike;
}

type RawValue = string | readonly string[] | undefined | unknown;

function typesOf(schema: PropertySchemaLike | undefined): string[] {
  if (!schema?.type) return [];
  return typeof schema.type === 'string' ? [schema.type] : [...schema.type];
}

function toStrings(value: RawValue): string[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value.map((v) => String(v));
  return [String(value)];
}

const INTEGER = /^[+-]?\d+$/;

/** Converts one string to the scalar type the schema wants; undefined means "absent". */
function convertScalar(text: string, schema: PropertySchemaLike | undefined): unknown {
  const types = typesOf(schema);
  if (text === '' && !types.includes('string')) return undefined;
  if (types.includes('boolean')) {
    const parsed = parseGoBool(text);
    if (parsed !== undefined) return parsed;
  }
  if (types.includes('integer') && INTEGER.test(text)) return Number(text);
  if (types.includes('number') && text.trim() !== '' && Number.isFinite(Number(text))) return Number(text);
  if (types.includes('object')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

/**
 * Turns a Docker/Podman `filters` value into `{key: [values]}`. Accepts a JSON string or an
 * already-parsed object; values may be arrays, a single string, or `{value: true}` maps.
 * Returns undefined for an empty value and the input unchanged when it is not valid JSON.
 */
export function normalizeFilters(value: unknown): Record<string, string[]> | unknown {
  let parsed: unknown = value;
  if (typeof value === 'string') {
    if (value.trim() === '') return undefined;
    try {
      parsed = JSON.parse(value) as unknown;
    } catch {
      return value;
    }
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return value;
  const out: Record<string, string[]> = {};
  for (const [key, raw] of Object.entries(parsed as Record<string, unknown>)) {
    if (Array.isArray(raw)) out[key] = raw.map((v) => String(v));
    else if (typeof raw === 'string') out[key] = [raw];
    else if (raw !== null && typeof raw === 'object') {
      out[key] = Object.entries(raw as Record<string, unknown>).filter(([, on]) => on === true).map(([k]) => k);
    } else if (raw !== null && raw !== undefined) out[key] = [String(raw)];
  }
  return out;
}

/**
 * Returns a new object with the query normalized against `schema` (see the module comment).
 * `query` is what Fastify's query parser produced (strings, or arrays of strings for repeated keys).
 */
export function normalizeQuery(query: Record<string, unknown>, schema: QuerySchemaLike | undefined): Record<string, unknown> {
  const properties = schema?.properties ?? {};
  const canonical = new Map<string, string>();
  for (const name of Object.keys(properties)) {
    const lower = name.toLowerCase();
    // Keep the first declared spelling if two properties differ only by case.
    if (!canonical.has(lower)) canonical.set(lower, name);
  }

  // Gather every raw string per canonical key, so `All=1&all=0` behaves like a repeated key.
  const gathered = new Map<string, string[]>();
  const untouched: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(query)) {
    const name = Object.hasOwn(properties, key) ? key : canonical.get(key.toLowerCase());
    if (name === undefined && key.toLowerCase() !== 'filters') {
      untouched[key] = value;
      continue;
    }
    const target = name ?? 'filters';
    gathered.set(target, [...(gathered.get(target) ?? []), ...toStrings(value)]);
  }

  const out: Record<string, unknown> = { ...untouched };
  for (const [name, values] of gathered) {
    const propSchema = properties[name];
    const types = typesOf(propSchema);
    if (name.toLowerCase() === 'filters' && (types.length === 0 || types.includes('object'))) {
      const last = values[values.length - 1];
      const filters = last === undefined ? undefined : normalizeFilters(last);
      if (filters !== undefined) out[name] = filters;
      continue;
    }
    if (types.includes('array')) {
      const items = values
        .map((v) => (v === '' ? undefined : convertScalar(v, propSchema?.items ?? { type: 'string' })))
        .filter((v) => v !== undefined);
      out[name] = items;
      continue;
    }
    const last = values[values.length - 1];
    if (last === undefined) continue;
    if (types.length === 0) {
      out[name] = values.length > 1 ? values : last;
      continue;
    }
    const converted = convertScalar(last, propSchema);
    if (converted !== undefined) out[name] = converted;
  }
  return out;
}
