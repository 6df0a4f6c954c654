/**
 * TLS with client certificates, the way Docker protects a remote API (`--tlsverify`): the server presents its
 * certificate and asks every client for one signed by the given CA. A client without such a certificate fails
 * the handshake, so no byte of its request is ever parsed.
 */
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { ServerOptions as HttpsServerOptions } from 'node:https';

export interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

async function readPem(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new Error(`cannot read ${flag} ${path}: ${(err as Error).message}`);
  }
}

/** Reads the three PEM files and checks that they make a usable context, so a mistake stops start-up clearly. */
export async function loadTlsOptions(files: TlsFiles, handshakeTimeoutMs: number): Promise<HttpsServerOptions> {
  const [cert, key, ca] = await Promise.all([
    readPem('--tls-cert', files.cert),
    readPem('--tls-key', files.key),
    readPem('--tls-ca', files.ca),
  ]);
  try {
    createSecureContext({ cert, key, ca });
  } catch (err) {
    throw new Error(`--tls-cert, --tls-key and --tls-ca do not make a usable TLS setup: ${(err as Error).message}`);
  }
  return {
    cert,
    key,
    ca,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    handshakeTimeout: handshakeTimeoutMs,
  };
}
