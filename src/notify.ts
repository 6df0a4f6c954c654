/**
 * The sd_notify(3) protocol, so podserve can run as `Type=notify`: one datagram of `KEY=value` lines to the
 * socket named by NOTIFY_SOCKET (`READY=1` when serving, `STATUS=…`, `STOPPING=1` on shutdown).
 *
 * Filesystem sockets are reached with node-unix-socket's datagram socket. Abstract names (`@name`) are not:
 * that library always passes the full 108-byte sockaddr, which names a different abstract socket than the one
 * systemd bound, so for those the message goes through `systemd-notify --pid=<our pid> --no-block`, which sends it
 * with our pid in its credentials (what `NotifyAccess=main` checks); no barrier is needed, since that pid is ours
 * and alive.
 */
import { execFile } from 'node:child_process';
import type { Logger } from 'pino';
import { findBinary } from './args.js';
import { requireOnDemand } from './paths.js';

/** Reads NOTIFY_SOCKET once and removes it, so no child (conmon, runc, containers) can talk to systemd as us. */
export function takeNotifySocket(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = env.NOTIFY_SOCKET;
  delete env.NOTIFY_SOCKET;
  if (value === undefined || value === '') return undefined;
  return value;
}

/** Values are single lines in the protocol; anything else would be read as more assignments. */
function formatMessage(fields: Record<string, string | number>): string {
  return Object.entries(fields)
    .map(([key, value]) => `${key}=${String(value).replace(/[\r\n]+/g, ' ')}`)
    .join('\n');
}

export class SystemdNotifier {
  constructor(
    /** NOTIFY_SOCKET as systemd gave it: `/path` or `@abstract`; undefined when not under systemd. */
    private readonly target: string | undefined,
    private readonly logger: Logger,
    private readonly notifyCommand: string = findBinary('systemd-notify'),
  ) {}

  get enabled(): boolean {
    return this.target !== undefined;
  }

  ready(status: string): Promise<boolean> {
    return this.send({ READY: 1, STATUS: status });
  }

  status(status: string): Promise<boolean> {
    return this.send({ STATUS: status });
  }

  stopping(status: string): Promise<boolean> {
    return this.send({ STOPPING: 1, STATUS: status });
  }

  /** Sends one message; resolves false (and logs) instead of failing: systemd being away must not stop the daemon. */
  async send(fields: Record<string, string | number>): Promise<boolean> {
    const target = this.target;
    if (target === undefined) return false;
    const message = formatMessage(fields);
    try {
      if (target.startsWith('/')) await sendDatagram(target, message);
      else if (target.startsWith('@')) await this.sendThroughSystemdNotify(target, message);
      else throw new Error(`unsupported NOTIFY_SOCKET address "${target}"`);
      this.logger.debug({ notify: message }, 'told systemd');
      return true;
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, notifySocket: target }, 'could not notify systemd');
      return false;
    }
  }

  private sendThroughSystemdNotify(target: string, message: string): Promise<void> {
    return new Promise((resolve, reject) => {
      execFile(
        this.notifyCommand,
        [`--pid=${process.pid}`, '--no-block', ...message.split('\n')],
        { env: { ...process.env, NOTIFY_SOCKET: target }, timeout: 5000 },
        (err, _stdout, stderr) => (err ? reject(new Error(`${this.notifyCommand}: ${stderr.trim() || err.message}`)) : resolve()),
      );
    });
  }
}

async function sendDatagram(path: string, message: string): Promise<void> {
  // Loaded on first use: most runs are not under systemd, and start-up time matters for socket activation.
  const { DgramSocket } = requireOnDemand('node-unix-socket') as typeof import('node-unix-socket');
  const socket = new DgramSocket();
  const payload = Buffer.from(message);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.sendTo(payload, 0, payload.length, path, (err) => (err ? reject(err) : resolve()));
    });
  } finally {
    socket.close();
  }
}
