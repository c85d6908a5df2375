/**
 * The server name (SNI) of a TLS ClientHello, read without terminating TLS (nginx's ssl_preread):
 * for apps that pass TLS through to their targets (`sniPreread`). Only the first handshake message
 * is looked at; it may span several records, up to MAX_CLIENT_HELLO bytes.
 */

export type ClientHello =
  | { kind: 'need-more' }
  /** Not a TLS handshake (or a malformed one): go on without a name. */
  | { kind: 'not-tls' }
  /** A whole ClientHello; `serverName` undefined when it carries none. */
  | { kind: 'ok'; serverName: string | undefined };

/** Bytes of handshake a ClientHello may take (post-quantum key shares make them ~2 KB today). */
export const MAX_CLIENT_HELLO = 16 * 1024;

const HANDSHAKE = 0x16;
const CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const HOST_NAME = 0x00;
const SERVER_NAME = /^[A-Za-z0-9._-]{1,253}$/;

const NEED_MORE: ClientHello = { kind: 'need-more' };
const NOT_TLS: ClientHello = { kind: 'not-tls' };

/** Looks at the bytes a client sent so far. */
export function parseClientHello(buf: Buffer): ClientHello {
  if (buf.length > 0 && buf[0] !== HANDSHAKE) return NOT_TLS;
  const parts: Buffer[] = [];
  let size = 0;
  let off = 0;
  for (;;) {
    if (buf.length < off + 5) return NEED_MORE;
    if (buf[off] !== HANDSHAKE || buf[off + 1] !== 3) return NOT_TLS;
    const len = buf.readUInt16BE(off + 3);
    if (len === 0 || size + len > MAX_CLIENT_HELLO + 4) return NOT_TLS;
    if (buf.length < off + 5 + len) return NEED_MORE;
    parts.push(buf.subarray(off + 5, off + 5 + len));
    size += len;
    off += 5 + len;
    const hs = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    if (hs.length < 4) continue;
    if (hs[0] !== CLIENT_HELLO) return NOT_TLS;
    const bodyLen = hs.readUIntBE(1, 3);
    if (bodyLen > MAX_CLIENT_HELLO) return NOT_TLS;
    if (hs.length >= 4 + bodyLen) return serverNameOf(hs.subarray(4, 4 + bodyLen));
  }
}

/** The ClientHello body: version, random, session id, ciphers, compression, then the extensions. */
function serverNameOf(body: Buffer): ClientHello {
  let p = 2 + 32;
  const skip = (lenBytes: 1 | 2): boolean => {
    if (p + lenBytes > body.length) return false;
    const n = lenBytes === 1 ? body[p]! : body.readUInt16BE(p);
    p += lenBytes + n;
    return p <= body.length;
  };
  if (!skip(1) || !skip(2) || !skip(1)) return NOT_TLS; // session id, cipher suites, compression methods
  if (p === body.length) return { kind: 'ok', serverName: undefined }; // no extensions at all
  if (p + 2 > body.length) return NOT_TLS;
  const end = Math.min(body.length, p + 2 + body.readUInt16BE(p));
  p += 2;
  while (p + 4 <= end) {
    const type = body.readUInt16BE(p);
    const len = body.readUInt16BE(p + 2);
    p += 4;
    if (p + len > end) return NOT_TLS;
    if (type === EXT_SERVER_NAME) return { kind: 'ok', serverName: hostName(body.subarray(p, p + len)) };
    p += len;
  }
  return { kind: 'ok', serverName: undefined };
}

/** server_name extension: a list of (type, name); the host_name one, if it looks like a host name. */
function hostName(ext: Buffer): string | undefined {
  if (ext.length < 2) return undefined;
  const end = Math.min(ext.length, 2 + ext.readUInt16BE(0));
  let p = 2;
  while (p + 3 <= end) {
    const type = ext[p]!;
    const len = ext.readUInt16BE(p + 1);
    p += 3;
    if (p + len > end) return undefined;
    if (type === HOST_NAME) {
      const name = ext.toString('latin1', p, p + len);
      return SERVER_NAME.test(name) ? name : undefined;
    }
    p += len;
  }
  return undefined;
}
