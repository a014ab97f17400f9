// SPDX-License-Identifier: GPL-2.0-or-later
// checksum.test.ts - Internet checksum: every variant equals the reference, RFC 1071 vectors, edges

import { beforeAll, describe, expect, test } from "bun:test";
import {
  ARENA_ALIGN_BYTES,
  WASM_MEMORY_BYTES,
  allocWasmArena,
  checksum,
  checksumVariant,
  fold,
  pseudoSum4,
  pseudoSum6,
  sum16,
  sum16Reference,
  sum16Ts,
  sum16Wasm,
  wasmArenaFree,
} from "../../../src/wire/checksum.ts";
import { sumModuleBytes, wasmBuffer } from "../../../src/wire/checksum_wasm.ts";
import { TEST_SEED } from "../../harness/setup.ts";

const simd = WebAssembly.validate(sumModuleBytes());

/** Returns a xorshift32 generator of u32 values seeded with `seed`. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** Returns `n` random bytes from `next`. */
function randomBytes(next: () => number, n: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < words.length; i++) words[i] = next();
  return new Uint8Array(words.buffer, 0, n);
}

/** Returns `data` copied into a fresh array at byteOffset `offset`, on the heap or in the wasm arena. */
function place(data: Uint8Array, offset: number, where: "heap" | "arena"): Uint8Array {
  const whole = where === "heap" ? new Uint8Array(data.byteLength + offset) : arena(data.byteLength + offset);
  whole.set(data, offset);
  return whole.subarray(offset, offset + data.byteLength);
}

// Arena space is shared with every other test file in the process: reuse one region.
const ARENA_SCRATCH_BYTES = (1 << 20) + 64;
let arenaScratch: Uint8Array | undefined;

/** Returns the first `n` bytes of a reused arena region (at most ARENA_SCRATCH_BYTES). */
function arena(n: number): Uint8Array {
  arenaScratch ??= allocWasmArena(ARENA_SCRATCH_BYTES);
  return arenaScratch.subarray(0, n);
}

type Sum = (bytes: Uint8Array, init?: number) => number;
type Where = "heap" | "arena";

/** The variants under test, and where their input lives. */
const VARIANTS: [name: string, where: Where, fn: Sum][] = [
  ["sum16Ts", "heap", sum16Ts],
  ["sum16Ts", "arena", sum16Ts],
  ...(simd
    ? ([
      ["sum16Wasm", "heap", sum16Wasm],
      ["sum16Wasm", "arena", sum16Wasm],
    ] as [string, Where, Sum][])
    : []),
  ["sum16", "heap", sum16],
  ["sum16", "arena", sum16],
];

/** Asserts `sum` is a valid running sum: a non-negative integer below 2^32. */
function expectRunningSum(sum: number): void {
  expect(Number.isInteger(sum) && sum >= 0 && sum < 2 ** 32).toBe(true);
}

describe("every length from 0 to 65,535 at byteOffsets 0 to 3", () => {
  // One random window of a seeded pool per length: the window starts on a
  // multiple of 4, and four copies of the pool, shifted by 0 to 3 bytes, give
  // the same bytes at each byteOffset modulo 4 without copying per case.
  const MAX_LEN = 65535;
  const POOL_BYTES = 4 * 65536 + MAX_LEN;
  const next = rng(TEST_SEED);
  const pool = randomBytes(next, POOL_BYTES);
  const starts = new Uint32Array(MAX_LEN + 1);
  for (let len = 0; len <= MAX_LEN; len++) starts[len] = (next() % 65536) * 4;
  const expected = new Uint16Array(MAX_LEN + 1);
  const shifted: Record<Where, Uint8Array[]> = { heap: [], arena: [] };

  beforeAll(() => {
    for (let len = 0; len <= MAX_LEN; len++) {
      expected[len] = fold(sum16Reference(pool.subarray(starts[len]!, starts[len]! + len)));
    }
    const arenaPools = allocWasmArena(4 * (POOL_BYTES + ARENA_ALIGN_BYTES));
    for (let offset = 0; offset < 4; offset++) {
      const heap = new Uint8Array(POOL_BYTES + offset);
      heap.set(pool, offset);
      shifted.heap.push(heap);
      const base = offset * (POOL_BYTES + ARENA_ALIGN_BYTES);
      const inArena = arenaPools.subarray(base, base + POOL_BYTES + offset);
      inArena.set(pool, offset);
      shifted.arena.push(inArena);
    }
  }, 60_000); // the reference sums of 65,536 lengths take seconds on a loaded machine

  test.each(VARIANTS)("%s on the %s equals the reference", (_name, where, fn) => {
    let mismatches = 0;
    let first = "";
    for (let offset = 0; offset < 4; offset++) {
      const buf = shifted[where][offset]!;
      for (let len = 0; len <= MAX_LEN; len++) {
        const bytes = buf.subarray(offset + starts[len]!, offset + starts[len]! + len);
        const got = fold(fn(bytes));
        if (got !== expected[len]) {
          if (mismatches++ === 0) first = `length ${len} byteOffset%4 ${offset}: ${got} != ${expected[len]}`;
        }
      }
    }
    expect(first).toBe("");
    expect(mismatches).toBe(0);
  });
});

describe("chaining partial sums through init", () => {
  const whole = randomBytes(rng(TEST_SEED + 1), 3001);
  const cuts = [0, 2, 20, 40, 62, 64, 66, 128, 1500, 2048, 2998, 3000];
  const cases = VARIANTS.flatMap(([name, where, fn]) =>
    cuts.map((cut) => [name, where, cut, fn] as const)
  );

  test.each(cases)("%s on the %s sums [0, %d) then the rest to the whole", (_name, where, cut, fn) => {
    const data = place(whole, 1, where);
    const head = fn(data.subarray(0, cut));
    const chained = fn(data.subarray(cut), head);
    expectRunningSum(head);
    expectRunningSum(chained);
    expect(fold(chained)).toBe(fold(sum16Reference(whole)));
  });

  test.each(VARIANTS)("%s on the %s keeps a sum below 2^32 when init is 2^32 - 1", (_name, where, fn) => {
    const data = place(whole, 0, where);
    const init = 0xffffffff;
    const sum = fn(data, init);
    expectRunningSum(sum);
    expect(fold(sum)).toBe(fold(sum16Reference(whole, init)));
  });
});

describe("known vectors", () => {
  // RFC 1071 section 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 2ddf0, folded ddf2.
  const RFC1071 = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);

  // IPv4 header of a DHCPOFFER from pasta (upstream-2023-session.pcap, frame 2).
  // prettier-ignore
  const IPV4_HEADER = new Uint8Array([
    0x45, 0x00, 0x01, 0x48, // version, IHL, DSCP; total length 328
    0x00, 0x00, 0x00, 0x00, // identification; flags, fragment offset
    0xff, 0x11, 0x66, 0x32, // TTL 255, protocol UDP; header checksum 0x6632
    0xc6, 0x33, 0x64, 0x01, // source 198.51.100.1
    0xc6, 0x33, 0x64, 0x0a, // destination 198.51.100.10
  ]);

  // ICMPv6 neighbour solicitation from the same capture (frame 5), with its
  // pseudo-header addresses: source ::, destination ff02::1:ff3d:e1d3.
  // prettier-ignore
  const NS_SRC = new Uint8Array(16);
  // prettier-ignore
  const NS_DST = new Uint8Array([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0x3d, 0xe1, 0xd3]);
  // prettier-ignore
  const NS_ICMP = new Uint8Array([
    0x87, 0x00, 0xd2, 0xff, // type 135, code 0; checksum 0xd2ff
    0x00, 0x00, 0x00, 0x00, // reserved
    0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target fe80::d4e6:58ff:fe3d:e1d3
    0xd4, 0xe6, 0x58, 0xff, 0xfe, 0x3d, 0xe1, 0xd3,
    0x0e, 0x01, 0x7a, 0x18, 0xc0, 0xcb, 0x70, 0x31, // nonce option
  ]);

  const ALL: [name: string, where: Where, fn: Sum][] = [["sum16Reference", "heap", sum16Reference], ...VARIANTS];

  test.each(ALL)("%s on the %s folds the RFC 1071 example to 0xddf2 at every byteOffset", (_name, where, fn) => {
    for (let offset = 0; offset < 4; offset++) {
      expect(fold(fn(place(RFC1071, offset, where)))).toBe(0xddf2);
    }
  });

  test("sum16Reference() of the RFC 1071 example is 0x2ddf0 before folding", () => {
    expect(sum16Reference(RFC1071)).toBe(0x2ddf0);
  });

  test("checksum() of a real IPv4 header with its checksum zeroed is the captured checksum", () => {
    const header = IPV4_HEADER.slice();
    header[10] = header[11] = 0;
    expect(checksum(header)).toBe(0x6632);
  });

  test("checksum() of a real IPv4 header including its checksum is zero", () => {
    expect(checksum(IPV4_HEADER)).toBe(0);
  });

  test("checksum() of a real ICMPv6 message over its pseudoSum6() is zero", () => {
    expect(checksum(NS_ICMP, pseudoSum6(NS_SRC, NS_DST, 58, NS_ICMP.byteLength))).toBe(0);
  });

  test("pseudoSum4() adds addresses, protocol and length as 16-bit words", () => {
    const src = IPV4_HEADER.subarray(12, 16);
    const dst = IPV4_HEADER.subarray(16, 20);
    // c633 + 6401 + c633 + 640a + 0011 + 0134
    expect(fold(pseudoSum4(src, dst, 17, 0x134))).toBe(fold(0xc633 + 0x6401 + 0xc633 + 0x640a + 0x11 + 0x134));
  });

  test("pseudoSum6() splits a length of 2^16 or more into two words", () => {
    const zero = new Uint8Array(16);
    expect(fold(pseudoSum6(zero, zero, 6, 0x12345))).toBe(fold(6 + 0x1 + 0x2345));
  });
});

describe("carry stress and large inputs", () => {
  const LENGTHS = [1, 2, 3, 63, 64, 65, 1500, 9001, 65535, 65536, 65537, 1 << 20];
  const cases = VARIANTS.flatMap(([name, where, fn]) => LENGTHS.map((len) => [name, where, len, fn] as const));

  test.each(cases)("%s on the %s sums %d bytes of 0xff like the reference", (_name, where, len, fn) => {
    const data = new Uint8Array(len).fill(0xff);
    for (const offset of [0, 1]) {
      const bytes = place(data, offset, where);
      expect(fold(fn(bytes))).toBe(fold(sum16Reference(data)));
      expect(fold(fn(bytes, 0xffffffff))).toBe(fold(sum16Reference(data, 0xffffffff)));
    }
  });

  const big = randomBytes(rng(TEST_SEED + 2), 1 << 20);
  test.each(VARIANTS)("%s on the %s sums 1 MiB of random bytes like the reference", (_name, where, fn) => {
    // Longer than the wasm chunk (256 KiB), the TS round (128 KiB) and the scratch region (64 KiB).
    for (const offset of [0, 3]) {
      expect(fold(fn(place(big, offset, where)))).toBe(fold(sum16Reference(big)));
    }
  });
});

describe("fold() and checksum() edges", () => {
  test.each([
    [0, 0],
    [1, 1],
    [0xffff, 0xffff],
    [0x10000, 1],
    [0x1fffe, 0xffff],
    [0x2ddf0, 0xddf2],
    [0xffffffff, 0xffff],
    [2 ** 32, 1],
    [2 ** 48, 1],
  ])("fold(%d) is %d", (sum, folded) => {
    expect(fold(sum)).toBe(folded);
  });

  test.each([
    ["no bytes", 0xffff, []],
    ["all zero bytes", 0xffff, [0, 0, 0, 0]],
    ["bytes summing to 0xffff", 0, [0xff, 0xff]],
    ["bytes summing to 0xfffe plus one", 0, [0xff, 0xfe, 0x00, 0x01]],
    ["one odd byte, padded", 0xfeff, [0x01]],
  ] as [string, number, number[]][])("checksum() of %s is %d", (_what, expected, bytes) => {
    expect(checksum(new Uint8Array(bytes))).toBe(expected);
  });

  test.each(VARIANTS)("%s on the %s returns 0 for empty input and passes init through", (_name, where, fn) => {
    const empty = place(new Uint8Array(0), 1, where);
    expect(fn(empty)).toBe(0);
    expect(fn(empty, 0x1234)).toBe(0x1234);
  });
});

describe("variant selection and the wasm arena", () => {
  test("checksumVariant() is wasm-simd exactly when the SIMD module validates", () => {
    expect(checksumVariant()).toBe(simd ? "wasm-simd" : "ts");
  });

  test("allocWasmArena() returns 64-byte aligned, disjoint views of the wasm memory", () => {
    const a = allocWasmArena(100);
    const b = allocWasmArena(1);
    expect(a.buffer).toBe(wasmBuffer);
    expect(a.byteOffset % ARENA_ALIGN_BYTES).toBe(0);
    expect(b.byteOffset % ARENA_ALIGN_BYTES).toBe(0);
    expect(b.byteOffset).toBeGreaterThanOrEqual(a.byteOffset + a.byteLength);
    expect(a.byteLength).toBe(100);
  });

  test.each([[-1], [1.5], [Number.NaN]])("allocWasmArena(%d) throws RangeError", (bytes) => {
    expect(() => allocWasmArena(bytes)).toThrow(RangeError);
  });

  test("allocWasmArena() throws when the memory is exhausted, and keeps what is left", () => {
    const free = wasmArenaFree();
    expect(() => allocWasmArena(free + 1)).toThrow(RangeError);
    expect(() => allocWasmArena(WASM_MEMORY_BYTES)).toThrow(RangeError);
    expect(wasmArenaFree()).toBe(free);
  });
});
