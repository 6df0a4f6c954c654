/** Image fixtures made by scripts/fixtures.sh (run by scripts/setup.sh --test) from Debian's busybox-static. */
import { createReadStream, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';

export const FIXTURES = process.env.PODSERVE_FIXTURES ?? '/var/tmp/podserve-fixtures';
export const BUSYBOX_DOCKER_ARCHIVE = join(FIXTURES, 'busybox-docker.tar');
export const BUSYBOX_OCI_ARCHIVE = join(FIXTURES, 'busybox-oci.tar');
export const BUSYBOX_ROOTFS = join(FIXTURES, 'busybox-rootfs.tar');
export const BUSYBOX_ID = (): string => readFileSync(join(FIXTURES, 'busybox.id'), 'utf8').trim();

/** Streams a file as a request body; resolves with status and body. */
export function postFile(socketPath: string, path: string, file: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, method: 'POST', path, headers: { 'Content-Type': 'application/x-tar' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    createReadStream(file).pipe(req);
  });
}

/** Loads localhost/busybox:latest into a daemon through the API. */
export async function loadBusybox(socketPath: string): Promise<void> {
  const res = await postFile(socketPath, '/v4.3.1/libpod/images/load', BUSYBOX_DOCKER_ARCHIVE);
  if (res.status !== 200) throw new Error(`loading busybox failed: ${res.status} ${res.body}`);
}
