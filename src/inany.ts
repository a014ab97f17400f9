// SPDX-License-Identifier: GPL-2.0-or-later
// inany.ts - IPv4 and IPv6 addresses in one 16-byte form, for tables and NAT
//
// An "inany" is 16 bytes: an IPv6 address as is, or an IPv4 address a.b.c.d
// as the IPv4-mapped IPv6 address ::ffff:a.b.c.d (RFC 4291 2.5.5.2: "the
// first 80 bits are zero, the next 16 bits are one, and the remaining 32 bits
// are the IPv4 address"). One form lets the flow table and the NAT rules treat
// both versions alike, as passt's `union inany_addr` does.
//
// Storing one in an array slot: tables keep addresses in one flat Uint8Array,
// 16 bytes per slot; write with `inanyFrom4(a4, table, slot * 16)` or
// `table.set(inany, slot * 16)`, and compare in place with
// `inanyEqual(table, other, slot * 16)`. Every function here takes an
// optional byte offset for that reason, so the hot paths create no subarray.

/** Length of an inany address in bytes. */
export const INANY_LEN = 16;

/** ::ffff:127.0.0.1 */
export const INANY_LOOPBACK4: Uint8Array = inanyFrom4(new Uint8Array([127, 0, 0, 1]), new Uint8Array(16));
/** ::1 */
export const INANY_LOOPBACK6: Uint8Array = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);
/** ::ffff:0.0.0.0, the IPv4 unspecified address. */
export const INANY_ANY4: Uint8Array = inanyFrom4(new Uint8Array(4), new Uint8Array(16));
/** ::, the IPv6 unspecified address. */
export const INANY_ANY6: Uint8Array = new Uint8Array(16);

/**
 * Writes the IPv4-mapped form of `a4` (4 bytes, network order) at `out[off]`
 * and returns `out`. Never fails for a 4-byte `a4` and room in `out`.
 */
export function inanyFrom4(a4: Uint8Array, out: Uint8Array, off = 0): Uint8Array {
  out.fill(0, off, off + 10);
  out[off + 10] = 0xff;
  out[off + 11] = 0xff;
  out[off + 12] = a4[0]!;
  out[off + 13] = a4[1]!;
  out[off + 14] = a4[2]!;
  out[off + 15] = a4[3]!;
  return out;
}

/** Copies the IPv6 address `a6` (16 bytes) to `out[off]` and returns `out`. */
export function inanyFrom6(a6: Uint8Array, out: Uint8Array, off = 0): Uint8Array {
  for (let i = 0; i < 16; i++) out[off + i] = a6[i]!;
  return out;
}

/**
 * Writes `addr` (4 bytes: IPv4, 16 bytes: IPv6) as an inany at `out[off]` and
 * returns `out`; the form callers use when the version is only known from the length.
 */
export function inanyFrom(addr: Uint8Array, out: Uint8Array, off = 0): Uint8Array {
  return addr.byteLength === 4 ? inanyFrom4(addr, out, off) : inanyFrom6(addr, out, off);
}

/** Returns whether the inany at `a[off]` is an IPv4-mapped address. */
export function inanyIs4(a: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 10; i++) if (a[off + i] !== 0) return false;
  return a[off + 10] === 0xff && a[off + 11] === 0xff;
}

/**
 * Returns a 4-byte view (a subarray, no copy) of the IPv4 address inside the
 * inany `a`, or null if `a` is not IPv4-mapped. Allocates the view: hot paths
 * test inanyIs4() and read bytes 12-15 in place.
 */
export function inanyV4(a: Uint8Array, off = 0): Uint8Array | null {
  return inanyIs4(a, off) ? a.subarray(off + 12, off + 16) : null;
}

/** Returns whether the 16 bytes at `a[aOff]` equal those at `b[bOff]`. */
export function inanyEqual(a: Uint8Array, b: Uint8Array, aOff = 0, bOff = 0): boolean {
  for (let i = 0; i < 16; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/**
 * Returns whether the inany at `a[off]` is the IPv4 address `a4` (4 bytes);
 * false if `a4` is null (an unset configuration address), as upstream's
 * inany_equals4 with an unspecified operand never matches a real address.
 */
export function inanyEquals4(a: Uint8Array, a4: Uint8Array | null, off = 0): boolean {
  if (a4 === null || !inanyIs4(a, off)) return false;
  return a[off + 12] === a4[0] && a[off + 13] === a4[1] && a[off + 14] === a4[2] && a[off + 15] === a4[3];
}

/** Returns whether the inany at `a[off]` is the IPv6 address `a6`; false if `a6` is null. */
export function inanyEquals6(a: Uint8Array, a6: Uint8Array | null, off = 0): boolean {
  return a6 !== null && a6.byteLength === 16 && inanyEqual(a, a6, off, 0);
}

/** Returns whether the inany at `a[off]` is a loopback address: 127.0.0.0/8 or ::1. */
export function inanyIsLoopback(a: Uint8Array, off = 0): boolean {
  if (inanyIs4(a, off)) return a[off + 12] === 127;
  for (let i = 0; i < 15; i++) if (a[off + i] !== 0) return false;
  return a[off + 15] === 1;
}

/** Returns whether the inany at `a[off]` is exactly 127.0.0.1 (mapped) or ::1. */
export function inanyIsLoopbackExact(a: Uint8Array, off = 0): boolean {
  return inanyEqual(a, INANY_LOOPBACK4, off) || inanyEqual(a, INANY_LOOPBACK6, off);
}

/** Returns whether the inany at `a[off]` is unspecified: :: or ::ffff:0.0.0.0. */
export function inanyIsUnspecified(a: Uint8Array, off = 0): boolean {
  if (inanyIs4(a, off)) return (a[off + 12]! | a[off + 13]! | a[off + 14]! | a[off + 15]!) === 0;
  for (let i = 0; i < 16; i++) if (a[off + i] !== 0) return false;
  return true;
}

/** Returns whether the inany at `a[off]` is an IPv6 link-local unicast address (fe80::/10). */
export function inanyIsLinkLocal6(a: Uint8Array, off = 0): boolean {
  return a[off] === 0xfe && (a[off + 1]! & 0xc0) === 0x80;
}

/** Returns whether the inany at `a[off]` is multicast: 224.0.0.0/4 or ff00::/8. */
export function inanyIsMulticast(a: Uint8Array, off = 0): boolean {
  if (inanyIs4(a, off)) return (a[off + 12]! & 0xf0) === 0xe0;
  return a[off] === 0xff;
}

/**
 * Returns the inany at `a[off]` as text: dotted quad for IPv4-mapped
 * addresses, RFC 5952 form otherwise. Allocates: logs only.
 */
export function inanyToString(a: Uint8Array, off = 0): string {
  if (inanyIs4(a, off)) return `${a[off + 12]}.${a[off + 13]}.${a[off + 14]}.${a[off + 15]}`;
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((a[off + 2 * i]! << 8) | a[off + 2 * i + 1]!);
  // Longest run of two or more zero words becomes "::" (RFC 5952 4.2.2, 4.2.3).
  let bestStart = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(":");
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}
