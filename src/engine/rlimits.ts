import { readFileSync } from 'node:fs';

export interface HostLimits {
  nofile: { soft: number; hard: number };
  nproc: { soft: number; hard: number };
}

let cached: HostLimits | undefined;

/**
 * The daemon's own RLIMIT_NOFILE and RLIMIT_NPROC (from /proc/self/limits): containers default to these,
 * since a process without CAP_SYS_RESOURCE cannot raise a hard limit and runc would fail (PLATFORM.md).
 */
export function hostLimits(): HostLimits {
  if (cached) return cached;
  const text = readFileSync('/proc/self/limits', 'utf8');
  const read = (label: string, fallback: number): { soft: number; hard: number } => {
    const line = text.split('\n').find((l) => l.startsWith(label));
    const fields = line?.slice(label.length).trim().split(/\s+/) ?? [];
    const num = (s: string | undefined): number => (s === undefined ? fallback : s === 'unlimited' ? fallback : Number(s));
    return { soft: num(fields[0]), hard: num(fields[1]) };
  };
  const nproc = read('Max processes', 4096);
  // runc fails to set nproc equal to the hard limit here (PLATFORM.md): stay at or below 4096 by default.
  const nprocDefault = Math.min(4096, nproc.soft, nproc.hard);
  cached = { nofile: read('Max open files', 1024), nproc: { soft: nprocDefault, hard: nprocDefault } };
  return cached;
}
