/**
 * `podserve container cleanup ID`: the exit command conmon runs when a container exits (as Podman's
 * `podman container cleanup`). When a daemon serves the socket — or systemd starts one on connection — that
 * daemon records the exit itself (it watches the exit files and reconciles at start-up), so this only pings
 * it. When nothing answers, the exit is handled here: the engine opens, recovery records every exit that
 * happened meanwhile and applies restart policies and auto-removal, and the process ends.
 */
import { closeSync, existsSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { DaemonConfig } from './config.js';

function daemonAnswers(uri: string): Promise<boolean> {
  if (!uri.startsWith('unix://')) return Promise.resolve(false);
  return new Promise((resolve) => {
    const req = request({ socketPath: uri.slice('unix://'.length), path: '/_ping', timeout: 10_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Several containers can exit at once, each running its own cleanup: only one at a time may reconcile, or
 * two would apply the same restart policy. A lock file holding the owner's pid; a dead owner's lock is taken
 * over. (This path only runs while no daemon is up, so a short retry loop is fine here.)
 */
async function withCleanupLock<T>(runRoot: string, work: () => Promise<T>): Promise<T> {
  await mkdir(runRoot, { recursive: true, mode: 0o700 });
  const path = join(runRoot, 'cleanup.lock');
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(readFileSync(path, 'utf8').trim() || '0');
      if (!owner || !processAlive(owner)) {
        unlinkSync(path);
        continue;
      }
      if (Date.now() > deadline) throw new Error(`cleanup lock ${path} held by pid ${owner} for too long`);
      await delay(50);
    }
  }
  try {
    return await work();
  } finally {
    unlinkSync(path);
  }
}

export async function runCleanup(config: DaemonConfig, containerId: string): Promise<void> {
  // conmon runs this on every container exit, and nearly always a daemon is up and has recorded the exit itself:
  // that answer must stay cheap, so the engine and the logger (most of podserve's code) load only when needed.
  if (await daemonAnswers(config.uri)) {
    if (config.logLevel === 'debug' || config.logLevel === 'trace') {
      const { createLogger } = await import('./logger.js');
      createLogger(config.logLevel).debug({ containerId }, 'a daemon is serving: it records the exit');
    }
    return;
  }
  const { createLogger } = await import('./logger.js');
  const logger = createLogger(config.logLevel);
  if (!existsSync(join(config.root, 'state.db'))) {
    // The state is gone (removed with its directory): nothing to record, and nothing to recreate.
    logger.debug({ containerId, root: config.root }, 'no state store: nothing to clean up');
    return;
  }
  logger.info({ containerId }, 'no daemon: recording the exit here');
  const { Engine } = await import('./engine/engine.js');
  await withCleanupLock(config.runRoot, async () => {
    const engine = await Engine.open(config, logger);
    await engine.containers.settled();
    await engine.close();
  });
  logger.flush();
}
