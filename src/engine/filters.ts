/**
 * Container list filters as Podman applies them: values of one key are ORed, different keys ANDed.
 * Supported keys: id, name, status, label, label!, exited, ancestor, before, since, restart-policy.
 */
import { BadRequestError } from '../errors.js';
import { parseRFC3339Nano } from './logs.js';
import type { Container } from './types.js';

const createdNanos = (c: Container): bigint => parseRFC3339Nano(c.config.created) ?? 0n;

export type Filters = Record<string, string[]>;

const STATUSES = ['created', 'running', 'paused', 'stopped', 'exited', 'unknown', 'configured', 'removing'];

function labelMatches(labels: Record<string, string>, spec: string): boolean {
  const eq = spec.indexOf('=');
  if (eq < 0) return Object.hasOwn(labels, spec);
  return labels[spec.slice(0, eq)] === spec.slice(eq + 1);
}

function statusOf(c: Container): string {
  return c.state.status === 'configured' ? 'created' : c.state.status;
}

/**
 * Builds the predicate for a filter map. `lookup` resolves names for before/since; `imageMatches` decides
 * whether a container's image answers to an ancestor value.
 */
export function containerFilter(
  filters: Filters,
  lookup: (nameOrId: string) => Container,
  imageMatches: (c: Container, ancestor: string) => boolean,
): (c: Container) => boolean {
  const tests: ((c: Container) => boolean)[] = [];
  for (const [key, values] of Object.entries(filters)) {
    if (values.length === 0) continue;
    switch (key) {
      case 'id':
        tests.push((c) => values.some((v) => c.id.startsWith(v)));
        break;
      case 'name':
        tests.push((c) =>
          values.some((v) => {
            try {
              return new RegExp(v).test(c.name);
            } catch {
              return c.name.includes(v);
            }
          }),
        );
        break;
      case 'status':
        for (const v of values) {
          if (!STATUSES.includes(v)) throw new BadRequestError(`${v} is not a valid status`);
        }
        tests.push((c) => values.includes(statusOf(c)) || (values.includes('stopped') && statusOf(c) === 'exited'));
        break;
      case 'label':
        tests.push((c) => values.every((v) => labelMatches(c.config.labels, v)));
        break;
      case 'label!':
        tests.push((c) => values.every((v) => !labelMatches(c.config.labels, v)));
        break;
      case 'exited': {
        const codes = values.map((v) => {
          const n = Number(v);
          if (!Number.isInteger(n)) throw new BadRequestError(`exited code out of range "${v}"`);
          return n;
        });
        tests.push((c) => c.state.status === 'exited' && codes.includes(c.state.exitCode));
        break;
      }
      case 'ancestor':
        tests.push((c) => values.some((v) => imageMatches(c, v)));
        break;
      case 'before': {
        const refs = values.map((v) => createdNanos(lookup(v)));
        tests.push((c) => refs.some((t) => createdNanos(c) < t));
        break;
      }
      case 'since': {
        const refs = values.map((v) => createdNanos(lookup(v)));
        tests.push((c) => refs.some((t) => createdNanos(c) > t));
        break;
      }
      case 'restart-policy':
        tests.push((c) => values.includes(c.config.restartPolicy || 'no'));
        break;
      default:
        throw new BadRequestError(`${key} is an invalid filter`);
    }
  }
  return (c) => tests.every((test) => test(c));
}
