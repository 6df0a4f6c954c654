/**
 * Linux capability names and Podman's rules for combining them (containers/common MergeCapabilities):
 * names are case-insensitive and may omit "CAP_", "ALL" in cap_add means every capability of the
 * bounding set, "ALL" in cap_drop keeps only what cap_add names.
 */
import { BadRequestError } from '../errors.js';

/** Every capability Linux 5.9+ knows, indexed by its number. */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT',
  'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** Podman's default set as shipped in containers.conf (Debian's podman 4.3.1). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE',
  'CAP_SETFCAP', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT',
];

const KNOWN = new Set(ALL_CAPABILITIES);

/**
 * The capability names whose bits are set in a /proc/<pid>/status mask such as CapBnd
 * ("000001fffeffffff"). Lets the engine pass the daemon's real bounding set.
 */
export function capabilitiesFromMask(hexMask: string): string[] {
  const mask = BigInt(`0x${hexMask.trim() || '0'}`);
  return ALL_CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n).slice().sort();
}

/** "net_admin" → "CAP_NET_ADMIN"; "all" → "ALL"; throws on unknown names (naming `field`). */
export function normalizeCapability(name: string, field: string): string {
  const upper = name.trim().toUpperCase();
  if (upper === 'ALL') return 'ALL';
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!KNOWN.has(full)) throw new BadRequestError(`${field}: unknown capability "${name}"`);
  return full;
}

function normalizeList(names: readonly string[] | undefined, field: string): string[] {
  return [...new Set((names ?? []).map((n) => normalizeCapability(n, field)))].sort();
}

/**
 * Computes base + add − drop the way Podman does, then keeps only what the bounding set allows
 * (the runtime cannot grant a capability the daemon itself lacks). Result is sorted.
 */
export function mergeCapabilities(
  base: readonly string[],
  add: readonly string[] | undefined,
  drop: readonly string[] | undefined,
  boundingSet: readonly string[],
): string[] {
  const adds = normalizeList(add, 'cap_add');
  const drops = normalizeList(drop, 'cap_drop');
  const bounding = new Set(boundingSet);
  let result: string[];

  if (drops.includes('ALL')) {
    if (adds.includes('ALL')) throw new BadRequestError('cap_add, cap_drop: adding all caps and removing all caps not allowed');
    result = adds;
  } else {
    for (const cap of adds) {
      if (drops.includes(cap)) throw new BadRequestError(`cap_add, cap_drop: capability "${cap}" cannot be dropped and added`);
    }
    const start = adds.includes('ALL') ? [...boundingSet] : normalizeList(base, 'default capabilities');
    const extra = adds.filter((c) => c !== 'ALL');
    result = [...new Set([...start.filter((c) => !drops.includes(c)), ...extra])];
  }
  return result.filter((c) => bounding.has(c)).sort();
}
