/** Image list/prune filters as Podman applies them: reference, dangling, label, before, since, id. */
import { BadRequestError } from '../../src/errors.js';
import type { ImageDetails } from '../../src/engine/images.js';

function globToRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

function referenceMatches(d: ImageDetails, pattern: string): boolean {
  const re = globToRegExp(pattern);
  return d.record.names.some((name) => {
    const withoutTag = name.replace(/:[^:/]+$/, '');
    const short = name.replace(/^[^/]+\.[^/]+\/|^localhost\//, '');
    const shortNoTag = short.replace(/:[^:/]+$/, '');
    return [name, withoutTag, short, shortNoTag].some((candidate) => re.test(candidate));
  });
}

export function imageFilter(filters: Record<string, string[]>, lookup: (nameOrId: string) => ImageDetails): (d: ImageDetails) => boolean {
  const tests: ((d: ImageDetails) => boolean)[] = [];
  for (const [key, values] of Object.entries(filters)) {
    if (values.length === 0) continue;
    switch (key) {
      case 'reference':
        tests.push((d) => values.some((v) => referenceMatches(d, v)));
        break;
      case 'dangling': {
        const want = values.map((v) => {
          if (v !== 'true' && v !== 'false') throw new BadRequestError(`invalid filter: dangling=${v}: must be true or false`);
          return v === 'true';
        });
        tests.push((d) => want.includes(d.dangling));
        break;
      }
      case 'label':
        tests.push((d) =>
          values.every((v) => {
            const labels = d.record.config.config?.Labels ?? {};
            const eq = v.indexOf('=');
            return eq < 0 ? Object.hasOwn(labels, v) : labels[v.slice(0, eq)] === v.slice(eq + 1);
          }),
        );
        break;
      case 'before': {
        const refs = values.map((v) => Date.parse(lookup(v).record.created));
        tests.push((d) => refs.some((t) => Date.parse(d.record.created) < t));
        break;
      }
      case 'since': {
        const refs = values.map((v) => Date.parse(lookup(v).record.created));
        tests.push((d) => refs.some((t) => Date.parse(d.record.created) > t));
        break;
      }
      case 'id':
        tests.push((d) => values.some((v) => d.record.id.startsWith(v.replace(/^sha256:/, ''))));
        break;
      case 'until': {
        const limits = values.map((v) => (/^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v)));
        tests.push((d) => limits.some((t) => Date.parse(d.record.created) < t));
        break;
      }
      default:
        throw new BadRequestError(`invalid image filter "${key}"`);
    }
  }
  return (d) => tests.every((t) => t(d));
}
