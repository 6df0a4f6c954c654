/**
 * The OCI `process` of an exec session (the process.json given to `runc exec -p`), derived from the
 * container's own process the way Podman's prepareProcessExec does: same rlimits, umask,
 * no_new_privileges and environment (plus the session's), the session's argv/tty/cwd/user, and
 * capabilities recomputed for the exec user (all of the daemon's bounding set when privileged).
 */
import { BadRequestError } from '../errors.js';
import { ALL_CAPABILITIES } from './capabilities.js';
import type { OciProcess } from './ociTypes.js';
import { resolveGroups, resolveUser } from './user.js';

export interface ExecProcessOptions {
  /** argv; must not be empty. */
  cmd: readonly string[];
  /** Extra environment, overriding the container's. */
  env?: Record<string, string>;
  /** Working directory; default the container's. */
  workingDir?: string;
  /** "user[:group]" for the session; default the container's user. */
  user?: string;
  tty: boolean;
  privileged?: boolean;
  /** Initial terminal size (runc sets it on the console it creates). */
  consoleSize?: { height: number; width: number };
}

export interface ExecContainerInfo {
  /** The container's OCI process (from its config.json). */
  process: OciProcess;
  /** The container's configured user spec (SpecGenerator `user`, or the image's), "" for root. */
  user: string;
  /** The container's supplementary groups (SpecGenerator `groups`). */
  groups?: readonly string[];
  /** Contents of the container's /etc/passwd and /etc/group. */
  passwd?: string;
  group?: string;
  /** The daemon's capability bounding set; default every known capability. */
  boundingCaps?: readonly string[];
}

function mergeEnv(base: readonly string[], extra: Record<string, string> | undefined): string[] {
  const env = new Map<string, string>();
  for (const entry of base) {
    const eq = entry.indexOf('=');
    env.set(eq === -1 ? entry : entry.slice(0, eq), eq === -1 ? '' : entry.slice(eq + 1));
  }
  for (const [k, v] of Object.entries(extra ?? {})) env.set(k, v);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

/** Builds the exec session's OCI process; throws BadRequestError for an empty command or unknown user. */
export function generateExecProcess(container: ExecContainerInfo, opts: ExecProcessOptions): OciProcess {
  if (opts.cmd.length === 0) throw new BadRequestError('Cmd: must provide a non-empty command to start an exec session');
  if (opts.workingDir && !opts.workingDir.startsWith('/')) {
    throw new BadRequestError(`WorkingDir: "${opts.workingDir}" must be an absolute path`);
  }
  const base: OciProcess = structuredClone(container.process);
  const proc: OciProcess = {
    ...base,
    args: [...opts.cmd],
    terminal: opts.tty,
    env: mergeEnv(base.env, opts.env),
    cwd: opts.workingDir || base.cwd,
  };
  if (opts.tty && opts.consoleSize) proc.consoleSize = { ...opts.consoleSize };
  else delete proc.consoleSize;

  // An empty session user inherits the container's user and supplementary groups.
  const user = opts.user || container.user;
  const groupNames = opts.user ? [] : [...(container.groups ?? [])];
  const execUser = resolveUser(user, container.passwd, container.group, opts.user ? 'User' : 'user');
  const sgids = groupNames.length ? resolveGroups(groupNames, container.group) : [];
  if (user !== '' || sgids.length > 0) {
    if (user !== '') sgids.push(...execUser.sgids);
    proc.user = {
      uid: execUser.uid,
      gid: execUser.gid,
      ...(base.user.umask !== undefined ? { umask: base.user.umask } : {}),
      ...(sgids.length ? { additionalGids: [...new Set(sgids)] } : {}),
    };
  }

  const ctrCaps = base.capabilities;
  const bounding = opts.privileged ? [...(container.boundingCaps ?? ALL_CAPABILITIES)].sort() : [...ctrCaps.bounding];
  const caps = { ...ctrCaps, bounding, inheritable: [] as string[] };
  if (execUser.uid === 0) {
    caps.effective = bounding;
    caps.permitted = bounding;
  } else if (user === container.user) {
    caps.effective = [...ctrCaps.effective];
    caps.inheritable = [...ctrCaps.effective];
    caps.permitted = [...ctrCaps.effective];
    caps.ambient = [...ctrCaps.effective];
  }
  proc.capabilities = caps;

  if (!proc.env.some((e) => e.startsWith('HOME='))) proc.env.push(`HOME=${execUser.home}`);
  return proc;
}
