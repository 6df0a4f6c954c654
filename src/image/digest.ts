import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export const sha256Re = /^sha256:[a-f0-9]{64}$/;

export function sha256Digest(data: string | Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** `sha256:<hex>` → `<hex>`; throws on anything but a well-formed sha256 digest. */
export function digestHex(digest: string): string {
  if (!sha256Re.test(digest)) throw new Error(`unsupported digest "${digest}"`);
  return digest.slice('sha256:'.length);
}

export function isSha256Digest(s: unknown): s is string {
  return typeof s === 'string' && sha256Re.test(s);
}

/** Pass-through stream that hashes and counts what flows through it. */
export class HashingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  /** Valid once the stream has ended. */
  digest(): string {
    return `sha256:${this.hash.copy().digest('hex')}`;
  }
}

/** Incremental hasher for code that writes chunks itself. */
export class Sha256Counter {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;

  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }

  digest(): string {
    return `sha256:${this.hash.copy().digest('hex')}`;
  }
}
