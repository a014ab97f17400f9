// SPDX-License-Identifier: GPL-2.0-or-later
// addr.ts - textual IPv4, IPv6 and MAC addresses to and from bytes, and address class predicates
//
// Addresses are plain Uint8Arrays in network order: 4 bytes for IPv4, 16 for
// IPv6, 6 for MAC. Parsers take user or configuration text and return null on
// anything they do not accept; they never throw. Formatters take bytes of the
// right length (a wrong length is a programmer error and throws RangeError).

/** Length in bytes of an IPv4 address. */
export const IPV4_ADDR_LEN = 4;
/** Length in bytes of an IPv6 address. */
export const IPV6_ADDR_LEN = 16;
/** Length in bytes of an Ethernet MAC address. */
export const MAC_ADDR_LEN = 6;

const CODE_0 = 0x30;
const CODE_9 = 0x39;

function hexDigit(code: number): number {
  if (code >= CODE_0 && code <= CODE_9) return code - CODE_0;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** Writes dotted-quad `text` into `out` at `offset`; returns false if it is not strict dotted-quad. */
function parseIpv4Into(text: string, out: Uint8Array, offset: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const code = i < text.length ? text.charCodeAt(i) : 0x2e;
    if (code === 0x2e) {
      // Leading zeros ("010") are rejected: inet_aton reads them as octal.
      if (digits === 0 || part > 3) return false;
      out[offset + part] = value;
      part++;
      value = 0;
      digits = 0;
    } else if (code >= CODE_0 && code <= CODE_9) {
      if (digits > 0 && value === 0) return false;
      value = value * 10 + (code - CODE_0);
      digits++;
      if (value > 255) return false;
    } else {
      return false;
    }
  }
  return part === 4;
}

/**
 * Returns the 4 bytes of a dotted-quad IPv4 address, or null unless `text` is
 * exactly four decimal parts 0-255 without leading zeros (so "010.0.0.1", which
 * inet_aton would read as octal, is refused rather than guessed at).
 * @example parseIpv4("198.51.100.1") // Uint8Array [198, 51, 100, 1]
 */
export function parseIpv4(text: string): Uint8Array | null {
  const out = new Uint8Array(IPV4_ADDR_LEN);
  return parseIpv4Into(text, out, 0) ? out : null;
}

/**
 * Returns the 16 bytes of a textual IPv6 address (RFC 4291 section 2.2: full
 * form, "::" compression, embedded dotted-quad tail), or null if the text is not
 * one. A zone ("fe80::1%eth0") is refused: the caller splits it off first.
 * @example parseIpv6("2001:db8::10") // 20 01 0d b8 00 .. 00 10
 */
export function parseIpv6(text: string): Uint8Array | null {
  const out = new Uint8Array(IPV6_ADDR_LEN);
  if (text.length < 2) return null;
  const groups: number[] = [];
  let gapAt = -1; // index in `groups` where "::" stands
  let i = 0;
  if (text.startsWith("::")) {
    gapAt = 0;
    i = 2;
  } else if (text.charCodeAt(0) === 0x3a) {
    return null;
  }
  while (i < text.length) {
    let end = i;
    let value = 0;
    while (end < text.length && end - i < 5) {
      const d = hexDigit(text.charCodeAt(end));
      if (d < 0) break;
      value = value * 16 + d;
      end++;
    }
    const stop = end < text.length ? text.charCodeAt(end) : -1;
    if (stop === 0x2e) {
      // A dotted quad may only stand in the last 32 bits.
      if (groups.length > 6) return null;
      if (!parseIpv4Into(text.slice(i), out, 12)) return null;
      groups.push((out[12]! << 8) | out[13]!, (out[14]! << 8) | out[15]!);
      i = text.length;
      break;
    }
    if (end === i || end - i > 4) return null;
    groups.push(value);
    if (groups.length > 8) return null;
    if (stop === -1) {
      i = end;
      break;
    }
    if (stop !== 0x3a) return null;
    if (text.charCodeAt(end + 1) === 0x3a) {
      if (gapAt >= 0) return null;
      gapAt = groups.length;
      i = end + 2;
    } else {
      i = end + 1;
      if (i === text.length) return null; // trailing single ':'
    }
  }
  const n = groups.length;
  if (gapAt < 0 ? n !== 8 : n > 7) return null;
  // Words skipped by "::" stay zero, as `out` started zeroed; the dotted tail,
  // if any, is rewritten at its final place (words 6 and 7) below.
  let word = 0;
  for (let g = 0; g < n; g++) {
    if (g === gapAt) word += 8 - n;
    out[word * 2] = groups[g]! >>> 8;
    out[word * 2 + 1] = groups[g]! & 0xff;
    word++;
  }
  return out;
}

/**
 * Returns the address bytes of `text` read as IPv4 if it has a dot and no
 * colon, else as IPv6; null if neither reads it.
 */
export function parseIp(text: string): Uint8Array | null {
  return text.includes(":") ? parseIpv6(text) : parseIpv4(text);
}

function assertLength(bytes: Uint8Array, len: number, what: string): void {
  if (bytes.byteLength !== len) {
    throw new RangeError(`${what} needs ${len} bytes, got ${bytes.byteLength}`);
  }
}

/**
 * Returns the dotted-quad text of a 4-byte IPv4 address.
 * Throws RangeError if `addr` is not 4 bytes long (a programmer error).
 */
export function formatIpv4(addr: Uint8Array): string {
  assertLength(addr, IPV4_ADDR_LEN, "formatIpv4");
  return `${addr[0]}.${addr[1]}.${addr[2]}.${addr[3]}`;
}

/**
 * Returns the RFC 5952 text of a 16-byte IPv6 address: lower-case hex, no
 * leading zeros, the longest run of two or more zero words (the first on a tie)
 * shortened to "::", and IPv4-mapped addresses written as ::ffff:a.b.c.d.
 * Throws RangeError if `addr` is not 16 bytes long (a programmer error).
 */
export function formatIpv6(addr: Uint8Array): string {
  assertLength(addr, IPV6_ADDR_LEN, "formatIpv6");
  if (isIpv4Mapped(addr)) return `::ffff:${addr[12]}.${addr[13]}.${addr[14]}.${addr[15]}`;
  let bestStart = -1;
  let bestLen = 1; // RFC 5952 4.2.2: a single zero word is not shortened
  for (let w = 0; w < 8; ) {
    if (addr[w * 2] === 0 && addr[w * 2 + 1] === 0) {
      let end = w;
      while (end < 8 && addr[end * 2] === 0 && addr[end * 2 + 1] === 0) end++;
      if (end - w > bestLen) {
        bestStart = w;
        bestLen = end - w;
      }
      w = end;
    } else {
      w++;
    }
  }
  let text = "";
  for (let w = 0; w < 8; w++) {
    if (w === bestStart) {
      text += "::";
      w += bestLen - 1;
      continue;
    }
    if (text.length > 0 && !text.endsWith(":")) text += ":";
    text += ((addr[w * 2]! << 8) | addr[w * 2 + 1]!).toString(16);
  }
  return text;
}

/** Returns the text of a 4- or 16-byte address; throws RangeError on another length. */
export function formatIp(addr: Uint8Array): string {
  return addr.byteLength === IPV4_ADDR_LEN ? formatIpv4(addr) : formatIpv6(addr);
}

/**
 * Returns the 6 bytes of a MAC address written as six two-digit hex bytes
 * separated by ':' (either case), or null for anything else.
 * @example parseMac("9a:55:9a:55:9a:55")
 */
export function parseMac(text: string): Uint8Array | null {
  if (text.length !== 17) return null;
  const out = new Uint8Array(MAC_ADDR_LEN);
  for (let b = 0; b < MAC_ADDR_LEN; b++) {
    const hi = hexDigit(text.charCodeAt(b * 3));
    const lo = hexDigit(text.charCodeAt(b * 3 + 1));
    if (hi < 0 || lo < 0) return null;
    if (b < 5 && text.charCodeAt(b * 3 + 2) !== 0x3a) return null;
    out[b] = (hi << 4) | lo;
  }
  return out;
}

/** Returns "xx:xx:xx:xx:xx:xx" in lower case; throws RangeError unless `mac` is 6 bytes. */
export function formatMac(mac: Uint8Array): string {
  assertLength(mac, MAC_ADDR_LEN, "formatMac");
  let text = "";
  for (let b = 0; b < MAC_ADDR_LEN; b++) {
    if (b > 0) text += ":";
    text += mac[b]!.toString(16).padStart(2, "0");
  }
  return text;
}

/** Returns true if `a` and `b` hold the same bytes (false if lengths differ). */
export function addrEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Returns true if every byte is zero (0.0.0.0, ::, 00:00:00:00:00:00). */
export function isUnspecified(addr: Uint8Array): boolean {
  for (let i = 0; i < addr.byteLength; i++) if (addr[i] !== 0) return false;
  return true;
}

/** Returns true for 127.0.0.0/8 (RFC 1122 3.2.1.3); false for any other length. */
export function isLoopback4(addr: Uint8Array): boolean {
  return addr.byteLength === IPV4_ADDR_LEN && addr[0] === 127;
}

/** Returns true for ::1 only; false for any other length. */
export function isLoopback6(addr: Uint8Array): boolean {
  if (addr.byteLength !== IPV6_ADDR_LEN || addr[15] !== 1) return false;
  for (let i = 0; i < 15; i++) if (addr[i] !== 0) return false;
  return true;
}

/** Returns true for 169.254.0.0/16 (RFC 3927); false for any other length. */
export function isLinkLocal4(addr: Uint8Array): boolean {
  return addr.byteLength === IPV4_ADDR_LEN && addr[0] === 169 && addr[1] === 254;
}

/** Returns true for fe80::/10 (RFC 4291 2.5.6); false for any other length. */
export function isLinkLocal6(addr: Uint8Array): boolean {
  return addr.byteLength === IPV6_ADDR_LEN && addr[0] === 0xfe && (addr[1]! & 0xc0) === 0x80;
}

/**
 * Returns true for a multicast address by its length: 224.0.0.0/4 for 4 bytes,
 * ff00::/8 for 16, the group bit (I/G) for a 6-byte MAC; false otherwise.
 */
export function isMulticast(addr: Uint8Array): boolean {
  switch (addr.byteLength) {
    case IPV4_ADDR_LEN:
      return (addr[0]! & 0xf0) === 0xe0;
    case IPV6_ADDR_LEN:
      return addr[0] === 0xff;
    case MAC_ADDR_LEN:
      return (addr[0]! & 0x01) === 1;
    default:
      return false;
  }
}

/** Returns true for 255.255.255.255 or ff:ff:ff:ff:ff:ff. */
export function isBroadcast(addr: Uint8Array): boolean {
  if (addr.byteLength !== IPV4_ADDR_LEN && addr.byteLength !== MAC_ADDR_LEN) return false;
  for (let i = 0; i < addr.byteLength; i++) if (addr[i] !== 0xff) return false;
  return true;
}

/** Returns true for an IPv4-mapped IPv6 address, ::ffff:0:0/96 (RFC 4291 2.5.5.2). */
export function isIpv4Mapped(addr: Uint8Array): boolean {
  if (addr.byteLength !== IPV6_ADDR_LEN || addr[10] !== 0xff || addr[11] !== 0xff) return false;
  for (let i = 0; i < 10; i++) if (addr[i] !== 0) return false;
  return true;
}

/**
 * Returns the IPv4-mapped IPv6 form (::ffff:a.b.c.d) of a 4-byte address,
 * written into `out` if given (16 bytes) or a new array.
 * Throws RangeError if `v4` is not 4 bytes (a programmer error).
 */
export function ipv4MappedToIpv6(v4: Uint8Array, out: Uint8Array = new Uint8Array(IPV6_ADDR_LEN)): Uint8Array {
  assertLength(v4, IPV4_ADDR_LEN, "ipv4MappedToIpv6");
  assertLength(out, IPV6_ADDR_LEN, "ipv4MappedToIpv6 output");
  out.fill(0, 0, 10);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(v4, 12);
  return out;
}

/**
 * Returns the 4-byte IPv4 address inside an IPv4-mapped IPv6 address, as a
 * subarray (no copy); null if `v6` is not ::ffff:0:0/96.
 */
export function fromMapped(v6: Uint8Array): Uint8Array | null {
  return isIpv4Mapped(v6) ? v6.subarray(12, 16) : null;
}
