/**
 * What the registry routes (libpod pull/push, compat create?fromImage and push) share: credentials from
 * X-Registry-* headers, JSON message streams written straight to the socket, and Docker's JSON progress
 * messages.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseRegistryAuthHeader, type RegistryAuth, type TransferEvent } from '../../src/engine/images.js';
import { replyHeaders } from '../compat/scope.js';

function headerValue(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name.toLowerCase()];
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined || first.trim() === '' ? undefined : first;
}

/**
 * Credentials sent with the request, as Podman reads them: X-Registry-Config (a map, "" = default) wins over
 * X-Registry-Auth (one config, or a map as podman-remote sends it). A malformed header is a 400.
 */
export function registryAuth(request: FastifyRequest): RegistryAuth | undefined {
  const config = headerValue(request, 'X-Registry-Config');
  if (config !== undefined) return parseRegistryAuthHeader(config, 'X-Registry-Config');
  const auth = headerValue(request, 'X-Registry-Auth');
  return auth === undefined ? undefined : parseRegistryAuthHeader(auth, 'X-Registry-Auth');
}

/** Whether the query string named `key` (any case, as Go's schema decoder matches keys). */
export function queryHas(request: FastifyRequest, key: string): boolean {
  const search = request.url.split('?')[1] ?? '';
  const wanted = key.toLowerCase();
  return [...new URLSearchParams(search).keys()].some((k) => k.toLowerCase() === wanted);
}

/** Go's encoding/json with SetEscapeHTML(true), one value per line, as Podman's json.Encoder writes. */
export function goJsonLine(value: unknown): string {
  return `${JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}

export interface JsonStream {
  write: (value: unknown) => void;
  end: () => void;
  /** Aborted when the client goes away before the end. */
  signal: AbortSignal;
}

/** 200 with application/json sent at once; then one JSON value per line, flushed as written. */
export function openJsonStream(reply: FastifyReply): JsonStream {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { ...replyHeaders(reply), 'Content-Type': 'application/json' });
  raw.flushHeaders();
  const abort = new AbortController();
  let ended = false;
  raw.once('close', () => {
    if (!ended) abort.abort(new Error('the client closed the connection'));
  });
  return {
    write: (value) => {
      if (!raw.destroyed && !ended) raw.write(goJsonLine(value));
    },
    end: () => {
      if (ended) return;
      ended = true;
      raw.end();
    },
    signal: abort.signal,
  };
}

/** docker/go-units HumanSize: decimal units, 4 significant digits ("1.235MB"). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < units.length - 1) {
    size /= 1000;
    i++;
  }
  return `${Number(size.toPrecision(4))}${units[i]}`;
}

/** Docker's JSONProgress.String() for a 200-column display: bar, then current/total. */
export function progressBar(current: number, total: number): string {
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return humanSize(current).padStart(8);
  const percentage = Math.min(50, Math.floor(Math.floor((current / total) * 100) / 2));
  const bar = `[${'='.repeat(percentage)}>${' '.repeat(Math.max(0, 50 - percentage))}] `;
  const numbers = current > total ? '' : `${humanSize(current).padStart(8)}/${humanSize(total)}`;
  return bar + numbers;
}

/** The short ID Docker shows for a blob: 12 hex digits of its digest. */
export function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/** Docker JSON messages for transfer events, in Podman's compat wording (pull or push). */
export function dockerProgressMessage(event: TransferEvent, direction: 'pull' | 'push'): Record<string, unknown> {
  const pulling = direction === 'pull';
  const id = shortDigest(event.digest);
  switch (event.kind) {
    case 'new':
      return pulling ? { status: 'Pulling fs layer', progressDetail: {}, id } : { status: 'Preparing', id };
    case 'read': {
      const current = event.offset ?? 0;
      const detail: Record<string, number> = {};
      if (current) detail.current = current;
      if (event.size > 0) detail.total = event.size;
      return { status: pulling ? 'Downloading' : 'Pushing', progressDetail: detail, progress: progressBar(current, event.size), id };
    }
    case 'skipped':
      return pulling ? { status: 'Already exists', progressDetail: {}, id } : { status: 'Layer already exists', id };
    case 'done':
      return pulling ? { status: 'Download complete', progressDetail: {}, id } : { status: 'Pushed', id };
  }
}
