// SPDX-License-Identifier: GPL-2.0-or-later
// checksum.ts - Internet checksum (RFC 1071): partial sums, folding, pseudo-headers
//
// TODO(#2): replaced by the tuned TypeScript and WebAssembly SIMD variants; the
// API below (sum16, fold, checksum, pseudoSum4, pseudoSum6) stays.

/**
 * Returns the one's-complement running sum of `bytes` read as big-endian
 * 16-bit words (an odd last byte is padded with zero), added to `init`.
 * The result is not folded: it is a non-negative integer below 2^32 once
 * folded with fold(); callers chain partial sums by passing one as `init`.
 * Chained parts must start on even offsets of the summed whole.
 */
export function sum16(bytes: Uint8Array, init = 0): number {
  let sum = init;
  const n = bytes.byteLength;
  let i = 0;
  for (; i + 1 < n; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < n) sum += bytes[i]! << 8;
  return fold32(sum);
}

/** Returns `sum` reduced modulo 0xffff to 32 bits, ready to be chained. */
function fold32(sum: number): number {
  // Numbers are exact to 2^53: reduce high bits by repeated end-around carry.
  while (sum > 0xffffffff) sum = (sum % 0x100000000) + Math.floor(sum / 0x100000000);
  return sum;
}

/** Returns the 16-bit one's-complement fold of a running sum (not inverted). */
export function fold(sum: number): number {
  sum = fold32(sum);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** Returns the Internet checksum of `bytes`: the inverted fold of their sum with `init`. */
export function checksum(bytes: Uint8Array, init = 0): number {
  return ~fold(sum16(bytes, init)) & 0xffff;
}

/**
 * Returns the running sum of the IPv4 pseudo-header (RFC 768, RFC 793):
 * source and destination addresses (4 bytes each), protocol and L4 length.
 */
export function pseudoSum4(src: Uint8Array, dst: Uint8Array, protocol: number, l4len: number): number {
  return sum16(dst, sum16(src, protocol + l4len));
}

/**
 * Returns the running sum of the IPv6 pseudo-header (RFC 8200 section 8.1):
 * addresses (16 bytes each), upper-layer length (32 bits) and next header.
 */
export function pseudoSum6(src: Uint8Array, dst: Uint8Array, nextHeader: number, l4len: number): number {
  return sum16(dst, sum16(src, nextHeader + (l4len >>> 16) + (l4len & 0xffff)));
}
