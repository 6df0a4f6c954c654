/**
 * Where podserve's own files are, whether it runs from tsc's output (dist/src/…) or from the bundle
 * (dist/bundle/podserve.cjs, see scripts/bundle.mjs and src/launch.cts), where every module shares one location.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/**
 * require() for packages and addons loaded on demand. Never import() for those: functions V8 restores from the
 * launcher's code cache cannot run import() (Node 20 loses the script's dynamic-import callback with the cache).
 */
export const requireOnDemand = createRequire(import.meta.url);

/** The checkout (or installed package) directory: the nearest ancestor holding package.json. */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`podserve: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  root = dir;
  return root;
}

/** A file of the package, by its path from the package root. */
export function packagePath(relative: string): string {
  return join(packageRoot(), relative);
}

declare global {
  /** Set by src/launch.cts: the script this process was started through. */
  var podserveLauncher: string | undefined; // eslint-disable-line no-var
}

/**
 * The script conmon's exit command runs (`container cleanup`): the launcher this daemon was started through, so
 * the exit command runs the same build, or tsc's cli.js when the daemon runs in-process (tests).
 */
export function cliEntry(): string {
  return globalThis.podserveLauncher ?? packagePath('dist/src/cli.js');
}
