#!/usr/bin/env node
/**
 * Bundles the daemon (tsc's dist/src/cli.js and everything it imports) into one CommonJS file,
 * dist/bundle/podserve.cjs, which src/launch.cts runs with a V8 code cache. One file instead of ~400 modules
 * is most of podserve's start-up time (see bench/README.md). Native packages stay outside, loaded from
 * node_modules at run time. Run by `npm run build` and scripts/setup.sh, after tsc.
 */
import { build } from 'esbuild';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist/bundle');
const outfile = join(outDir, 'podserve.cjs');
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

const result = await build({
  entryPoints: [join(root, 'dist/src/cli.js')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // Native addons and their loaders resolve files next to themselves; ws's optional accelerators are absent.
  external: ['better-sqlite3', 'node-unix-socket', 'node-pty', 'bufferutil', 'utf-8-validate', '*.node'],
  // Every module of the bundle lives at the bundle's URL (src/paths.ts finds the package root from there).
  define: { 'import.meta.url': '__podserveBundleUrl' },
  banner: { js: "const __podserveBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  // Not minified (readable stack traces; the code cache makes it pointless for start-up). No keepNames: its
  // per-closure name fix-ups cost ~50% more CPU per request (_ping: 31-36 vs 19-22 µs, A/B on this machine).
  sourcemap: 'linked',
  // Licence comments of bundled packages go to podserve.cjs.LEGAL.txt: the bundle itself stays ASCII, which the
  // launcher reads as latin1, without UTF-8 decoding (12-15 ms of a ~170 ms start here).
  legalComments: 'external',
  write: false,
  logLevel: 'warning',
});
for (const file of result.outputFiles) {
  if (file.path === outfile && /[^\x00-\x7f]/.test(file.text)) {
    console.warn('bundle: podserve.cjs has non-ASCII characters (a comment or a regex?): the launcher will read it more slowly');
  }
  // The launcher compiles the bundle wrapped as a function body, where the entry's #! line is a syntax error.
  const text = file.path === outfile ? file.text.replace(/^#!.*\n/, '\n') : file.text;
  writeFileSync(file.path, text);
}
