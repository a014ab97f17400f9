// SPDX-License-Identifier: GPL-2.0-or-later
// checksum.ts - micro-benchmark of the Internet checksum variants, in GB/s
//
// Run: ./node_modules/.bin/bun run perf/checksum.ts [--quick]
//
// Prints one table of GB/s (1e9 bytes per second) per variant and size:
//   wasm in place  sum16Wasm() on a view of the wasm memory (frame buffers)
//   wasm copied    sum16Wasm() on an ordinary array, copied into scratch first
//   ts             sum16Ts() on an ordinary array (a Uint16Array view per call)
//   ts arena       sum16Ts() on a view of the wasm memory (no view allocated)
//   reference      sum16Reference(), byte by byte
//   sum16 / arena  the dispatcher, on an ordinary array and on an arena view
// then the crossover sizes that set WASM_IN_PLACE_MIN_BYTES, WASM_COPY_MIN_BYTES
// and TS_MIN_BYTES in src/wire/checksum.ts. Variants run interleaved,
// each timed ROUNDS times, and the median is shown: other processes share the
// machine. Record the machine with the numbers.

import {
  allocWasmArena,
  checksumVariant,
  fold,
  sum16,
  sum16Reference,
  sum16Ts,
  sum16Wasm,
} from "../src/wire/checksum.ts";

const quick = process.argv.includes("--quick");
const ROUNDS = quick ? 3 : 7;
/** Bytes summed per timed round of one variant at one size. */
const BYTES_PER_ROUND = quick ? 2e7 : 1e8;

type Variant = readonly [name: string, fn: (bytes: Uint8Array) => number, arena: boolean];

const VARIANTS: readonly Variant[] = [
  ["wasm in place", (b) => sum16Wasm(b), true],
  ["wasm copied", (b) => sum16Wasm(b), false],
  ["ts", (b) => sum16Ts(b), false],
  ["ts arena", (b) => sum16Ts(b), true],
  ["reference", (b) => sum16Reference(b), false],
  ["sum16", (b) => sum16(b), false],
  ["sum16 arena", (b) => sum16(b), true],
];

const MAX = 65520;
const heapBytes = new Uint8Array(MAX + 64);
const arenaBytes = allocWasmArena(MAX + 64);
let seed = 42;
for (let i = 0; i < heapBytes.length; i++) {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  heapBytes[i] = seed >>> 24;
}
arenaBytes.set(heapBytes);

/** Returns the median of `xs`. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** Returns GB/s of one timed round of `fn` over `bytes`. */
function round(fn: (bytes: Uint8Array) => number, bytes: Uint8Array): number {
  const iterations = Math.max(1, Math.round(BYTES_PER_ROUND / Math.max(bytes.byteLength, 16)));
  let sink = 0;
  const t0 = Bun.nanoseconds();
  for (let i = 0; i < iterations; i++) sink += fn(bytes);
  const ns = Bun.nanoseconds() - t0;
  if (sink < 0) throw new Error("unreachable: sums are non-negative");
  return (bytes.byteLength * iterations) / ns;
}

/** Returns median GB/s per variant at `size`, variants interleaved round by round. */
function measure(size: number, variants: readonly Variant[]): number[] {
  const heap = heapBytes.subarray(0, size);
  const arena = arenaBytes.subarray(0, size);
  const expected = fold(sum16Reference(heap));
  for (const [name, fn, inArena] of variants) {
    const got = fold(fn(inArena ? arena : heap));
    if (got !== expected) throw new Error(`${name} at ${size} B: ${got} != ${expected}`);
  }
  const results: number[][] = variants.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    variants.forEach(([, fn, inArena], v) => results[v]!.push(round(fn, inArena ? arena : heap)));
  }
  return results.map(median);
}

function row(cells: (string | number)[]): string {
  return cells.map((c, i) => (typeof c === "number" ? c.toFixed(2) : c).padStart(i === 0 ? 8 : 14)).join("");
}

// Warm every variant up so the JIT has compiled them before timing.
for (const size of [64, 1500, 65520]) measure(size, VARIANTS);

console.log(`checksum variant: ${checksumVariant()}; GB/s, median of ${ROUNDS} rounds; ${navigator.hardwareConcurrency} CPUs`);
console.log(row(["bytes", ...VARIANTS.map(([name]) => name)]));
for (const size of [64, 1500, 9000, 65520]) console.log(row([size, ...measure(size, VARIANTS)]));

console.log("\ncrossovers (GB/s):");
const CROSS: readonly Variant[] = [VARIANTS[4]!, VARIANTS[2]!, VARIANTS[3]!, VARIANTS[0]!, VARIANTS[1]!];
console.log(row(["bytes", ...CROSS.map(([name]) => name)]));
for (const size of [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]) {
  console.log(row([size, ...measure(size, CROSS)]));
}
