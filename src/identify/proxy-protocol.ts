/**
 * PROXY protocol v1 (text) and v2 (binary) headers, as written by HAProxy, AWS NLB, GCP and most
 * load balancers (spec: haproxy doc/proxy-protocol.txt). A trusted balancer puts one header in
 * front of the stream to say who the real client is.
 *
 * parseProxyHeader is pure and incremental: give it everything read so far; it answers
 * `need-more` until the header is complete, then `ok` with the header's length (the bytes after
 * it are the client's own), or `error` as soon as the bytes cannot start a valid header. It never
 * looks further than MAX_HEADER_BYTES, so a peer cannot make it buffer without end.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { parseIp } from '../net/cidr.js';

export interface Endpoint {
  address: string;
  port: number;
}

export type ProxyFamily = 'tcp4' | 'tcp6' | 'unknown';

export type ProxyParse =
  | { kind: 'need-more' }
  | { kind: 'error'; reason: string }
  | {
      kind: 'ok';
      version: 1 | 2;
      /** bytes of the header; the client's data starts here */
      length: number;
      family: ProxyFamily;
      /**
       * No client address to take (v2 LOCAL, v1 UNKNOWN, v2 UNSPEC/UNIX):
       * use the socket's own addresses.
       */
      local: boolean;
      source?: Endpoint;
      destination?: Endpoint;
    };

/** v1: "PROXY TCP6 <39> <39> 65535 65535\r\n" is the longest line the spec allows. */
export const V1_MAX_BYTES = 107;
/** v2 may carry up to 64 KiB of TLVs; nothing we use needs more than a few hundred bytes. */
export const MAX_HEADER_BYTES = 4096;

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED = 16;

const NEED_MORE = { kind: 'need-more' } as const;
const error = (reason: string): ProxyParse => ({ kind: 'error', reason });

/** Parse the PROXY header at the start of `buf` (everything the client has sent so far). */
export function parseProxyHeader(buf: Uint8Array): ProxyParse {
  if (buf.length === 0) return NEED_MORE;
  if (buf[0] === V1_PREFIX[0]) return parseV1(buf);
  if (buf[0] === V2_SIGNATURE[0]) return parseV2(buf);
  return error('no PROXY protocol header');
}

function startsLike(buf: Uint8Array, prefix: Uint8Array): boolean {
  const n = Math.min(buf.length, prefix.length);
  for (let i = 0; i < n; i++) if (buf[i] !== prefix[i]) return false;
  return true;
}

const PORT = /^(0|[1-9][0-9]{0,4})$/;

function parsePort(s: string | undefined): number | undefined {
  if (s === undefined || !PORT.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

function parseV1(buf: Uint8Array): ProxyParse {
  if (!startsLike(buf, V1_PREFIX)) return error('v1: bad signature');
  const limit = Math.min(buf.length, V1_MAX_BYTES);
  let end = -1;
  for (let i = 0; i < limit; i++) {
    const b = buf[i]!;
    if (b === 0x0a) {
      end = i;
      break;
    }
    // Only printable ASCII and the CR right before the LF.
    if (b === 0x0d ? i + 1 < buf.length && buf[i + 1] !== 0x0a : b < 0x20 || b > 0x7e) return error('v1: bad character');
  }
  if (end < 0) return buf.length >= V1_MAX_BYTES ? error(`v1: longer than ${V1_MAX_BYTES} bytes`) : NEED_MORE;
  if (end === 0 || buf[end - 1] !== 0x0d) return error('v1: line must end with CRLF');
  const line = Buffer.from(buf.buffer, buf.byteOffset, end - 1).toString('latin1');
  const parts = line.split(' ');
  const length = end + 1;
  if (parts[1] === 'UNKNOWN') return { kind: 'ok', version: 1, length, family: 'unknown', local: true };
  if (parts.length !== 6) return error('v1: expected "PROXY TCP4|TCP6 SRC DST SPORT DPORT"');
  const [, proto, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const isAddress = proto === 'TCP4' ? isIPv4 : proto === 'TCP6' ? isIPv6 : undefined;
  if (!isAddress) return error(`v1: unknown protocol ${JSON.stringify(proto)}`);
  if (!isAddress(src) || !isAddress(dst)) return error(`v1: bad ${proto} address`);
  const sourcePort = parsePort(sport);
  const destinationPort = parsePort(dport);
  if (sourcePort === undefined || destinationPort === undefined) return error('v1: bad port');
  return {
    kind: 'ok',
    version: 1,
    length,
    family: proto === 'TCP4' ? 'tcp4' : 'tcp6',
    local: false,
    source: { address: unmapIPv4(src), port: sourcePort },
    destination: { address: unmapIPv4(dst), port: destinationPort },
  };
}

function parseV2(buf: Uint8Array): ProxyParse {
  if (!startsLike(buf, V2_SIGNATURE)) return error('v2: bad signature');
  if (buf.length < V2_FIXED) {
    // Reject a wrong version byte as soon as it is there.
    if (buf.length > 12 && buf[12]! >> 4 !== 2) return error('v2: unsupported version');
    return NEED_MORE;
  }
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return error('v2: unsupported version');
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return error('v2: unknown command');
  const famProto = buf[13]!;
  const len = (buf[14]! << 8) | buf[15]!;
  const length = V2_FIXED + len;
  if (length > MAX_HEADER_BYTES) return error(`v2: longer than ${MAX_HEADER_BYTES} bytes`);
  if (buf.length < length) return NEED_MORE;
  // LOCAL: the balancer's own connection (health checks); addresses, if any, are ignored.
  if (cmd === 0) return { kind: 'ok', version: 2, length, family: 'unknown', local: true };
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  // UNSPEC and UNIX carry no address we can match on: the socket's own addresses stand.
  if (family === 0 || family === 3) return { kind: 'ok', version: 2, length, family: 'unknown', local: true };
  if (family > 3) return error('v2: unknown address family');
  if (transport !== 1) return error('v2: only STREAM (TCP) is proxied');
  const addrBytes = family === 1 ? 4 : 16;
  if (len < 2 * addrBytes + 4) return error('v2: address block too short');
  const at = V2_FIXED;
  const format = family === 1 ? formatIPv4 : formatIPv6;
  const portAt = at + 2 * addrBytes;
  // Anything after the addresses is TLVs (ALPN, authority, SSL, ...): skipped.
  return {
    kind: 'ok',
    version: 2,
    length,
    family: family === 1 ? 'tcp4' : 'tcp6',
    local: false,
    source: { address: format(buf, at), port: (buf[portAt]! << 8) | buf[portAt + 1]! },
    destination: { address: format(buf, at + addrBytes), port: (buf[portAt + 2]! << 8) | buf[portAt + 3]! },
  };
}

function formatIPv4(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** RFC 5952 text (longest zero run as "::"); IPv4-mapped addresses come out as plain IPv4. */
function formatIPv6(b: Uint8Array, at: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((b[at + 2 * i]! << 8) | b[at + 2 * i + 1]!);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return formatIPv4(b, at + 12);
  let bestAt = -1;
  let bestLen = 1; // a single zero group is not shortened
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

/** "::ffff:1.2.3.4" -> "1.2.3.4", as the connection does for socket addresses. */
function unmapIPv4(addr: string): string {
  return addr.toLowerCase().startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

// ---- sending --------------------------------------------------------------------------------

export type ProxyVersion = 'v1' | 'v2';

/** The 16 bytes of an IPv6 address, IPv4 as IPv4-mapped; undefined when not an address. */
function ipv6Bytes(address: string): Buffer | undefined {
  const ip = parseIp(address);
  if (!ip) return undefined;
  const out = Buffer.alloc(16);
  if (ip.family === 4) {
    out.writeUInt16BE(0xffff, 10);
    out.writeUInt32BE(ip.words[0]!, 12);
  } else for (let i = 0; i < 4; i++) out.writeUInt32BE(ip.words[i]!, 4 * i);
  return out;
}

/**
 * The header telling a target who the client is (`src`) and which proxy address it reached
 * (`dst`). Both IPv4: TCP4; otherwise TCP6 (IPv4 written as IPv4-mapped). Addresses that are not
 * IPs give v1 "UNKNOWN" / v2 LOCAL, and the target then sees the proxy's own address.
 */
export function encodeProxyHeader(version: ProxyVersion, src: Endpoint, dst: Endpoint): Buffer {
  const v4 = isIPv4(src.address) && isIPv4(dst.address);
  const srcBytes = v4 ? undefined : ipv6Bytes(src.address);
  const dstBytes = v4 ? undefined : ipv6Bytes(dst.address);
  const known = v4 || (srcBytes !== undefined && dstBytes !== undefined);
  if (version === 'v1') {
    if (!known) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    const [s, d] = v4 ? [src.address, dst.address] : [formatIPv6(srcBytes!, 0), formatIPv6(dstBytes!, 0)];
    // formatIPv6 turns mapped IPv4 back into dotted form; TCP6 needs the "::ffff:" spelling.
    const six = (a: string) => (isIPv4(a) ? `::ffff:${a}` : a);
    const line = v4 ? `PROXY TCP4 ${s} ${d} ${src.port} ${dst.port}\r\n` : `PROXY TCP6 ${six(s)} ${six(d)} ${src.port} ${dst.port}\r\n`;
    return Buffer.from(line, 'latin1');
  }
  if (!known) {
    const out = Buffer.alloc(V2_FIXED);
    V2_SIGNATURE.copy(out);
    out[12] = 0x20; // v2, LOCAL
    return out;
  }
  const addrBytes = v4 ? 4 : 16;
  const len = 2 * addrBytes + 4;
  const out = Buffer.alloc(V2_FIXED + len);
  V2_SIGNATURE.copy(out);
  out[12] = 0x21; // v2, PROXY
  out[13] = v4 ? 0x11 : 0x21; // INET / INET6, STREAM
  out.writeUInt16BE(len, 14);
  if (v4) {
    out.writeUInt32BE(parseIp(src.address)!.words[0]!, V2_FIXED);
    out.writeUInt32BE(parseIp(dst.address)!.words[0]!, V2_FIXED + 4);
  } else {
    srcBytes!.copy(out, V2_FIXED);
    dstBytes!.copy(out, V2_FIXED + 16);
  }
  out.writeUInt16BE(src.port, V2_FIXED + 2 * addrBytes);
  out.writeUInt16BE(dst.port, V2_FIXED + 2 * addrBytes + 2);
  return out;
}
