/**
 * Semantic checks on a SpecGenerator that a JSON Schema cannot express (Podman's
 * specgen.Validate plus the resource checks of generate/validate.go). Each error names its field.
 */
import { BadRequestError } from '../errors.js';
import type { LinuxResources, SpecGenerator } from '../../schemas/containers.js';
import { tryParseSignal } from './signals.js';

export const RESTART_POLICIES = ['', 'no', 'never', 'always', 'on-failure', 'unless-stopped'] as const;
export const LOG_DRIVERS = ['', 'k8s-file', 'json-file', 'journald', 'none', 'passthrough'] as const;

const fail = (message: string): never => {
  throw new BadRequestError(message);
};

function isSet<T>(value: T | null | undefined): value is T {
  return value !== undefined && value !== null;
}

/** Checks a LinuxResources object (resource_limits or an update body); `prefix` names its field. */
export function validateResources(res: LinuxResources | null | undefined, prefix: string): void {
  if (!res) return;
  const mem = res.memory;
  if (mem) {
    for (const key of ['limit', 'reservation', 'swap'] as const) {
      const value = mem[key];
      if (isSet(value) && value < -1) fail(`${prefix}.memory.${key}: invalid value ${value}, must be -1 (unlimited) or a positive number of bytes`);
    }
    const limit = mem.limit ?? undefined;
    const swap = mem.swap ?? undefined;
    const reservation = mem.reservation ?? undefined;
    if (isSet(limit) && limit > 0 && isSet(swap) && swap > 0 && swap < limit) {
      fail(`${prefix}.memory.swap: minimum memoryswap limit should be larger than memory limit`);
    }
    if ((!isSet(limit) || limit === 0) && isSet(swap) && swap > 0) {
      fail(`${prefix}.memory.swap: you should always set a memory limit when using a memoryswap limit`);
    }
    if (isSet(limit) && limit > 0 && isSet(reservation) && reservation > limit) {
      fail(`${prefix}.memory.reservation: minimum memory limit cannot be less than memory reservation limit`);
    }
    if (isSet(mem.swappiness) && mem.swappiness > 100) {
      fail(`${prefix}.memory.swappiness: invalid value ${mem.swappiness}, valid memory swappiness range is 0-100`);
    }
  }
  const cpu = res.cpu;
  if (cpu) {
    if (isSet(cpu.period) && cpu.period !== 0 && (cpu.period < 1000 || cpu.period > 1_000_000)) {
      fail(`${prefix}.cpu.period: CPU cfs period cannot be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)`);
    }
    if (isSet(cpu.quota) && cpu.quota !== 0 && cpu.quota !== -1 && cpu.quota < 1000) {
      fail(`${prefix}.cpu.quota: CPU cfs quota cannot be less than 1ms (i.e. 1000)`);
    }
    for (const key of ['cpus', 'mems'] as const) {
      const value = cpu[key];
      if (value && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(value)) fail(`${prefix}.cpu.${key}: invalid value "${value}"`);
    }
  }
  if (res.pids && isSet(res.pids.limit) && res.pids.limit < -1) {
    fail(`${prefix}.pids.limit: invalid value ${res.pids.limit}, must be -1 (unlimited) or more`);
  }
  const weight = res.blockIO?.weight;
  if (isSet(weight) && weight !== 0 && (weight < 10 || weight > 1000)) {
    fail(`${prefix}.blockIO.weight: range of blkio weight is from 10 to 1000`);
  }
}

/** Validates what does not depend on the image; throws BadRequestError naming the field. */
export function validateSpecGenerator(spec: SpecGenerator): void {
  if (!spec.image && !spec.rootfs) fail('image: must provide image or rootfs');
  if (spec.image && spec.rootfs) fail('image, rootfs: cannot specify both image and rootfs');

  if (isSet(spec.stop_signal)) {
    const sig = tryParseSignal(spec.stop_signal);
    if (sig === undefined) fail(`stop_signal: invalid signal: ${String(spec.stop_signal)}`);
  }
  const policy = spec.restart_policy ?? '';
  if (!(RESTART_POLICIES as readonly string[]).includes(policy)) {
    fail(`restart_policy: invalid restart policy "${policy}", must be one of no, always, on-failure, unless-stopped`);
  }
  if (isSet(spec.restart_tries) && spec.restart_tries > 0 && policy !== 'on-failure') {
    fail('restart_tries: restart retries can only be set when restart_policy is "on-failure"');
  }
  if (spec.remove && policy !== '' && policy !== 'no' && policy !== 'never') {
    fail('remove, restart_policy: the --rm option conflicts with --restart, when the restartPolicy is not "" and "no"');
  }
  const driver = spec.log_configuration?.driver ?? '';
  if (!(LOG_DRIVERS as readonly string[]).includes(driver)) {
    fail(`log_configuration.driver: invalid log driver "${driver}", must be one of k8s-file, json-file, journald, none, passthrough`);
  }
  if (spec.utsns?.nsmode === 'host' && spec.hostname) {
    fail('hostname: cannot set hostname when running in the host UTS namespace');
  }
  if (spec.umask !== undefined && spec.umask !== '' && !/^[0-7]{1,4}$/.test(spec.umask)) {
    fail(`umask: invalid umask value "${spec.umask}", must be an octal number`);
  }
  if (spec.work_dir && !spec.work_dir.startsWith('/')) {
    fail(`work_dir: "${spec.work_dir}" must be an absolute path`);
  }
  if (isSet(spec.shm_size) && spec.shm_size > 0 && spec.ipcns && !['', 'default', 'private', 'shareable'].includes(spec.ipcns.nsmode ?? '')) {
    fail('shm_size: cannot set shm size when the IPC namespace is not private');
  }
  if (spec.cgroup_parent?.endsWith('.slice')) {
    fail(`cgroup_parent: systemd slice "${spec.cgroup_parent}" received as cgroup parent when using cgroupfs`);
  }
  if (spec.cgroup_parent && !spec.cgroup_parent.startsWith('/')) {
    fail(`cgroup_parent: "${spec.cgroup_parent}" must be an absolute cgroup path`);
  }
  validateResources(spec.resource_limits, 'resource_limits');
}
