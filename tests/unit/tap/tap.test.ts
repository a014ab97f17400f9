// SPDX-License-Identifier: GPL-2.0-or-later
// tap.test.ts - TapDevice framing with and without the virtio-net header, over a SOCK_SEQPACKET pair
//
// A socket pair keeps message boundaries as a tap does, so it stands in for /dev/net/tun here;
// TUNSETOFFLOAD fails on it, so these tests see `tso` false (the e2e test offload.test.ts
// covers segmentation on a real tap).

import { afterEach, expect, test } from "bun:test";
import { Stats, type Ctx } from "../../../src/ctx.ts";
import { tapFrameMeta } from "../../../src/tap/input.ts";
import { TapDevice } from "../../../src/tap/tap.ts";
import { AF_UNIX, close, fcntl, F_GETFL, F_SETFL, O_NONBLOCK, read, SOCK_CLOEXEC, SOCK_SEQPACKET, socketpair, write } from "../../../syscalls/mod.ts";

function ctx(): Ctx {
  return { stats: new Stats() } as unknown as Ctx;
}

const open: number[] = [];
afterEach(() => {
  for (const fd of open.splice(0)) close(fd);
});

/** Returns [ours, theirs], ours non-blocking like pasta's tap fd. */
function pair(): [number, number] {
  const fds = new Int32Array(2);
  expect(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds)).toBe(0);
  fcntl(fds[0]!, F_SETFL, fcntl(fds[0]!, F_GETFL) | O_NONBLOCK);
  open.push(fds[0]!, fds[1]!);
  return [fds[0]!, fds[1]!];
}

const FRAME = Uint8Array.from({ length: 60 }, (_, i) => (i * 13 + 1) & 0xff);

function received(fd: number): Uint8Array {
  const buf = new Uint8Array(70000);
  const n = read(fd, buf, buf.byteLength);
  expect(n).toBeGreaterThan(0);
  return buf.slice(0, n);
}

/** Reads one batch and returns each frame with the checksum verdict it was dispatched under. */
function readAll(tap: TapDevice): [Uint8Array, boolean][] {
  const got: [Uint8Array, boolean][] = [];
  let ends = 0;
  tap.readBatch((f) => got.push([f.slice(), tapFrameMeta.l4ChecksumOk]), () => ends++);
  expect(ends).toBe(got.length > 0 ? 1 : 0);
  expect(tapFrameMeta.l4ChecksumOk).toBe(false);
  return got;
}

test("without the header, frames go and come as they are", () => {
  const [ours, theirs] = pair();
  const tap = new TapDevice(ctx(), ours, null);
  expect(tap.tso).toBe(false);
  expect(tap.send(FRAME)).toBe(true);
  expect(received(theirs)).toEqual(FRAME);
  write(theirs, FRAME, FRAME.byteLength);
  expect(readAll(tap)).toEqual([[FRAME, false]]);
});

test("with the header, every frame to the guest gets ten zero bytes in front", () => {
  const [ours, theirs] = pair();
  const tap = new TapDevice(ctx(), ours, null, { vnetHdr: true });
  expect(tap.tso).toBe(false); // no TUNSETOFFLOAD on a socket
  expect(tap.send(FRAME)).toBe(true);
  // Without TSO a gsoSize is ignored: the frame goes as it is.
  expect(tap.send(FRAME, 1448)).toBe(true);
  for (let k = 0; k < 2; k++) {
    const got = received(theirs);
    expect(got.subarray(0, 10)).toEqual(new Uint8Array(10));
    expect(got.subarray(10)).toEqual(FRAME);
  }
});

test("with the header, frames from the guest lose it, and its flags say whether the L4 checksum is to be checked", () => {
  const [ours, theirs] = pair();
  const stats = ctx();
  const tap = new TapDevice(stats, ours, null, { vnetHdr: true });
  const withHdr = (flags: number) => {
    const m = new Uint8Array(10 + FRAME.byteLength);
    m[0] = flags;
    m.set(FRAME, 10);
    return m;
  };
  for (const flags of [0, 1, 2, 3]) {
    const m = withHdr(flags);
    write(theirs, m, m.byteLength);
  }
  // A message no longer than the header is no frame: counted, skipped.
  write(theirs, new Uint8Array(10), 10);
  expect(readAll(tap)).toEqual([[FRAME, false], [FRAME, true], [FRAME, true], [FRAME, true]]);
  expect(stats.stats.framesIn).toBe(4);
});
