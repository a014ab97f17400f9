// SPDX-License-Identifier: GPL-2.0-or-later
// checksum.ts - Internet checksum (RFC 1071): partial sums, folding, pseudo-headers
//
// Theory of operation
//
// Three ways to sum, all returning the same folded value:
//   - sum16Reference(): one big-endian word at a time from the bytes. No setup,
//     so it is the fastest for small inputs (pseudo-headers, ARP, ICMP).
//   - sum16Ts(): a Uint16Array over the same memory, four int32 accumulators.
//   - sum16Wasm(): WebAssembly SIMD (checksum_wasm.ts), in place for views of
//     the wasm memory (frame buffers from allocWasmArena()), otherwise after a
//     copy into the memory's scratch region.
// sum16() picks one by size and by where the bytes live; the thresholds below
// were measured with perf/checksum.ts. checksumVariant() names the large-input
// choice for logs.
//
// Byte order (RFC 1071 section 2(B)): "the sum of 16-bit integers can be
// computed in either byte order". Typed arrays read host (little-endian)
// order, and a byte at an absolute buffer offset `a` then weighs 256^(a % 2)
// in the sum, whereas the big-endian sum of `bytes` wants 256^((a - start + 1) % 2),
// with `start` its byteOffset. Since 256 * 256 = 65536 ≡ 1 (mod 0xffff), the
// two agree when `start` is odd, and differ by a factor 256, a byte swap of
// the folded sum, when `start` is even. A leading byte on an odd offset and a
// trailing byte on an even offset fall outside the aligned words, and are
// added with the weight their offset gives them (b << 8 and b).
//
// All sums are exact only modulo 0xffff (one's complement with end-around
// carry): the 32-bit values from different variants may differ, their fold()
// never does.

import {
  SCRATCH_BYTES,
  type WasmSum,
  loadWasmSum,
  wasmBuffer,
  wasmBytes,
} from "./checksum_wasm.ts";

export {
  ARENA_ALIGN_BYTES,
  WASM_MEMORY_BYTES,
  allocWasmArena,
  wasmArenaFree,
} from "./checksum_wasm.ts";

// Thresholds, measured with perf/checksum.ts on a 2-vCPU x86-64 VM (AVX2),
// shared with other jobs (medians of 7, three runs): byte by byte runs at
// 0.9-1.8 GB/s at every size; wasm in place overtakes it at 64 B (1.1-1.6
// against 0.9-1.4 GB/s), wasm with a copy is about even at 128 B and ahead
// from 256 B, and TS (a view allocated per call) overtakes it at 256 B. With
// SIMD available, TS never wins for arrays outside the wasm memory: the copy
// plus SIMD beats it at every size from 128 B (65,520 B: 11-15 against 6-7 GB/s).

/** From this many bytes, views of the wasm memory are summed in place by wasm. */
export const WASM_IN_PLACE_MIN_BYTES = 64;

/** From this many bytes, other arrays are copied into wasm memory and summed there. */
export const WASM_COPY_MIN_BYTES = 128;

/** Without wasm, from this many bytes sum16Ts() beats the byte-by-byte loop. */
export const TS_MIN_BYTES = 256;

/** Every 16-bit word of the wasm memory: TS sums of arena views need no new view. */
const arenaWords = new Uint16Array(wasmBuffer);

/**
 * Words per accumulator round in leWords(): 8192 * 2 * 0xffff < 2^31, so the
 * adds stay in int32 and the JIT never falls back to doubles (JS numbers would
 * stay exact either way; this is for speed, not correctness).
 */
const ROUND_WORDS = 8 * 8192;

/**
 * Returns the one's-complement running sum of `bytes` read as big-endian
 * 16-bit words (an odd last byte is padded with zero), added to `init`.
 * The result is not folded: it is a non-negative integer below 2^32
 * (given `init` is), exact modulo 0xffff; callers chain partial sums by
 * passing one as `init`. Chained parts must start on even offsets of the
 * summed whole. Never fails.
 *
 * @example
 * const sum = sum16(payload, sum16(tcpHeader, pseudoSum4(src, dst, 6, l4len)));
 */
export function sum16(bytes: Uint8Array, init = 0): number {
  const n = bytes.byteLength;
  // Small sums never read bytes.buffer: that getter alone costs as much as them.
  if (n < WASM_IN_PLACE_MIN_BYTES) return sum16Reference(bytes, init);
  const wasm = loadWasmSum();
  if (wasm !== null) {
    if (bytes.buffer === wasmBuffer) return finish(wasmInPlace(wasm, bytes), bytes.byteOffset, init);
    if (n >= WASM_COPY_MIN_BYTES) return finish(wasmCopied(wasm, bytes), 0, init);
    return sum16Reference(bytes, init);
  }
  return n < TS_MIN_BYTES ? sum16Reference(bytes, init) : sum16Ts(bytes, init);
}

/**
 * Returns the same as sum16(), one big-endian word at a time. The simple
 * reference the fast variants are tested against, and the fastest for
 * small inputs.
 */
export function sum16Reference(bytes: Uint8Array, init = 0): number {
  let sum = init;
  const n = bytes.byteLength;
  let i = 0;
  for (; i + 1 < n; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < n) sum += bytes[i]! << 8;
  return fold32(sum);
}

/**
 * Returns the same as sum16(), read through a Uint16Array (host order) with
 * four int32 accumulators. Costs a view allocation unless `bytes` lies in
 * the wasm memory.
 */
export function sum16Ts(bytes: Uint8Array, init = 0): number {
  const n = bytes.byteLength;
  let start = bytes.byteOffset;
  let end = start + n;
  let sum = 0;
  if (start & 1 && n > 0) {
    sum = bytes[0]! << 8;
    start++;
  }
  if (end & 1 && end > start) {
    sum += bytes[n - 1]!;
    end--;
  }
  if (end > start) {
    sum += bytes.buffer === wasmBuffer
      ? leWords(arenaWords, start >>> 1, end >>> 1)
      : leWords(new Uint16Array(bytes.buffer, start, (end - start) >>> 1), 0, (end - start) >>> 1);
  }
  return finish(sum, bytes.byteOffset, init);
}

/**
 * Returns the same as sum16(), by WebAssembly SIMD: in place if `bytes` is a
 * view of the wasm memory, else copied into its scratch region
 * (SCRATCH_BYTES at a time). Throws Error where WebAssembly SIMD is not
 * available (checksumVariant() returns "ts" there).
 */
export function sum16Wasm(bytes: Uint8Array, init = 0): number {
  const wasm = loadWasmSum();
  if (wasm === null) throw new Error("sum16Wasm: WebAssembly SIMD is not available");
  if (bytes.buffer === wasmBuffer) return finish(wasmInPlace(wasm, bytes), bytes.byteOffset, init);
  return finish(wasmCopied(wasm, bytes), 0, init);
}

/**
 * Returns which variant sums large inputs: "wasm-simd" where the SIMD module
 * validates and instantiates, else "ts". The first call builds the module
 * (about 3 ms); call it once at start-up, for the log, to keep that off the
 * first packet.
 */
export function checksumVariant(): "wasm-simd" | "ts" {
  return loadWasmSum() === null ? "ts" : "wasm-simd";
}

/** Returns `sum` reduced modulo 0xffff to 32 bits, ready to be chained. */
function fold32(sum: number): number {
  // Numbers are exact to 2^53: reduce high bits by repeated end-around carry.
  while (sum > 0xffffffff) sum = (sum % 0x100000000) + Math.floor(sum / 0x100000000);
  return sum;
}

/**
 * Returns the 16-bit one's-complement fold of a running sum (not inverted):
 * 0 only for a sum of 0, otherwise 1 to 0xffff.
 */
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

/**
 * Returns the big-endian running sum, chained onto `init`, from `le`, a
 * host-order sum of the bytes of an array that starts at `byteOffset`
 * (see "Byte order" above): folded, swapped if the start is even.
 */
function finish(le: number, byteOffset: number, init: number): number {
  let sum = fold(le);
  if ((byteOffset & 1) === 0) sum = ((sum & 0xff) << 8) | (sum >>> 8);
  sum += init;
  return sum > 0xffffffff ? fold32(sum) : sum;
}

/** Returns the sum of words[from..to), below 2^53, by rounds of four int32 accumulators. */
function leWords(words: Uint16Array, from: number, to: number): number {
  let total = 0;
  let i = from;
  while (i < to) {
    const stop = Math.min(to, i + ROUND_WORDS);
    let a = 0, b = 0, c = 0, d = 0;
    for (; i + 7 < stop; i += 8) {
      a += words[i]! + words[i + 1]!;
      b += words[i + 2]! + words[i + 3]!;
      c += words[i + 4]! + words[i + 5]!;
      d += words[i + 6]! + words[i + 7]!;
    }
    for (; i < stop; i++) a += words[i]!;
    total += a + b + c + d;
  }
  return total;
}

/** Returns the host-order sum of `bytes`, a view of the wasm memory, summed where it lies. */
function wasmInPlace(wasm: WasmSum, bytes: Uint8Array): number {
  const n = bytes.byteLength;
  let start = bytes.byteOffset;
  let end = start + n;
  let sum = 0;
  if (start & 1 && n > 0) {
    sum = bytes[0]! << 8;
    start++;
  }
  if (end & 1 && end > start) {
    sum += bytes[n - 1]!;
    end--;
  }
  if (end > start) sum += wasm(start, end - start);
  return sum;
}

/**
 * Returns the host-order sum of `bytes` copied to the start of the scratch
 * region (offset 0, even) a piece at a time; pieces are SCRATCH_BYTES long,
 * an even number, so only the last can end on an odd byte.
 */
function wasmCopied(wasm: WasmSum, bytes: Uint8Array): number {
  const n = bytes.byteLength;
  let sum = 0;
  for (let off = 0; off < n; off += SCRATCH_BYTES) {
    const len = Math.min(SCRATCH_BYTES, n - off);
    wasmBytes.set(len === n ? bytes : bytes.subarray(off, off + len), 0);
    sum += wasm(0, len & ~1);
    if (len & 1) sum += wasmBytes[len - 1]!;
  }
  return sum;
}
