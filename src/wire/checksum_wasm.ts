// SPDX-License-Identifier: GPL-2.0-or-later
// checksum_wasm.ts - WebAssembly SIMD one's-complement sum, its bytes, and the wasm memory arena
//
// Theory of operation
//
// The module is encoded here, instruction by instruction, by a tiny assembler
// (there is no wat2wasm in this tree). It imports one memory, "env"."memory",
// and exports one function:
//
//   sum(ptr: i32, len: i32) -> i32
//
// which returns the 16-bit end-around-carry fold of the sum of the
// little-endian 16-bit words at [ptr, ptr + len). The caller guarantees that
// `ptr` and `len` are even and in bounds; byte order and odd edges are handled
// in checksum.ts (RFC 1071 section 2(B): the sum is byte-order independent once
// the folded result is swapped).
//
// Algorithm, in three stages:
//   1. While at least 64 bytes remain: take a chunk of at most CHUNK_BYTES,
//      and for every 64 bytes in it load four v128 vectors and add each into its
//      own accumulator with i32x4.extadd_pairwise_i16x8_u (adjacent u16 lanes
//      summed into u32 lanes). Four independent accumulators keep the adds off
//      one dependency chain. At the end of the chunk the four accumulators are
//      added (each u32 lane holds at most 4 * 4096 * 2 * 0xffff < 2^32, so no
//      lane overflows) and widened into a scalar i64 total.
//   2. Remaining 16-byte vectors go through one accumulator the same way.
//   3. Remaining words (at most 7) are added one at a time with i32.load16_u.
// Finally the i64 total is folded to 16 bits by repeated end-around carry.
//
// Memory: one WebAssembly.Memory of WASM_MEMORY_BYTES, created at import with
// initial === maximum and never grown, so its ArrayBuffer (and the native
// address other code hands to the kernel) stays fixed for the life of the
// process. Its first SCRATCH_BYTES are scratch space for checksumming arrays
// that live elsewhere; the rest is handed out by allocWasmArena(). Creating the
// memory only reserves address space: pages are committed when first touched
// (measured: 0.1 ms). The module itself is built on first use, loadWasmSum().
// Each Worker that imports this module gets its own memory.

/** Size of the one wasm memory, reserved at start-up and never grown: 64 MiB (1024 pages). */
export const WASM_MEMORY_BYTES = 256 * 1024 * 1024;

/** Bytes at the start of the memory used to copy foreign arrays in for summing. */
export const SCRATCH_BYTES = 64 * 1024;

/** Alignment of every block returned by allocWasmArena(), one cache line. */
export const ARENA_ALIGN_BYTES = 64;

const WASM_PAGE_BYTES = 65536;

/** Bytes summed per SIMD chunk before the u32 lanes are widened (see stage 1). */
const CHUNK_BYTES = 4096 * 64;

// ---------------------------------------------------------------------------
// A tiny WebAssembly binary encoder: just the opcodes the sum needs.
// Reference: WebAssembly Core Specification 2.0, chapter 5 (binary format).
// It appends to one array (no spreads): encoding runs once, cold, at import.

const I32 = 0x7f, I64 = 0x7e, V128 = 0x7b, VOID = 0x40, SIMD = 0xfd;

/** Appends bytes and instructions to `out`; instruction names follow the text format. */
class Asm {
  readonly out: number[] = [];

  /** Appends raw bytes. */
  bytes(...b: number[]): this { for (const x of b) this.out.push(x); return this; }
  /** Appends the unsigned LEB128 encoding of `n` (a non-negative 32-bit integer). */
  uleb(n: number): this {
    do {
      const byte = n & 0x7f;
      n >>>= 7;
      this.out.push(n !== 0 ? byte | 0x80 : byte);
    } while (n !== 0);
    return this;
  }
  /** Appends the signed LEB128 encoding of `n` (a 32-bit integer). */
  sleb(n: number): this {
    for (;;) {
      const byte = n & 0x7f;
      n >>= 7;
      if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
        this.out.push(byte);
        return this;
      }
      this.out.push(byte | 0x80);
    }
  }
  /** Appends an ASCII name prefixed by its length. */
  name(s: string): this {
    this.uleb(s.length);
    for (let i = 0; i < s.length; i++) this.out.push(s.charCodeAt(i));
    return this;
  }
  /** Appends a section (or a function body): `id` if not null, the byte size of `contents`, then them. */
  sized(id: number | null, contents: Asm): this {
    if (id !== null) this.out.push(id);
    this.uleb(contents.out.length);
    for (const x of contents.out) this.out.push(x);
    return this;
  }

  block(): this { return this.bytes(0x02, VOID); }
  loop(): this { return this.bytes(0x03, VOID); }
  end(): this { return this.bytes(0x0b); }
  br(depth: number): this { return this.bytes(0x0c).uleb(depth); }
  brIf(depth: number): this { return this.bytes(0x0d).uleb(depth); }
  select(): this { return this.bytes(0x1b); }
  localGet(i: number): this { return this.bytes(0x20).uleb(i); }
  localSet(i: number): this { return this.bytes(0x21).uleb(i); }
  localTee(i: number): this { return this.bytes(0x22).uleb(i); }
  i32Const(n: number): this { return this.bytes(0x41).sleb(n); }
  i64Const(n: number): this { return this.bytes(0x42).sleb(n); }
  /** memarg: alignment as log2 bytes (2-byte), then a constant offset. */
  i32Load16U(offset = 0): this { return this.bytes(0x2f, 1).uleb(offset); }
  i32LtU(): this { return this.bytes(0x49); }
  i32GtU(): this { return this.bytes(0x4b); }
  i32Add(): this { return this.bytes(0x6a); }
  i32Sub(): this { return this.bytes(0x6b); }
  i32And(): this { return this.bytes(0x71); }
  i64Ne(): this { return this.bytes(0x52); }
  i64Add(): this { return this.bytes(0x7c); }
  i64And(): this { return this.bytes(0x83); }
  i64ShrU(): this { return this.bytes(0x88); }
  i32WrapI64(): this { return this.bytes(0xa7); }
  i64ExtendI32U(): this { return this.bytes(0xad); }
  // SIMD instructions: the 0xfd prefix, then the opcode as unsigned LEB128.
  /** memarg: alignment 2^0 (no alignment promised), then a constant offset. */
  v128Load(offset = 0): this { return this.bytes(SIMD).uleb(0x00).bytes(0).uleb(offset); }
  v128Zero(): this { this.bytes(SIMD).uleb(0x0c); for (let i = 0; i < 16; i++) this.out.push(0); return this; }
  i64x2ExtractLane(lane: number): this { return this.bytes(SIMD).uleb(0x1d).bytes(lane); }
  i32x4ExtaddPairwiseI16x8U(): this { return this.bytes(SIMD).uleb(0x7f); }
  i32x4Add(): this { return this.bytes(SIMD).uleb(0xae); }
  i64x2ExtendLowI32x4U(): this { return this.bytes(SIMD).uleb(0xc9); }
  i64x2ExtendHighI32x4U(): this { return this.bytes(SIMD).uleb(0xca); }
  i64x2Add(): this { return this.bytes(SIMD).uleb(0xce); }

  // Pieces of sum() used more than once.

  /** `acc += extadd_pairwise_u(v128.load(PTR + offset))` */
  addVector(acc: number, offset: number): this {
    return this.localGet(acc).localGet(PTR).v128Load(offset).i32x4ExtaddPairwiseI16x8U()
      .i32x4Add().localSet(acc);
  }
  /** `TOTAL += sum of acc's four u32 lanes`, widened to i64 first */
  widenIntoTotal(acc: number): this {
    return this.localGet(acc).i64x2ExtendLowI32x4U().localGet(acc).i64x2ExtendHighI32x4U()
      .i64x2Add().localTee(acc).i64x2ExtractLane(0).localGet(acc).i64x2ExtractLane(1)
      .i64Add().localGet(TOTAL).i64Add().localSet(TOTAL);
  }
  /** `if (END - PTR < bytes) br depth` */
  breakIfFewerThan(bytes: number, depth: number): this {
    return this.localGet(END).localGet(PTR).i32Sub().i32Const(bytes).i32LtU().brIf(depth);
  }
  /** `PTR += bytes` */
  advance(bytes: number): this {
    return this.localGet(PTR).i32Const(bytes).i32Add().localSet(PTR);
  }
}

// Locals of sum(): the two parameters, then the declared locals.
const PTR = 0, LEN = 1, END = 2, CHUNK_END = 3, TOTAL = 4, ACC0 = 5, ACC1 = 6, ACC2 = 7, ACC3 = 8;

/** Returns the body of sum(): its locals, then its code. */
function sumBody(): Asm {
  return new Asm()
    // locals: 2 i32 (END, CHUNK_END), 1 i64 (TOTAL), 4 v128 (ACC0..ACC3)
    .uleb(3).bytes(2, I32, 1, I64, 4, V128)
    // END = PTR + LEN
    .localGet(PTR).localGet(LEN).i32Add().localSet(END)

    // Stage 1: chunks of 64-byte blocks, four accumulators.
    .block().loop()
    .breakIfFewerThan(64, 1)
    // CHUNK_END = PTR + min((END - PTR) & ~63, CHUNK_BYTES)
    .localGet(PTR)
    .i32Const(CHUNK_BYTES)
    .localGet(END).localGet(PTR).i32Sub().i32Const(~63).i32And().localTee(CHUNK_END)
    .localGet(CHUNK_END).i32Const(CHUNK_BYTES).i32GtU()
    .select()
    .i32Add().localSet(CHUNK_END)
    .v128Zero().localSet(ACC0)
    .v128Zero().localSet(ACC1)
    .v128Zero().localSet(ACC2)
    .v128Zero().localSet(ACC3)
    .loop()
    .addVector(ACC0, 0)
    .addVector(ACC1, 16)
    .addVector(ACC2, 32)
    .addVector(ACC3, 48)
    .advance(64)
    .localGet(PTR).localGet(CHUNK_END).i32LtU().brIf(0)
    .end()
    // ACC0 = ACC0 + ACC1 + ACC2 + ACC3, then widened into TOTAL.
    .localGet(ACC0).localGet(ACC1).i32x4Add()
    .localGet(ACC2).i32x4Add().localGet(ACC3).i32x4Add()
    .localSet(ACC0)
    .widenIntoTotal(ACC0)
    .br(0)
    .end().end()

    // Stage 2: up to three 16-byte vectors, one accumulator.
    .v128Zero().localSet(ACC0)
    .block().loop()
    .breakIfFewerThan(16, 1)
    .addVector(ACC0, 0)
    .advance(16)
    .br(0)
    .end().end()
    .widenIntoTotal(ACC0)

    // Stage 3: up to seven 16-bit words.
    .block().loop()
    .breakIfFewerThan(2, 1)
    .localGet(TOTAL).localGet(PTR).i32Load16U().i64ExtendI32U().i64Add().localSet(TOTAL)
    .advance(2)
    .br(0)
    .end().end()

    // Fold: TOTAL = (TOTAL & 0xffff) + (TOTAL >> 16) until TOTAL >> 16 is zero.
    .loop()
    .localGet(TOTAL).i64Const(0xffff).i64And()
    .localGet(TOTAL).i64Const(16).i64ShrU()
    .i64Add().localTee(TOTAL)
    .i64Const(16).i64ShrU().i64Const(0).i64Ne().brIf(0)
    .end()
    .localGet(TOTAL).i32WrapI64()
    .end();
}

/**
 * Returns the encoded module (see the theory of operation above): it imports
 * env.memory and exports sum(ptr, len) -> i32.
 */
export function sumModuleBytes(): Uint8Array {
  const pages = WASM_MEMORY_BYTES / WASM_PAGE_BYTES;
  const m = new Asm()
    .bytes(0x00, 0x61, 0x73, 0x6d) // magic "\0asm"
    .bytes(0x01, 0x00, 0x00, 0x00) // version 1
    // type section: one type, [0] = func (i32, i32) -> (i32)
    .sized(1, new Asm().uleb(1).bytes(0x60, 2, I32, I32, 1, I32))
    // import section: env.memory, limits flag 1 (has maximum), minimum = maximum
    .sized(2, new Asm().uleb(1).name("env").name("memory").bytes(0x02, 0x01).uleb(pages).uleb(pages))
    // function section: function 0 has type 0
    .sized(3, new Asm().uleb(1).uleb(0))
    // export section: "sum" is function (kind 0) 0
    .sized(7, new Asm().uleb(1).name("sum").bytes(0x00).uleb(0))
    // code section: one body
    .sized(10, new Asm().uleb(1).sized(null, sumBody()));
  return new Uint8Array(m.out);
}

// ---------------------------------------------------------------------------
// The memory, the instance and the arena.

/** The one wasm memory (never grown, so its buffer and address never change). */
export const wasmMemory = new WebAssembly.Memory({
  initial: WASM_MEMORY_BYTES / WASM_PAGE_BYTES,
  maximum: WASM_MEMORY_BYTES / WASM_PAGE_BYTES,
});

/** The memory's ArrayBuffer: arrays whose `buffer` is this one are summed in place. */
export const wasmBuffer: ArrayBuffer = wasmMemory.buffer;

/** Every byte of the memory, for copying into the scratch region. */
export const wasmBytes = new Uint8Array(wasmBuffer);

/** The exported sum, in the signature above. */
export type WasmSum = (ptr: number, len: number) => number;

/**
 * Returns the module's `sum` export bound to wasmMemory, or null if this
 * engine lacks WebAssembly SIMD (the module does not validate) or cannot
 * instantiate it. The first call encodes, validates and instantiates the
 * module (about 3 ms, most of it running the cold encoder); later calls return
 * the same function. Called lazily so that importing this module stays cheap.
 */
export function loadWasmSum(): WasmSum | null {
  if (loaded === undefined) loaded = instantiate();
  return loaded;
}

/** The loaded sum: undefined until loadWasmSum() first runs. */
let loaded: WasmSum | null | undefined;

/** Returns the instantiated `sum`, or null where it cannot be. */
function instantiate(): WasmSum | null {
  const bytes = sumModuleBytes();
  if (!WebAssembly.validate(bytes)) return null;
  try {
    const module = new WebAssembly.Module(bytes);
    const instance = new WebAssembly.Instance(module, { env: { memory: wasmMemory } });
    return instance.exports["sum"] as WasmSum;
  } catch {
    return null;
  }
}

/** Offset of the next free arena byte; the scratch region comes first. */
let arenaNext = SCRATCH_BYTES;

/**
 * Returns a zero-filled view of `bytes` bytes of the wasm memory, 64-byte
 * aligned, for the life of the process (frame buffers, allocated at start-up).
 * Throws RangeError if `bytes` is not a non-negative integer or the memory is
 * exhausted: WASM_MEMORY_BYTES is reserved up front and never grown.
 *
 * @example
 * const frames = allocWasmArena(64 * 65536); // checksummed in place by sum16()
 */
export function allocWasmArena(bytes: number): Uint8Array {
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new RangeError(`allocWasmArena: bad size ${bytes}`);
  }
  const start = arenaNext;
  if (start + bytes > WASM_MEMORY_BYTES) {
    throw new RangeError(
      `allocWasmArena: ${bytes} bytes requested, ${WASM_MEMORY_BYTES - start} left of ${WASM_MEMORY_BYTES}`,
    );
  }
  arenaNext = Math.min(WASM_MEMORY_BYTES, start + bytes + ARENA_ALIGN_BYTES - 1) & -ARENA_ALIGN_BYTES;
  return new Uint8Array(wasmBuffer, start, bytes);
}

/** Returns how many bytes allocWasmArena() can still hand out (before alignment). */
export function wasmArenaFree(): number {
  return WASM_MEMORY_BYTES - arenaNext;
}
