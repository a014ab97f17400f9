// SPDX-License-Identifier: GPL-2.0-or-later
// tap.test.ts - TapDevice framing with and without the virtio-net header, over a SOCK_SEQPACKET pair
//
// A socket pair keeps message boundaries as a tap does, so it stands in for /dev/net/tun here;
// TUNSETOFFLOAD fails on it, so these tests see `tso` false unless they grant offloads
// (the e2e tests offload.test.ts and udp_offload.test.ts cover segmentation on a real tap).

import { afterEach, expect, test } from "bun:test";
import { Stats, type Ctx } from "../../../src/ctx.ts";
import { tapFrameMeta } from "../../../src/tap/input.ts";
import { TapDevice } from "../../../src/tap/tap.ts";
import { ipv4Frame, L4_OFFSET4 } from "../../../src/tap/frame.ts";
import { testCtx } from "../../harness/ctx.ts";
import { IpProtocol } from "../../../src/wire/ipv4.ts";
import { UdpView } from "../../../src/wire/udp.ts";
import { VirtioNetHdrView } from "../../../src/wire/virtio_net.ts";
import * as sys from "../../../syscalls/mod.ts";
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

/** An IPv4 UDP frame to the guest: headers for `total` payload bytes, the first `first` of them in place. */
function udpFrame(first: number, total: number): Uint8Array {
  const f = new Uint8Array(L4_OFFSET4 + 8 + first);
  for (let i = 0; i < first; i++) f[L4_OFFSET4 + 8 + i] = i & 0xff;
  const src = Uint8Array.from([198, 51, 100, 1]), dst = Uint8Array.from([198, 51, 100, 10]);
  UdpView.emit(f, L4_OFFSET4, { srcPort: 5000, dstPort: 6000, payloadLength: total, src, dst, partial: true });
  ipv4Frame(testCtx(), f, src, dst, IpProtocol.UDP, 8 + total);
  return f;
}

function header(got: Uint8Array) {
  const h = new VirtioNetHdrView().wrap(got)!;
  return [h.flags, h.gsoType, h.hdrLen, h.gsoSize, h.csumStart, h.csumOffset];
}

test("with USO, a UDP frame and its tail go in one write, marked for segmentation into gsoSize datagrams", () => {
  const [ours, theirs] = pair();
  const tap = new TapDevice(ctx(), ours, null, { vnetHdr: true, offloads: { tso: true, uso: true } });
  expect([tap.tso, tap.uso]).toEqual([true, true]);
  const more = sys.arena(3000);
  more.fill(0xab);
  const tail = new sys.IovecList(4);
  tail.push(more, 0, 1400);
  tail.push(more, 1400, 600);
  const frame = udpFrame(1400, 3400);
  expect(tap.send(frame, 1400, tail)).toBe(true);
  const got = received(theirs);
  // NEEDS_CSUM, UDP_L4, 42 bytes of headers, 1400-byte datagrams, checksum from 34 at 6.
  expect(header(got)).toEqual([1, 5, 42, 1400, 34, 6]);
  expect(got.byteLength).toBe(10 + frame.byteLength + 2000);
  expect(got.subarray(10, 10 + frame.byteLength)).toEqual(frame);
  expect(got.subarray(10 + frame.byteLength).every((b) => b === 0xab)).toBe(true);
});

test("a UDP datagram with a partial checksum alone is marked NEEDS_CSUM without segmentation", () => {
  const [ours, theirs] = pair();
  const tap = new TapDevice(ctx(), ours, null, { vnetHdr: true, offloads: { tso: true, uso: false } });
  expect(tap.send(udpFrame(1400, 1400), 1400)).toBe(true);
  expect(header(received(theirs))).toEqual([1, 0, 42, 0, 34, 6]);
});

test("without USO, a UDP frame holding more than gsoSize bytes, or a tail, is refused and counted", () => {
  const [ours] = pair();
  const c = ctx();
  const tap = new TapDevice(c, ours, null, { vnetHdr: true, offloads: { tso: true, uso: false } });
  expect(tap.send(udpFrame(2800, 2800), 1400)).toBe(false);
  expect(c.stats.drops.get("tapNoUso")).toBe(1);
  const plain = new TapDevice(c, ours, null);
  expect(plain.send(udpFrame(100, 200), 0, new sys.IovecList(1))).toBe(false);
  expect(c.stats.drops.get("tapGatherNoVnet")).toBe(1);
});

test("readBatch() reports gso_size of a USO frame from the guest in tapFrameMeta, and 0 for others", () => {
  const [ours, theirs] = pair();
  const tap = new TapDevice(ctx(), ours, null, { vnetHdr: true, offloads: { tso: true, uso: true } });
  const frame = udpFrame(3000, 3000);
  for (const gsoType of [5, 0]) {
    const m = new Uint8Array(10 + frame.byteLength);
    VirtioNetHdrView.emit(m, 0, { flags: 1, gsoType, hdrLen: 42, gsoSize: gsoType ? 1200 : 0, csumStart: 34, csumOffset: 6 });
    m.set(frame, 10);
    write(theirs, m, m.byteLength);
  }
  const sizes: number[] = [];
  tap.readBatch(() => sizes.push(tapFrameMeta.udpGsoSize), () => {});
  expect(sizes).toEqual([1200, 0]);
  expect(tapFrameMeta.udpGsoSize).toBe(0);
});
