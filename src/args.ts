/**
 * Parsing of podserve's command line, shaped like `podman [global flags] system service [--time N] [URI]` so it can
 * replace podman in a unit file:
 *
 *   podserve [--root DIR] [--runroot DIR] [--log-level LEVEL] [--runtime PATH] [--conmon PATH] [--criu PATH]
 *            service [--time SECONDS] [--group NAME] [--tls-cert F --tls-key F --tls-ca F] [URI]
 */
import { accessSync, constants } from 'node:fs';
import { isIPv4 } from 'node:net';
import { delimiter, join } from 'node:path';
import { DEFAULTS, LOG_LEVELS, type DaemonConfig, type LogLevel } from './config.js';

/** Where scripts/criu.sh installs its CRIU wrapper. */
export const DEFAULT_CRIU = '/opt/podserve-criu/criu';

export class UsageError extends Error {
  override name = 'UsageError';
}

export const USAGE = `Usage: podserve [global flags] service [--time SECONDS] [URI]

Serve the Podman libpod REST API and the Docker-compatible API.

Global flags (before the subcommand):
  --root DIR          persistent state (default ${DEFAULTS.root})
  --runroot DIR       volatile state (default ${DEFAULTS.runRoot})
  --log-level LEVEL   ${LOG_LEVELS.join('|')} (default ${DEFAULTS.logLevel})
  --runtime PATH      OCI runtime (default: runc found on PATH)
  --conmon PATH       conmon binary (default: conmon found on PATH)
  --criu PATH         CRIU for checkpoint/restore (default: ${DEFAULT_CRIU}
                      from scripts/criu.sh if present, else criu on PATH)

service flags:
  -t, --time SECONDS  exit after SECONDS idle; 0 = never (default ${DEFAULTS.idleTimeoutSec})
  --group NAME        group allowed on the unix socket (mode 0660)
  --tls-cert, --tls-key, --tls-ca FILE
                      serve TLS, accepting only clients whose certificate
                      the CA signed (required for tcp:// beyond loopback)
  URI                 unix:///path (default ${DEFAULTS.uri}) or tcp://host:port;
                      ignored when systemd passes a socket (LISTEN_FDS)
`;

/** Splits `--flag=value` and `--flag value`; flags in `booleans` take no value. */
function takeFlags(
  args: string[],
  known: Set<string>,
  booleans: Set<string>,
  stopAtPositional: boolean,
): { flags: Map<string, string>; rest: string[] } {
  const flags = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-') || arg === '-') {
      if (stopAtPositional) return { flags, rest: args.slice(i) };
      rest.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (!known.has(name)) throw new UsageError(`unknown flag: ${name}`);
    if (booleans.has(name)) {
      flags.set(name, eq > 0 ? arg.slice(eq + 1) : 'true');
      continue;
    }
    let value: string | undefined = eq > 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined) throw new UsageError(`flag needs an argument: ${name}`);
    flags.set(name, value);
  }
  return { flags, rest };
}

/** First executable named `name` on PATH, else the first existing fallback. */
export function findBinary(name: string, fallbacks: string[] = []): string {
  const dirs = (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter);
  for (const candidate of [...dirs.map((d) => join(d, name)), ...fallbacks]) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* keep looking */
    }
  }
  return name;
}

/** The private CRIU of scripts/criu.sh when installed (the system's may not work here), else criu on PATH. */
function defaultCriuPath(): string {
  try {
    accessSync(DEFAULT_CRIU, constants.X_OK);
    return DEFAULT_CRIU;
  } catch {
    return findBinary('criu', ['/usr/sbin/criu']);
  }
}

/** localhost, 127.0.0.0/8 or ::1 (also as an IPv4-mapped address or in URL brackets). */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost' || bare === '::1' || bare === '0:0:0:0:0:0:0:1') return true;
  const v4 = bare.replace(/^::ffff:/, '');
  return isIPv4(v4) && v4.startsWith('127.');
}

export type Command =
  | { kind: 'service'; config: DaemonConfig }
  /** conmon's exit command: `container cleanup [--url URI] ID` (see src/cleanup.ts). */
  | { kind: 'cleanup'; config: DaemonConfig; containerId: string }
  | { kind: 'help' }
  | { kind: 'version' };

export function parseCommandLine(argv: string[]): Command {
  const globals = takeFlags(
    argv,
    new Set(['--root', '--runroot', '--log-level', '--runtime', '--conmon', '--criu', '--help', '-h', '--version', '-v']),
    new Set(['--help', '-h', '--version', '-v']),
    true,
  );
  if (globals.flags.has('--help') || globals.flags.has('-h')) return { kind: 'help' };
  if (globals.flags.has('--version') || globals.flags.has('-v')) return { kind: 'version' };
  let rest = globals.rest;
  if (rest[0] === 'container' && rest[1] === 'cleanup') {
    const cleanup = takeFlags(rest.slice(2), new Set(['--url']), new Set(), false);
    if (cleanup.rest.length !== 1) throw new UsageError('container cleanup needs exactly one container ID');
    const base = parseCommandLine([...argv.slice(0, argv.length - rest.length), 'service', cleanup.flags.get('--url') ?? DEFAULTS.uri]);
    if (base.kind !== 'service') throw new UsageError('container cleanup: bad global flags');
    return { kind: 'cleanup', config: base.config, containerId: cleanup.rest[0]! };
  }
  if (rest[0] === 'system') rest = rest.slice(1);
  if (rest[0] !== 'service') {
    if (rest.length === 0) return { kind: 'help' };
    throw new UsageError(`unknown command: ${rest.join(' ')}`);
  }
  const service = takeFlags(
    rest.slice(1),
    new Set(['--time', '-t', '--group', '--tls-cert', '--tls-key', '--tls-ca']),
    new Set(),
    false,
  );
  if (service.rest.length > 1) throw new UsageError(`too many arguments: ${service.rest.join(' ')}`);

  const timeText = service.flags.get('--time') ?? service.flags.get('-t');
  const idleTimeoutSec = timeText === undefined ? DEFAULTS.idleTimeoutSec : Number(timeText);
  if (!Number.isInteger(idleTimeoutSec) || idleTimeoutSec < 0) {
    throw new UsageError(`--time must be a whole number of seconds ≥ 0, got "${timeText}"`);
  }
  const logLevel = (globals.flags.get('--log-level') ?? DEFAULTS.logLevel) as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  const uri = service.rest[0] ?? DEFAULTS.uri;
  if (!/^(unix:\/\/\/.+|tcp:\/\/[^/]+:\d+)$/.test(uri)) {
    throw new UsageError(`unsupported URI "${uri}": use unix:///path or tcp://host:port`);
  }
  const tlsParts = ['--tls-cert', '--tls-key', '--tls-ca'].map((f) => service.flags.get(f));
  if (tlsParts.some((p) => p !== undefined) && tlsParts.some((p) => p === undefined)) {
    throw new UsageError('--tls-cert, --tls-key and --tls-ca go together');
  }
  if (uri.startsWith('tcp://') && tlsParts[0] === undefined) {
    const host = new URL(uri).hostname;
    if (!isLoopbackHost(host)) {
      throw new UsageError(
        `refusing plain ${uri}: ${host} is not a loopback address and the API is root on this host. ` +
          'Give --tls-cert, --tls-key and --tls-ca (clients then need a certificate signed by that CA), or listen on 127.0.0.1',
      );
    }
  }
  const config: DaemonConfig = {
    root: globals.flags.get('--root') ?? DEFAULTS.root,
    runRoot: globals.flags.get('--runroot') ?? DEFAULTS.runRoot,
    logLevel,
    runtimePath: globals.flags.get('--runtime') ?? findBinary('runc', ['/usr/sbin/runc']),
    conmonPath: globals.flags.get('--conmon') ?? findBinary('conmon', ['/usr/libexec/podman/conmon', '/usr/bin/conmon']),
    criuPath: globals.flags.get('--criu') ?? defaultCriuPath(),
    uri,
    idleTimeoutSec,
    socketGroup: service.flags.get('--group'),
    tls: tlsParts[0] ? { cert: tlsParts[0], key: tlsParts[1]!, ca: tlsParts[2]! } : undefined,
  };
  return { kind: 'service', config };
}

