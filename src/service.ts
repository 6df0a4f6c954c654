/**
 * `podserve service`: open the engine, build the app, listen (unix socket, systemd socket activation, or TCP
 * when asked), exit when idle or on SIGTERM/SIGINT after in-flight requests finish.
 */
import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { DaemonConfig } from './config.js';
import { Engine } from './engine/engine.js';
import { IdleTracker } from './http/idle.js';
import { createLogger } from './logger.js';
import { buildApp } from './server.js';

const SD_LISTEN_FDS_START = 3;

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

async function listenUnix(server: Server, path: string, group: string | undefined): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await clearStaleSocket(path);
  // Create the socket 0660 from the start: no window in which others could connect.
  const previous = process.umask(0o117);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(previous);
  }
  await chmod(path, 0o660);
  await chown(path, 0, group === undefined ? 0 : groupId(group));
}

async function listenFd(server: Server, fd: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function listenTcp(server: Server, host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export async function runService(config: DaemonConfig): Promise<void> {
  const activationFds = takeActivationFds();
  const logger = createLogger(config.logLevel);
  const engine = await Engine.open(config, logger);

  let shuttingDown: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    shuttingDown ??= stop(reason);
    return shuttingDown;
  };
  const idle = new IdleTracker(config.idleTimeoutSec, () => void shutdown('idle timeout'));
  const app = await buildApp({ engine, logger, idle });
  await app.ready();
  const server = app.server;
  idle.attach(server);

  let socketPath: string | undefined;
  if (activationFds.length > 0) {
    if (activationFds.length > 1) logger.warn({ fds: activationFds.length }, 'systemd passed several sockets; serving the first');
    await listenFd(server, activationFds[0]!);
    logger.info({ fd: activationFds[0] }, 'serving on the socket passed by systemd');
  } else if (config.uri.startsWith('unix://')) {
    socketPath = config.uri.slice('unix://'.length);
    await listenUnix(server, socketPath, config.socketGroup);
    logger.info({ socket: socketPath }, 'serving');
  } else {
    const url = new URL(config.uri);
    warnTcp(logger, config.uri);
    await listenTcp(server, url.hostname, Number(url.port));
  }

  async function stop(reason: string): Promise<void> {
    logger.info({ reason }, 'shutting down: no new connections, finishing requests in flight');
    idle.stop();
    await closeApp(app);
    // Never unlink a socket systemd owns: it keeps listening for the next activation.
    if (socketPath) await unlink(socketPath).catch(() => undefined);
    await engine.close();
    logger.flush();
    process.exit(0);
  }

  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

async function closeApp(app: FastifyInstance): Promise<void> {
  await app.close();
}

function warnTcp(logger: Logger, uri: string): void {
  const text =
    `WARNING: serving the API on ${uri} over plain TCP. Anyone who can reach this port controls the host as root ` +
    '(the API runs privileged containers) and there is no authentication. Use a unix socket, or TLS with client certificates.';
  process.stderr.write(`\n${'!'.repeat(100)}\n${text}\n${'!'.repeat(100)}\n\n`);
  logger.warn({ uri }, text);
}
