// SPDX-License-Identifier: GPL-2.0-or-later
// stream.test.ts - passt's qemu stream framing: reassembly of partial frames, bad lengths, batching out

import { afterEach, describe, expect, test } from "bun:test";
import { StreamTap } from "../../../src/tap/stream.ts";
import { Stats, type Ctx } from "../../../src/ctx.ts";
import { AF_UNIX, close, fcntl, F_GETFL, F_SETFL, O_NONBLOCK, read, SOCK_CLOEXEC, SOCK_STREAM, socketpair, write } from "../../../syscalls/mod.ts";

function ctx(): Ctx {
  return { stats: new Stats() } as unknown as Ctx;
}

/** Returns [ours, theirs]: our end non-blocking, as passt's client socket is. */
function pair(): [number, number] {
  const fds = new Int32Array(2);
  expect(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds)).toBe(0);
  fcntl(fds[0]!, F_SETFL, fcntl(fds[0]!, F_GETFL) | O_NONBLOCK);
  return [fds[0]!, fds[1]!];
}

function framed(...frames: Uint8Array[]): Uint8Array {
  const total = frames.reduce((n, f) => n + 4 + f.length, 0);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  let off = 0;
  for (const f of frames) {
    dv.setUint32(off, f.length);
    out.set(f, off + 4);
    off += 4 + f.length;
  }
  return out;
}

function frameOf(len: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => (i * 7 + seed) & 0xff);
}

const open: number[] = [];
afterEach(() => {
  for (const fd of open.splice(0)) close(fd);
});

describe("StreamTap", () => {
  test("readBatch() hands over whole frames and carries a partial one to the next read", () => {
    const [ours, theirs] = pair();
    open.push(theirs);
    const tap = new StreamTap(ctx(), null);
    tap.attach(ours);
    const a = frameOf(60, 1), b = frameOf(1500, 2), c = frameOf(65535, 3);
    const bytes = framed(a, b, c);
    const got: Uint8Array[] = [];
    let batches = 0;
    const input = (f: Uint8Array) => got.push(f.slice());
    // Cut the stream inside the second length prefix and inside the third frame.
    const cuts = [0, 66, 70, 2000, bytes.length];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const part = bytes.subarray(cuts[i], cuts[i + 1]);
      expect(write(theirs, part, part.length)).toBe(part.length);
      expect(tap.readBatch(input, () => batches++)).toBeNull();
    }
    expect(got.map((f) => f.length)).toEqual([60, 1500, 65535]);
    expect(got[0]).toEqual(a);
    expect(got[1]).toEqual(b);
    expect(got[2]).toEqual(c);
    expect(batches).toBe(3);
    tap.detach();
  });

  test.each([0, 13, 65536, 0xffffffff])("readBatch() drops the client on frame length %d", (len) => {
    const [ours, theirs] = pair();
    open.push(theirs);
    const tap = new StreamTap(ctx(), null);
    tap.attach(ours);
    const hdr = new Uint8Array(4);
    new DataView(hdr.buffer).setUint32(0, len);
    write(theirs, hdr, 4);
    const error = tap.readBatch(() => {}, () => {});
    expect(error).toBe(`bad frame length ${len}`);
    tap.detach();
  });

  test("readBatch() reports a peer that closed", () => {
    const [ours, theirs] = pair();
    const tap = new StreamTap(ctx(), null);
    tap.attach(ours);
    close(theirs);
    expect(tap.readBatch(() => {}, () => {})).toBe("closed by peer");
    tap.detach();
  });

  test("send() stages frames with their lengths and flush() writes them in one go", () => {
    const [ours, theirs] = pair();
    open.push(theirs);
    const tap = new StreamTap(ctx(), null);
    tap.attach(ours);
    const a = frameOf(42, 5), b = frameOf(9000, 6);
    expect(tap.send(a)).toBe(true);
    expect(tap.send(b)).toBe(true);
    expect(tap.pending).toBe(true);
    expect(tap.flush()).toBe(0);
    expect(tap.pending).toBe(false);
    const want = framed(a, b);
    const buf = new Uint8Array(want.length + 16);
    let n = 0;
    while (n < want.length) n += read(theirs, buf.subarray(n), buf.length - n);
    expect(Buffer.from(buf.subarray(0, n)).equals(Buffer.from(want))).toBe(true);
    tap.detach();
  });

  test("send() drops frames without a client and never stages a partial one", () => {
    const tap = new StreamTap(ctx(), null);
    expect(tap.send(frameOf(100, 1))).toBe(false);
    expect(tap.sendDropped).toBe(1);
  });
});
