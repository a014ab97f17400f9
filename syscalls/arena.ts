// SPDX-License-Identifier: GPL-2.0-or-later
// arena.ts - long-lived memory the kernel may see, with cached addresses
//
// BUN-FFI.md pitfall 1: ptr() returns a plain number and does not keep its
// buffer alive, so a buffer known to the kernel only by address can be freed
// by the GC while the kernel still writes to it. Everything handed to a
// syscall by address (iovec bases, msghdr names, epoll event arrays, batch
// structures) therefore comes from here: chunks allocated once and referenced
// from the module-level `chunks` array for the life of the process. Slices
// are never freed; callers allocate at start-up, never per packet.

import { ptr, type Pointer } from "bun:ffi";

/** Size of each pool chunk; larger requests get a chunk of their own. */
const CHUNK_BYTES = 1 << 20;

/** Every chunk ever allocated: the strong references that keep them alive. */
const chunks: ArrayBuffer[] = [];
let current: ArrayBuffer | null = null;
let used = 0;

/** Addresses of views, computed once per view (ptr() costs a call into native code). */
const addresses = new WeakMap<object, number>();

/**
 * Returns a zeroed `bytes`-long view of process-lifetime memory, aligned to
 * `align` bytes (a power of two, default 16). Never fails short of running
 * out of memory; throws RangeError on a negative size or bad alignment.
 * @example const events = arena(128 * EPOLL_EVENT_SIZE);
 */
export function arena(bytes: number, align = 16): Uint8Array {
  if (!Number.isInteger(bytes) || bytes < 0) throw new RangeError(`arena: bad size ${bytes}`);
  if (align <= 0 || (align & (align - 1)) !== 0) throw new RangeError(`arena: bad alignment ${align}`);
  if (bytes > CHUNK_BYTES / 4) {
    // Big requests get their own chunk so they don't waste the shared one.
    const own = new ArrayBuffer(bytes + align);
    chunks.push(own);
    const base = ptr(new Uint8Array(own)) as number;
    const skip = (align - (base % align)) % align;
    return new Uint8Array(own, skip, bytes);
  }
  let base = current === null ? 0 : (ptr(new Uint8Array(current)) as number);
  let start = current === null ? 0 : alignUp(base + used, align) - base;
  if (current === null || start + bytes > CHUNK_BYTES) {
    current = new ArrayBuffer(CHUNK_BYTES);
    chunks.push(current);
    base = ptr(new Uint8Array(current)) as number;
    start = alignUp(base, align) - base;
  }
  used = start + bytes;
  return new Uint8Array(current, start, bytes);
}

function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/**
 * Returns the native address of the first byte of `view` (byteOffset
 * included), cached per view. Works for any view, including views of
 * WebAssembly memory; the caller must keep the view's memory alive (arena
 * memory always is) and, for wasm memory, must not use the address after
 * `memory.grow()`, which may move it.
 */
export function addrOf(view: NodeJS.TypedArray | DataView): Pointer {
  let a = addresses.get(view);
  if (a === undefined) {
    a = ptr(view) as number;
    addresses.set(view, a);
  }
  return a as Pointer;
}

/** Returns how many bytes of arena memory the process holds (all chunks). */
export function arenaBytes(): number {
  let n = 0;
  for (const c of chunks) n += c.byteLength;
  return n;
}
