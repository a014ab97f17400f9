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

  test("readBatch() reports a peer that left inside a frame, after handing over the whole ones", () => {
    const [ours, theirs] = pair();
    const tap = new StreamTap(ctx(), null);
    tap.attach(ours);
    const whole = framed(frameOf(60, 1));
    const partial = framed(frameOf(100, 2)).subarray(0, 4 + 50);
    write(theirs, whole, whole.length);
    write(theirs, partial, partial.length);
    close(theirs);
    const got: number[] = [];
    expect(tap.readBatch((f) => got.push(f.length), () => {})).toBe("closed by peer inside a frame (50 of 100 bytes)");
    expect(got).toEqual([60]);
    tap.detach();
  });

  test("readBatch() reports a peer that left inside a length prefix", () => {
    const [ours, theirs] = pair();
    const tap = new StreamTap(ctx(), null);
    tap.attach(ours);
    write(theirs, new Uint8Array([0, 0, 1]), 3);
    close(theirs);
    expect(tap.readBatch(() => {}, () => {})).toBe("closed by peer inside a length prefix (3 of 4 bytes)");
    tap.detach();
  });

  test("attach() starts the next client with nothing left over from a partial frame", () => {
    const tap = new StreamTap(ctx(), null);
    const [a, aPeer] = pair();
    tap.attach(a);
    const partial = framed(frameOf(100, 3)).subarray(0, 30);
    write(aPeer, partial, partial.length);
    expect(tap.readBatch(() => {}, () => {})).toBeNull();
    tap.detach();
    close(aPeer);
    const [b, bPeer] = pair();
    open.push(bPeer);
    tap.attach(b);
    const next = framed(frameOf(64, 4));
    write(bPeer, next, next.length);
    const got: Uint8Array[] = [];
    expect(tap.readBatch((f) => got.push(f.slice()), () => {})).toBeNull();
    expect(got).toEqual([frameOf(64, 4)]);
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

  test("short writes, a backlog past the limit and reuse of the buffer keep whole frames in order", () => {
    const [ours, theirs] = pair();
    open.push(theirs);
    fcntl(theirs, F_SETFL, fcntl(theirs, F_GETFL) | O_NONBLOCK);
    const tap = new StreamTap(ctx(), null);
    tap.attach(ours);
    const accepted: Uint8Array[] = [];
    const received: Uint8Array[] = [];
    const chunk = new Uint8Array(1 << 20);
    const drain = (maxBytes: number) => {
      for (let got = 0; got < maxBytes; ) {
        const n = read(theirs, chunk, Math.min(chunk.length, maxBytes - got));
        if (n <= 0) break;
        received.push(chunk.slice(0, n));
        got += n;
      }
    };
    // The reader takes less than is offered, so the backlog reaches the limit, frames are
    // dropped, and the staging buffer wraps back to its start many times over.
    // 97 frames of different lengths and contents, sent in rotation: a frame out of place shows.
    const pool = Array.from({ length: 97 }, (_, k) => frameOf(60 + ((k * 7919) % 65000), k));
    for (let round = 0, k = 0; round < 300; round++) {
      for (let i = 0; i < 16; i++, k++) {
        const f = pool[k % pool.length]!;
        if (tap.send(f)) accepted.push(f);
      }
      tap.flush();
      drain(128 * 1024);
    }
    expect(tap.sendDropped).toBeGreaterThan(0);
    for (let i = 0; i < 10_000 && tap.pending; i++) {
      tap.flush();
      drain(chunk.length);
    }
    drain(64 << 20);
    expect(tap.pending).toBe(false);
    const want = framed(...accepted);
    const got = Buffer.concat(received);
    expect(got.length).toBe(want.length);
    expect(got.equals(Buffer.from(want))).toBe(true);
    tap.detach();
  });

  test("send() drops frames without a client and never stages a partial one", () => {
    const tap = new StreamTap(ctx(), null);
    expect(tap.send(frameOf(100, 1))).toBe(false);
    expect(tap.sendDropped).toBe(1);
  });
});
