/**
 * A PEM file of the config (a certificate, a key, CAs) and its contents as read at load time. The contents stay out of JSON (a private key
 * must never end up in a log line or an API answer): it serialises as its path.
 */
export class PemFile {
  readonly #pem: Buffer;
  constructor(
    readonly path: string,
    pem: Buffer,
  ) {
    this.#pem = pem;
  }
  get pem(): Buffer {
    return this.#pem;
  }
  /** Same file contents (a reload that changed nothing keeps the TLS context and its session keys). */
  equals(other: PemFile | undefined): boolean {
    return other !== undefined && this.#pem.equals(other.pem);
  }
  toJSON(): string {
    return this.path;
  }
}
