/**
 * Mount handling shared by the generator and the Docker converter: option normalisation (Podman's
 * util.ProcessOptions rules), `-v`/Binds parsing, and ordering.
 */
import path from 'node:path';
import { BadRequestError } from '../errors.js';
import type { OciMount } from './ociTypes.js';

const PROPAGATION = new Set(['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared', 'unbindable', 'runbindable']);

/** Mount types podserve passes to the runtime. */
export const SUPPORTED_MOUNT_TYPES = new Set(['bind', 'tmpfs', 'devpts', 'proc', 'sysfs', 'mqueue', 'cgroup', 'ramfs']);

/**
 * Checks and completes the options of a user bind or tmpfs mount:
 * - at most one of each exclusive pair (ro/rw, exec/noexec, suid/nosuid, dev/nodev, bind/rbind,
 *   one propagation mode, one size, one mode, z/Z, tmpcopyup/notmpcopyup);
 * - size/mode/tmpcopyup only on tmpfs, bind/rbind and z/Z not on tmpfs;
 * - adds "rw" and "rprivate" when absent, "rbind" for binds, "tmpcopyup" for tmpfs;
 * - drops options meant for Podman itself: z/Z (SELinux relabel), U (chown), consistency, copy/nocopy.
 * Errors name `field`, e.g. `mounts[2].options: only one of 'ro' and 'rw' can be used`.
 */
export function processMountOptions(options: readonly string[], isTmpfs: boolean, field: string): string[] {
  const seen = new Set<string>();
  const once = (group: string, message: string): void => {
    if (seen.has(group)) throw new BadRequestError(`${field}: ${message}`);
    seen.add(group);
  };
  const out: string[] = [];
  for (const option of options) {
    const name = option.split('=', 1)[0] ?? option;
    if (name.startsWith('idmap')) {
      once('idmap', "the 'idmap' option can only be set once");
      out.push(option);
      continue;
    }
    switch (name) {
      case 'copy': case 'nocopy':
        once('copy', "only one of 'nocopy' and 'copy' can be used");
        continue; // volume-population hint, not a mount flag
      case 'exec': case 'noexec':
        once('exec', "only one of 'noexec' and 'exec' can be used");
        break;
      case 'suid': case 'nosuid':
        once('suid', "only one of 'nosuid' and 'suid' can be used");
        break;
      case 'dev': case 'nodev':
        once('dev', "only one of 'nodev' and 'dev' can be used");
        break;
      case 'ro': case 'rw':
        once('write', "only one of 'rw' and 'ro' can be used");
        break;
      case 'size':
        if (!isTmpfs) throw new BadRequestError(`${field}: the 'size' option is only allowed with tmpfs mounts`);
        once('size', 'only one tmpfs size can be specified');
        break;
      case 'mode':
        if (!isTmpfs) throw new BadRequestError(`${field}: the 'mode' option is only allowed with tmpfs mounts`);
        once('mode', 'only one tmpfs mode can be specified');
        break;
      case 'tmpcopyup':
        if (!isTmpfs) throw new BadRequestError(`${field}: the 'tmpcopyup' option is only allowed with tmpfs mounts`);
        once('copyup', "the 'tmpcopyup' or 'notmpcopyup' option can only be set once");
        break;
      case 'notmpcopyup':
        if (!isTmpfs) throw new BadRequestError(`${field}: the 'notmpcopyup' option is only allowed with tmpfs mounts`);
        once('copyup', "the 'tmpcopyup' or 'notmpcopyup' option can only be set once");
        continue; // only tells us not to add tmpcopyup
      case 'bind': case 'rbind':
        if (isTmpfs) throw new BadRequestError(`${field}: the 'bind' and 'rbind' options are not allowed with tmpfs mounts`);
        once('bind', "only one of 'rbind' and 'bind' can be used");
        break;
      case 'z': case 'Z':
        if (isTmpfs) throw new BadRequestError(`${field}: the 'z' and 'Z' options are not allowed with tmpfs mounts`);
        once('z', "only one of 'z' and 'Z' can be used");
        continue; // SELinux relabelling: nothing to do without SELinux
      case 'U':
        once('U', "the 'U' option can only be set once");
        continue; // chown request: handled by the engine, not a mount flag
      case 'consistency':
        continue; // macOS option Docker ignores
      default:
        if (PROPAGATION.has(name)) {
          once('propagation', 'only one root propagation mode can be used');
          break;
        }
        if (['sync', 'async', 'atime', 'noatime', 'relatime', 'norelatime', 'strictatime', 'nostrictatime',
          'diratime', 'nodiratime', 'mand', 'nomand', 'dirsync', 'remount', 'nr_inodes', 'uid', 'gid'].includes(name)) {
          break; // plain mount(8) flags runc understands
        }
        throw new BadRequestError(`${field}: unknown mount option "${option}"`);
    }
    out.push(option);
  }
  if (!seen.has('write')) out.push('rw');
  if (!seen.has('propagation')) out.push('rprivate');
  if (isTmpfs && !seen.has('copyup')) out.push('tmpcopyup');
  if (!isTmpfs && !seen.has('bind')) out.push('rbind');
  return out;
}

/** An absolute, clean container path; throws naming `field` otherwise. */
export function cleanContainerPath(dest: string | undefined, field: string): string {
  if (!dest || !dest.startsWith('/')) {
    throw new BadRequestError(`${field}: invalid container path "${dest ?? ''}", must be an absolute path`);
  }
  return path.posix.normalize(dest).replace(/(.)\/+$/, '$1');
}

/** Sorts mounts so that a parent directory is mounted before anything below it (stable). */
export function sortMounts(mounts: OciMount[]): OciMount[] {
  const depth = (m: OciMount): number => (m.destination === '/' ? 0 : m.destination.split('/').length - 1);
  return mounts
    .map((m, index) => ({ m, index }))
    .sort((a, b) => depth(a.m) - depth(b.m) || a.index - b.index)
    .map(({ m }) => m);
}

/** One parsed `-v`/Binds entry. */
export type VolumeSpec =
  | { kind: 'bind'; source: string; destination: string; options: string[] }
  | { kind: 'named'; name: string; destination: string; options: string[] }
  | { kind: 'anonymous'; destination: string; options: string[] };

/**
 * Parses Docker/Podman volume syntax: `dest`, `src:dest`, `src:dest:opts` (comma-separated options).
 * A source starting with "/" or "." is a host path; anything else names a volume.
 */
export function parseVolumeString(text: string, field: string): VolumeSpec {
  const parts = text.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) {
    throw new BadRequestError(`${field}: incorrect volume format "${text}", should be [host-dir:]ctr-dir[:option]`);
  }
  if (parts.length === 1) {
    return { kind: 'anonymous', destination: cleanContainerPath(parts[0], field), options: [] };
  }
  const [source, dest, opts] = parts as [string, string, string | undefined];
  const options = opts === undefined ? [] : opts.split(',').filter((o) => o !== '');
  const destination = cleanContainerPath(dest, field);
  if (source.startsWith('/') || source.startsWith('.')) {
    return { kind: 'bind', source, destination, options };
  }
  return { kind: 'named', name: source, destination, options };
}
