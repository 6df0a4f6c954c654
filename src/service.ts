/**
 * `podserve service`: open the engine, build the app, listen (a socket systemd passed, a unix socket, or TCP when
 * asked: plain only on loopback, TLS with client certificates elsewhere), tell systemd when serving, and exit when
 * idle or on SIGTERM/SIGINT once the requests in flight are answered.
 */
import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { isLoopbackHost } from './args.js';
import type { DaemonConfig } from './config.js';
import { Engine } from './engine/engine.js';
import { IdleTracker } from './http/idle.js';
import { resolveLimits, StreamGate, type HttpLimits } from './http/limits.js';
import { loadTlsOptions } from './http/tls.js';
import { createLogger } from './logger.js';
import { QuietMemoryReturn } from './memory.js';
import { SystemdNotifier, takeNotifySocket } from './notify.js';
import { removeServingMark, writeServingMark } from './serving-mark.js';
import { buildApp, installStreamDispatcher } from './server.js';

const SD_LISTEN_FDS_START = 3;

/** How long SIGTERM waits for ordinary requests in flight before closing every connection. */
const SHUTDOWN_GRACE_MS = 20_000;

/** Takes the sockets systemd passed (LISTEN_FDS), once, and hides them from every child we spawn. */
export function takeActivationFds(env: NodeJS.ProcessEnv = process.env): number[] {
  const pid = Number(env.LISTEN_PID);
  const count = Number(env.LISTEN_FDS);
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (pid !== process.pid || !Number.isInteger(count) || count < 1) return [];
  return Array.from({ length: count }, (_, i) => SD_LISTEN_FDS_START + i);
}

/** Is something accepting connections on this unix socket? */
function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/** Removes a stale socket left by a crashed daemon; refuses to steal a live one or to delete a non-socket. */
async function clearStaleSocket(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  if (await socketIsLive(path)) throw new Error(`another server is already listening on ${path}; refusing to start`);
  await unlink(path);
}

function groupId(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  const line = execFileSync('getent', ['group', name], { encoding: 'utf8' }).trim();
  const gid = Number(line.split(':')[2]);
  if (!Number.isInteger(gid)) throw new Error(`unknown group "${name}"`);
  return gid;
}

function listen(server: Server, target: number | string | { port: number; host: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (typeof target === 'number') server.listen({ fd: target }, done);
    else if (typeof target === 'string') server.listen(target, done);
    else server.listen(target.port, target.host, done);
  });
}

async function listenUnix(server: Server, path: string, group: string | undefined): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await clearStaleSocket(path);
  // Create the socket 0660 from the start: no window in which others could connect.
  const previous = process.umask(0o117);
  try {
    await listen(server, path);
  } finally {
    process.umask(previous);
  }
  await chmod(path, 0o660);
  await chown(path, 0, group === undefined ? 0 : groupId(group));
}

export interface ServiceOptions {
  /** Overrides of the HTTP limits (tests use short timeouts). */
  limits?: Partial<HttpLimits>;
  /** Called with the app before it is made ready (tests add probe routes). */
  configureApp?: (app: FastifyInstance) => void;
}

export async function runService(config: DaemonConfig, options: ServiceOptions = {}): Promise<void> {
  // Both are taken before anything is spawned: conmon, runc and containers must not inherit them.
  const activationFds = takeActivationFds();
  const notifySocket = takeNotifySocket();
  const logger = createLogger(config.logLevel);
  const notifier = new SystemdNotifier(notifySocket, logger);
  // Signals are caught from the very start: one that arrives while we still start up (the socket may already
  // answer) must shut down cleanly once we can, not kill the process mid-way.
  process.once('SIGTERM', () => requestStop('SIGTERM'));
  process.once('SIGINT', () => requestStop('SIGINT'));
  try {
    await serve(config, options, logger, activationFds, notifier);
  } catch (err) {
    await notifier.status(`Failed to start: ${(err as Error).message}`);
    throw err;
  }
}

async function serve(
  config: DaemonConfig,
  options: ServiceOptions,
  logger: Logger,
  activationFds: number[],
  notifier: SystemdNotifier,
): Promise<void> {
  const limits = resolveLimits({ keepAliveTimeoutMs: keepAliveFor(config.idleTimeoutSec), ...options.limits });
  const https = config.tls ? await loadTlsOptions(config.tls, limits.tlsHandshakeTimeoutMs) : undefined;
  const engine = await Engine.open(config, logger);

  let shuttingDown: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    shuttingDown ??= stop(reason);
    return shuttingDown;
  };
  const idle = new IdleTracker(config.idleTimeoutSec, () => void shutdown('idle timeout'));
  const streams = new StreamGate(limits.maxStreams);
  const app = await buildApp({ engine, logger, idle, limits, https, streams });
  options.configureApp?.(app);
  await app.ready();
  installStreamDispatcher(app, logger);
  const server = app.server;
  server.maxConnections = limits.maxConnections;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  if (https) {
    server.on('tlsClientError', (err: Error & { code?: string }) => logger.debug({ code: err.code, err: err.message }, 'TLS handshake refused'));
  }
  idle.attach(server);
  const memory = new QuietMemoryReturn(logger);
  server.on('request', () => memory.activity());

  let socketPath: string | undefined;
  let where: string;
  if (activationFds.length > 0) {
    if (activationFds.length > 1) logger.warn({ fds: activationFds.length }, 'systemd passed several sockets; serving the first');
    await listen(server, activationFds[0]!);
    const address = server.address();
    if (address !== null && typeof address === 'object') {
      where = `tcp://${formatHost(address)}:${address.port} (passed by systemd)`;
      if (!https) {
        if (!isLoopbackHost(address.address)) {
          throw new Error(
            `systemd passed a TCP socket on ${address.address}, which is not loopback: refusing plain HTTP (the API is root ` +
              'on this host); give --tls-cert, --tls-key and --tls-ca',
          );
        }
        warnTcp(logger, where);
      }
    } else {
      where = address ? `unix://${address} (passed by systemd)` : `the socket passed by systemd (fd ${activationFds[0]})`;
    }
  } else if (config.uri.startsWith('unix://')) {
    socketPath = config.uri.slice('unix://'.length);
    await listenUnix(server, socketPath, config.socketGroup);
    where = config.uri;
  } else {
    const url = new URL(config.uri);
    // Plain TCP beyond loopback was refused while parsing the command line.
    if (!https) warnTcp(logger, config.uri);
    await listen(server, { port: Number(url.port), host: url.hostname.replace(/^\[(.*)\]$/, '$1') });
    where = config.uri;
  }
  const status = `Serving the API${https ? ' over TLS (client certificates required)' : ''} on ${where}`;
  logger.info({ where, tls: Boolean(https) }, 'serving');
  await notifier.ready(status);
  // From now on conmon's exit commands see that this daemon records exits and stop right away.
  await writeServingMark(config.runRoot);
  // Route schemas stay uncompiled until a request needs them: compiling all of them would hold ~20 MiB more for
  // the daemon's lifetime, for routes most clients never call. The test suite compiles every one of them
  // (test/integration/service/lazy-validation.test.ts), so a broken schema cannot ship.

  async function stop(reason: string): Promise<void> {
    // Synchronously, before anything else: from here on no connection is accepted (under socket activation they
    // wait in systemd's queue for the next start), so none can be accepted only to be closed unanswered.
    const drained = drain();
    idle.stop();
    memory.stop();
    // Exits from here on must be recorded by the exit command itself (or by the next start's recovery).
    const unmarked = removeServingMark(config.runRoot).catch((err: unknown) => logger.warn({ err }, 'removing the serving mark failed'));
    logger.info({ reason }, 'shutting down: no new connections, finishing requests in flight');
    await notifier.stopping(`Stopping: ${reason}`);
    await Promise.all([drained, unmarked]);
    await app.close();
    // Never unlink a socket systemd owns: it keeps listening for the next activation.
    if (socketPath) await unlink(socketPath).catch(() => undefined);
    await engine.close();
    logger.flush();
    process.exit(0);
  }

  /**
   * Stops accepting at once (a connection accepted now would be closed unanswered), lets ordinary requests in
   * flight finish, closes keep-alive connections as they fall idle, and cuts long-lived streams (events, logs -f,
   * attach), which would never end by themselves; containers are not affected, conmon keeps them.
   */
  function drain(): Promise<void> {
    return new Promise((resolve) => {
      const deadline = Date.now() + SHUTDOWN_GRACE_MS;
      let sweep: NodeJS.Timeout | undefined;
      let warned = false;
      const finish = (): void => {
        if (sweep) clearInterval(sweep);
        resolve();
      };
      server.close(finish);
      const check = (): void => {
        server.closeIdleConnections();
        const ordinaryInFlight = idle.activeCount - streams.openStreams;
        if (ordinaryInFlight <= 0 || Date.now() > deadline) {
          if (ordinaryInFlight > 0 && !warned) {
            warned = true;
            logger.warn({ requests: ordinaryInFlight }, 'requests still in flight after the grace period; closing');
          }
          for (const socket of sockets) socket.destroy();
        }
      };
      sweep = setInterval(check, 50);
      check();
    });
  }

  stopHandler = (reason) => void shutdown(reason);
  if (pendingStop) stopHandler(pendingStop);
}

/** Set once the service can shut down cleanly; until then a stop request waits in `pendingStop`. */
let stopHandler: ((reason: string) => void) | undefined;
let pendingStop: string | undefined;

function requestStop(reason: string): void {
  if (stopHandler) stopHandler(reason);
  else pendingStop ??= reason;
}

/**
 * Idle keep-alive connections are closed well before the idle exit, at a time the server announces
 * (`Keep-Alive: timeout=`): otherwise a client reusing one just as the daemon exits would lose its request.
 */
function keepAliveFor(idleTimeoutSec: number): number {
  const dflt = resolveLimits().keepAliveTimeoutMs;
  return idleTimeoutSec > 0 ? Math.min(dflt, Math.max(500, (idleTimeoutSec * 1000) / 2)) : dflt;
}

function formatHost(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]` : address.address;
}

function warnTcp(logger: Logger, uri: string): void {
  const text =
    `WARNING: serving the API on ${uri} over plain TCP. Anyone who can reach this port controls the host as root ` +
    '(the API runs privileged containers) and there is no authentication. Use a unix socket, or TLS with client certificates.';
  process.stderr.write(`\n${'!'.repeat(100)}\n${text}\n${'!'.repeat(100)}\n\n`);
  logger.warn({ uri }, text);
}
