/**
 * `podserve container cleanup ID`: the exit command conmon runs when a container exits (as Podman's
 * `podman container cleanup`). When a daemon serves the socket — or systemd starts one on connection — that
 * daemon records the exit itself (it watches the exit files and reconciles at start-up), so this only pings
 * it. When nothing answers, the exit is handled here: the engine opens, recovery records every exit that
 * happened meanwhile and applies restart policies and auto-removal, and the process ends.
 */
import { request } from 'node:http';
import type { DaemonConfig } from './config.js';
import { Engine } from './engine/engine.js';
import { createLogger } from './logger.js';

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

export async function runCleanup(config: DaemonConfig, containerId: string): Promise<void> {
  const logger = createLogger(config.logLevel);
  if (await daemonAnswers(config.uri)) {
    logger.debug({ containerId }, 'a daemon is serving: it records the exit');
    return;
  }
  logger.info({ containerId }, 'no daemon: recording the exit here');
  const engine = await Engine.open(config, logger);
  await engine.close();
  logger.flush();
}
