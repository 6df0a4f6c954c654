/**
 * `--change` instructions for import (and later commit): a subset of Dockerfile syntax applied to
 * an image's container config — CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER,
 * VOLUME, WORKDIR. Semantics follow Podman's `ImageConfigFromChanges`.
 */
import { constants } from 'node:os';
import { posix } from 'node:path';
import { BadRequestError } from '../errors.js';
import type { ContainerConfig } from './types.js';

function parseJsonStringArray(value: string): string[] | undefined {
  try {
    const parsed: unknown = JSON.parse(value);
    if (Array.isArray(parsed) && parsed.every((v) => typeof v === 'string')) return parsed as string[];
  } catch {
    // not JSON: shell form
  }
  return undefined;
}

function unquote(s: string): string {
  return s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s;
}

/** Signal name or number → number, like Podman's ParseSignal ("TERM", "SIGTERM", "15", "RTMIN+3"). */
export function parseSignal(raw: string): number {
  const text = raw.trim().toUpperCase();
  if (/^\d+$/.test(text)) {
    const n = Number.parseInt(text, 10);
    if (n >= 1 && n <= 64) return n;
    throw new Error(`invalid signal: ${raw}`);
  }
  const name = text.startsWith('SIG') ? text : `SIG${text}`;
  const rt = /^SIGRTMIN(?:\+(\d+))?$|^SIGRTMAX(?:-(\d+))?$/.exec(name);
  if (rt) {
    const n = rt[1] !== undefined ? 34 + Number(rt[1]) : rt[2] !== undefined ? 64 - Number(rt[2]) : name === 'SIGRTMIN' ? 34 : 64;
    if (n >= 34 && n <= 64) return n;
    throw new Error(`invalid signal: ${raw}`);
  }
  const n = (constants.signals as Record<string, number | undefined>)[name];
  if (n === undefined) throw new Error(`invalid signal: ${raw}`);
  return n;
}

/** Returns `base` with the instructions in `changes` applied (base itself is not modified). */
export function applyChanges(base: ContainerConfig, changes: readonly string[]): ContainerConfig {
  const config: ContainerConfig = structuredClone(base);
  for (const change of changes) {
    let split = splitOnce(change, ' ');
    if (!split) split = splitOnce(change, '=');
    if (!split) throw new BadRequestError(`invalid change "${change}" - must be formatted as KEY VALUE`);
    const key = split[0].trim().toUpperCase();
    const value = split[1].trim();
    const fail = (why: string): BadRequestError => new BadRequestError(`invalid change "${change}" - ${why}`);
    switch (key) {
      case 'USER':
        if (value === '') throw fail('must provide a value to USER');
        config.User = value;
        break;
      case 'EXPOSE': {
        const parts = value.split('/');
        if (parts.length > 2) throw fail('EXPOSE port must be formatted as PORT[/PROTO]');
        if (!/^\d+$/.test(parts[0]!)) throw fail('EXPOSE port must be an integer');
        const port = Number.parseInt(parts[0]!, 10);
        if (port <= 0 || port > 65535) throw fail('EXPOSE port must be a valid port number');
        const proto = (parts[1] ?? 'tcp').toLowerCase();
        if (proto !== 'tcp' && proto !== 'udp') throw fail('EXPOSE protocol must be TCP or UDP');
        config.ExposedPorts = { ...(config.ExposedPorts ?? {}), [`${port}/${proto}`]: {} };
        break;
      }
      case 'ENV': {
        const eq = value.indexOf('=');
        const k = unquote(eq === -1 ? value : value.slice(0, eq));
        const v = eq === -1 ? '' : unquote(value.slice(eq + 1));
        if (k === '') throw fail('ENV must have at least one argument');
        config.Env = [...(config.Env ?? []), `${k}=${v}`];
        break;
      }
      case 'ENTRYPOINT': {
        const json = parseJsonStringArray(value);
        config.Entrypoint = json ?? (value !== '' ? ['/bin/sh', '-c', value] : []);
        break;
      }
      case 'CMD': {
        const json = parseJsonStringArray(value);
        config.Cmd = json ?? (value !== '' ? ['/bin/sh', '-c', value] : ['/bin/sh', '-c']);
        break;
      }
      case 'VOLUME': {
        const paths = parseJsonStringArray(value) ?? value.split(' ');
        if (paths.length === 0) throw fail('must provide at least one argument to VOLUME');
        const volumes = { ...(config.Volumes ?? {}) };
        for (const p of paths) {
          if (p === '') throw fail('VOLUME paths must not be empty');
          volumes[p] = {};
        }
        config.Volumes = volumes;
        break;
      }
      case 'WORKDIR':
        if (value === '') throw fail('must provide a non-empty WORKDIR');
        config.WorkingDir = posix.join(config.WorkingDir ?? '', value);
        break;
      case 'LABEL': {
        const eq = value.indexOf('=');
        if (eq === -1) throw fail('LABEL must be formatted key=value');
        const k = unquote(value.slice(0, eq));
        const v = unquote(value.slice(eq + 1));
        if (k === '') throw fail('LABEL must have a non-empty key');
        config.Labels = { ...(config.Labels ?? {}), [k]: v };
        break;
      }
      case 'STOPSIGNAL':
        try {
          config.StopSignal = String(parseSignal(value));
        } catch (err) {
          throw fail(`STOPSIGNAL must be given a valid signal: ${(err as Error).message}`);
        }
        break;
      case 'ONBUILD':
        if (value === '') throw fail('ONBUILD must be given an argument');
        config.OnBuild = [...(config.OnBuild ?? []), value];
        break;
      default:
        throw fail(`invalid instruction ${key}`);
    }
  }
  return config;
}

function splitOnce(s: string, sep: string): [string, string] | undefined {
  const i = s.indexOf(sep);
  return i === -1 ? undefined : [s.slice(0, i), s.slice(i + 1)];
}
