/**
 * Exec bodies. Create (POST /containers/{name}/exec and /libpod/containers/{name}/exec) uses Docker's
 * ExecConfig field names on both trees; start (POST /exec/{id}/start, /libpod/exec/{id}/start) is
 * Docker's ExecStartCheck plus Podman's `h`/`w` terminal size.
 */
import { deepNullable } from './nullable.js';

export interface ExecCreateBody {
  User?: string;
  Privileged?: boolean;
  Tty?: boolean;
  /** [height, width] (Docker ≥ 1.42). */
  ConsoleSize?: number[] | null;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Detach?: boolean;
  DetachKeys?: string;
  Env?: string[] | null;
  WorkingDir?: string;
  Cmd?: string[] | null;
}

export interface ExecStartBody {
  Detach?: boolean;
  Tty?: boolean;
  /** Podman: terminal height and width. */
  h?: number;
  w?: number;
  /** Docker: [height, width]. */
  ConsoleSize?: number[] | null;
}

const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;
const uint = { type: 'integer', minimum: 0 } as const;
const strArray = { type: 'array', items: { type: 'string' } } as const;
const consoleSize = { type: 'array', items: uint, minItems: 2, maxItems: 2 } as const;

const rawExecCreateSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    User: str,
    Privileged: bool,
    Tty: bool,
    ConsoleSize: consoleSize,
    AttachStdin: bool,
    AttachStdout: bool,
    AttachStderr: bool,
    Detach: bool,
    DetachKeys: str,
    Env: strArray,
    WorkingDir: str,
    Cmd: strArray,
  },
} as const;

const rawExecStartSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    Detach: bool,
    Tty: bool,
    h: uint,
    w: uint,
    ConsoleSize: consoleSize,
  },
} as const;

export const execCreateSchema = deepNullable(rawExecCreateSchema);
export const execStartSchema = deepNullable(rawExecStartSchema);

/**
 * Splits exec `Env` entries ("K=V") into a map. Entries without "=" are reported back so the caller
 * can answer 400 like Podman ("environment variable "X" badly formed, must be key=value").
 */
export function parseExecEnv(env: readonly string[] | null | undefined): { env: Record<string, string>; invalid: string[] } {
  const out: Record<string, string> = {};
  const invalid: string[] = [];
  for (const entry of env ?? []) {
    const eq = entry.indexOf('=');
    if (eq <= 0) invalid.push(entry);
    else out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return { env: out, invalid };
}
