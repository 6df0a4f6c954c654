import { readFileSync } from 'node:fs';
import { packagePath } from './paths.js';

/** podserve's own version, from package.json (read once at start-up). */
export const PODSERVE_VERSION: string = (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;

/** The Podman release whose API podserve serves; clients gate features on it (podman-remote needs ≥ 4.0.0). */
export const LIBPOD_API_VERSION = '4.3.1';
export const LIBPOD_MIN_API_VERSION = '4.0.0';
/** Docker API version Podman 4.3.1 advertises; the docker CLI negotiates down to it. */
export const COMPAT_API_VERSION = '1.41';
export const COMPAT_MIN_API_VERSION = '1.24';
/** Podman 4.3.1 sends its vendored Buildah version on /_ping; kept for clients that log it. */
export const BUILDAH_VERSION = '1.28.2';
