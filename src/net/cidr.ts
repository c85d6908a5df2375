/**
 * CIDR blocks and address matching for customer identification.
 *
 * A CIDR is parsed once into 32-bit words: one word for IPv4, four for IPv6, each with its mask.
 * Matching an address parses it (validated by node:net's isIP) into words the same way and
 * compares word by word, so a lookup costs no allocation beyond the parse.
 *
 * IPv4-mapped IPv6 (`::ffff:10.1.2.3`, what a dual-stack socket reports for an IPv4 peer) is
 * treated as the IPv4 address it carries, both as an address and as a CIDR
 * (`::ffff:10.0.0.0/104` is `10.0.0.0/8`), so IPv4 blocks match either spelling.
 */
import { isIP } from 'node:net';

export interface Cidr {
  /** 4 or 6; IPv4-mapped IPv6 blocks are 4 */
  readonly family: 4 | 6;
  /** prefix length in the family's bits (0..32 or 0..128) */
  readonly prefix: number;
  /** network address words (host bits cleared): one for IPv4, four for IPv6 */
  readonly words: Uint32Array;
  readonly masks: Uint32Array;
  /** as written */
  readonly text: string;
}

/** An address parsed for matching (see parseIp). */
export interface IpAddress {
  readonly family: 4 | 6;
  readonly words: Uint32Array;
}

function cidrError(s: unknown): Error {
  return new Error(`${JSON.stringify(s) ?? String(s)} is not a CIDR (use e.g. "10.1.0.0/16" or "2001:db8::/32")`);
}

function ipv4Word(s: string): number {
  const p = s.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

/** Eight 16-bit groups of a valid IPv6 address without zone. */
function ipv6Groups(s: string): number[] {
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) !== -1) {
    // embedded IPv4 in the last 32 bits
    const v4 = ipv4Word(s.slice(lastColon + 1));
    tail = [v4 >>> 16, v4 & 0xffff];
    // "::ffff:1.2.3.4" -> "::ffff", "1:2:3:4:5:6:1.2.3.4" -> "1:2:3:4:5:6", but "::1.2.3.4" -> "::"
    s = s.slice(0, s[lastColon - 1] === ':' ? lastColon + 1 : lastColon);
  }
  const want = 8 - tail.length;
  const gap = s.indexOf('::');
  const hex = (part: string): number[] => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)));
  let groups: number[];
  if (gap === -1) {
    groups = hex(s);
  } else {
    const head = hex(s.slice(0, gap));
    const rest = hex(s.slice(gap + 2));
    groups = [...head, ...new Array<number>(want - head.length - rest.length).fill(0), ...rest];
  }
  return [...groups, ...tail];
}

/**
 * Parses an IPv4 or IPv6 address (IPv6 with "::" compression, an embedded IPv4 tail or a
 * "%zone"); IPv4-mapped IPv6 becomes IPv4. Returns null for anything else.
 */
export function parseIp(address: string): IpAddress | null {
  if (typeof address !== 'string') return null;
  const family = isIP(address);
  if (family === 4) return { family: 4, words: Uint32Array.of(ipv4Word(address)) };
  if (family !== 6) return null;
  const zone = address.indexOf('%');
  const g = ipv6Groups(zone === -1 ? address : address.slice(0, zone));
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return { family: 4, words: Uint32Array.of(((g[6]! << 16) | g[7]!) >>> 0) };
  }
  const words = new Uint32Array(4);
  for (let i = 0; i < 4; i++) words[i] = ((g[2 * i]! << 16) | g[2 * i + 1]!) >>> 0;
  return { family: 6, words };
}

/** Mask word `i` of a prefix: the prefix's bits that fall into bits 32*i .. 32*i+31. */
function maskWord(prefix: number, i: number): number {
  const bits = Math.min(32, Math.max(0, prefix - 32 * i));
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/**
 * "10.1.0.0/16", "2001:db8::/32", "::ffff:10.0.0.0/104"; a bare address is a /32 or /128.
 * Host bits after the prefix are ignored ("10.1.2.3/16" is 10.1.0.0/16).
 * Throws an Error saying what is expected for anything else.
 */
export function parseCidr(s: string): Cidr {
  if (typeof s !== 'string') throw cidrError(s);
  const slash = s.indexOf('/');
  const addressText = slash === -1 ? s : s.slice(0, slash);
  const prefixText = slash === -1 ? undefined : s.slice(slash + 1);
  if (addressText.includes('%')) throw cidrError(s); // zones have no place in a block
  const family = isIP(addressText);
  if (family === 0) throw cidrError(s);
  const bits = family === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) throw cidrError(s);
  let prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) throw cidrError(s);

  const ip = parseIp(addressText)!;
  if (family === 6 && ip.family === 4) {
    // IPv4-mapped: the block is an IPv4 block when its prefix keeps the ::ffff: part whole.
    if (prefix < 96) return build(6, prefix, v6Words(addressText), s);
    prefix -= 96;
  }
  return build(ip.family, prefix, ip.words, s);
}

/** The four words of an IPv6 address, without turning a mapped address into IPv4. */
function v6Words(address: string): Uint32Array {
  const g = ipv6Groups(address);
  const words = new Uint32Array(4);
  for (let i = 0; i < 4; i++) words[i] = ((g[2 * i]! << 16) | g[2 * i + 1]!) >>> 0;
  return words;
}

function build(family: 4 | 6, prefix: number, address: Uint32Array, text: string): Cidr {
  const n = family === 4 ? 1 : 4;
  const words = new Uint32Array(n);
  const masks = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    masks[i] = maskWord(prefix, i);
    words[i] = (address[i]! & masks[i]!) >>> 0;
  }
  return { family, prefix, words, masks, text };
}

/** A parsed address as is; anything else through parseIp (so undefined, say, is null). */
function toIp(address: string | IpAddress): IpAddress | null {
  return typeof address === 'object' && address !== null ? address : parseIp(address);
}

function contains(cidr: Cidr, ip: IpAddress): boolean {
  if (ip.family !== cidr.family) return false;
  const { words, masks } = cidr;
  for (let i = 0; i < words.length; i++) {
    if (((ip.words[i]! & masks[i]!) >>> 0) !== words[i]) return false;
  }
  return true;
}

/** Whether `address` (a string, or parsed by parseIp) is in `cidr`; false for an invalid address. */
export function cidrContains(cidr: Cidr, address: string | IpAddress): boolean {
  const ip = toIp(address);
  return ip !== null && contains(cidr, ip);
}

/** A set of CIDRs; `has` parses the address once and checks the blocks of its family. */
export class CidrSet {
  readonly cidrs: readonly Cidr[];
  readonly #v4: Cidr[];
  readonly #v6: Cidr[];
  /** Throws the parseCidr error of the first bad entry. */
  constructor(cidrs: readonly string[]) {
    this.cidrs = cidrs.map(parseCidr);
    this.#v4 = this.cidrs.filter((c) => c.family === 4);
    this.#v6 = this.cidrs.filter((c) => c.family === 6);
  }
  get size(): number {
    return this.cidrs.length;
  }
  has(address: string | IpAddress): boolean {
    const ip = toIp(address);
    if (ip === null) return false;
    for (const cidr of ip.family === 4 ? this.#v4 : this.#v6) {
      if (contains(cidr, ip)) return true;
    }
    return false;
  }
}
