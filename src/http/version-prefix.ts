import type { IncomingMessage } from 'node:http';

/**
 * Every route is served bare and under `/v{version}/`. Podman accepts any `/v<digit>…` segment; we accept
 * `/v{major}.{minor}[.{patch}]` and flag other shapes (`/v1.x/…`, `/v1/…`) so the request is refused with a 400.
 * The prefix is stripped before routing and the version is remembered on the request.
 */
const VERSIONED = /^\/v(\d[^/?]*)(\/[^?]*)?(\?.*)?$/;
const WELL_FORMED = /^\d+\.\d+(\.\d+)?$/;

export interface VersionedRequest extends IncomingMessage {
  apiVersion?: string;
  badApiVersion?: string;
}

export function stripVersionPrefix(req: VersionedRequest): string {
  const url = req.url ?? '/';
  const match = VERSIONED.exec(url);
  if (!match) return url;
  const version = match[1]!;
  if (!WELL_FORMED.test(version)) {
    req.badApiVersion = version;
    return url;
  }
  req.apiVersion = version;
  return (match[2] ?? '/') + (match[3] ?? '');
}

/** Compares dotted versions numerically: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
