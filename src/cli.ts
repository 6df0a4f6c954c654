#!/usr/bin/env node
/** podserve's entry point: parse the command line, then run the service (loaded lazily to keep --help quick). */
import { parseCommandLine, UsageError, USAGE, type Command } from './args.js';
import { PODSERVE_VERSION } from './version.js';

const CLEANUP_TIME_LIMIT_MS = 5 * 60_000;

async function main(): Promise<void> {
  let command: Command;
  try {
    command = parseCommandLine(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`Error: ${err.message}\n\n${USAGE}`);
      process.exit(125);
    }
    throw err;
  }
  if (command.kind === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (command.kind === 'version') {
    process.stdout.write(`podserve version ${PODSERVE_VERSION}\n`);
    return;
  }
  if (command.kind === 'cleanup') {
    // A one-shot run from conmon: it must never linger, whatever handle a part leaves open.
    setTimeout(() => process.exit(1), CLEANUP_TIME_LIMIT_MS).unref();
    const { runCleanup } = await import('./cleanup.js');
    await runCleanup(command.config, command.containerId);
    process.exit(0);
  }
  const { runService } = await import('./service.js');
  await runService(command.config);
}

main().catch((err: unknown) => {
  process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(125);
});
