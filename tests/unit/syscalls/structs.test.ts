// SPDX-License-Identifier: GPL-2.0-or-later
// structs.test.ts - sockaddr codecs, cmsg arithmetic, sigsets, batch builders and arenas

import { describe, expect, test } from "bun:test";
import * as sys from "../../../syscalls/mod.ts";

describe("sockaddr codecs", () => {
  test("writeSockaddrIn() lays out family, big-endian port and address", () => {
    const b = new Uint8Array(32).fill(0xee);
    expect(sys.writeSockaddrIn(b, new Uint8Array([10, 0, 2, 15]), 0x1234)).toBe(16);
    expect([...b.subarray(0, 16)]).toEqual([2, 0, 0x12, 0x34, 10, 0, 2, 15, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(b[16]).toBe(0xee);
    expect(sys.sockaddrFamily(b)).toBe(sys.AF_INET);
    expect(sys.sockaddrPort(b)).toBe(0x1234);
  });

  test("writeSockaddrIn6() then readSockaddr() round-trips address, port and scope id", () => {
    const b = new Uint8Array(28);
    const addr = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 + i);
    expect(sys.writeSockaddrIn6(b, addr, 5353, 0x01020304)).toBe(28);
    expect(sys.readSockaddr(b)).toEqual({ family: 10, addr, port: 5353, flowinfo: 0, scopeId: 0x01020304 });
    expect([...b.subarray(24, 28)]).toEqual([4, 3, 2, 1]); // host order (little-endian)
  });

  test("writeSockaddrUn() counts the NUL for a path and not for an abstract name", () => {
    const b = new Uint8Array(110);
    expect(sys.writeSockaddrUn(b, "/tmp/s")).toBe(2 + 6 + 1);
    expect(sys.readSockaddr(b, 9)).toEqual({ family: 1, path: "/tmp/s" });
    expect(sys.writeSockaddrUn(b, "\0abs")).toBe(2 + 4);
    expect(sys.readSockaddr(b, 6)).toEqual({ family: 1, path: "\0abs" });
  });

  test.each([
    ["a 108-byte path", "p".repeat(108)],
    ["a 200-byte path", "p".repeat(200)],
  ])("writeSockaddrUn() rejects %s", (_what, path) => {
    expect(() => sys.writeSockaddrUn(new Uint8Array(110), path)).toThrow(RangeError);
  });

  test.each([
    ["an empty buffer", new Uint8Array(0)],
    ["an unknown family", new Uint8Array([99, 0, 0, 0])],
    ["a truncated sockaddr_in", new Uint8Array([2, 0, 0, 80, 127, 0])],
  ])("readSockaddr() returns null for %s", (_what, b) => {
    expect(sys.readSockaddr(b)).toBeNull();
  });
});

describe("cmsg arithmetic", () => {
  test.each([
    [0, 16, 16],
    [4, 24, 20],
    [8, 24, 24],
    [12, 32, 28],
    [20, 40, 36],
  ])("a %d-byte payload takes CMSG_SPACE %d and CMSG_LEN %d", (n, space, len) => {
    expect(sys.CMSG_SPACE(n)).toBe(space);
    expect(sys.CMSG_LEN(n)).toBe(len);
  });
});

describe("sigsets", () => {
  test("sigsetOf() sets bit sig-1 and only those bits", () => {
    const set = sys.sigsetOf(new Uint8Array(128).fill(0xff), [sys.SIGHUP, sys.SIGTERM, sys.SIGCHLD]);
    expect(set[0]).toBe(0b1);
    expect(set[1]).toBe(0b0100_0000); // 15 - 1 = 14: byte 1, bit 6
    expect(set[2]).toBe(0b1); // 17 - 1 = 16: byte 2, bit 0
    expect(set.subarray(3).every((x) => x === 0)).toBe(true);
    expect(sys.sigsetHas(set, sys.SIGTERM)).toBe(true);
    expect(sys.sigsetHas(set, sys.SIGINT)).toBe(false);
  });
});

describe("64-bit fields", () => {
  test.each([0, 1, 0xffffffff, 0x100000000, 0x7fff_1234_5678, Number.MAX_SAFE_INTEGER])(
    "setU64()/getU64() round-trip %d",
    (v) => {
      const dv = new DataView(new ArrayBuffer(8));
      sys.setU64(dv, 0, v);
      expect(dv.getBigUint64(0, true)).toBe(BigInt(v));
      expect(sys.getU64(dv, 0)).toBe(v);
    },
  );
});

describe("arena", () => {
  test("arena() returns aligned, zeroed, distinct slices", () => {
    const a = sys.arena(100, 64);
    const b = sys.arena(10, 8);
    expect(sys.addrOf(a) % 64).toBe(0);
    expect(sys.addrOf(b) % 8).toBe(0);
    expect(a.every((x) => x === 0)).toBe(true);
    const aEnd = sys.addrOf(a) + a.byteLength;
    expect(sys.addrOf(b) >= aEnd || sys.addrOf(b) + 10 <= sys.addrOf(a)).toBe(true);
  });

  test("a slice larger than a quarter chunk gets its own chunk", () => {
    const before = sys.arenaBytes();
    const big = sys.arena(600_000, 4096);
    expect(big.byteLength).toBe(600_000);
    expect(sys.addrOf(big) % 4096).toBe(0);
    expect(sys.arenaBytes()).toBeGreaterThanOrEqual(before + 600_000);
  });

  test("addrOf() includes byteOffset and stays fixed across a GC", () => {
    const a = sys.arena(64);
    const base = sys.addrOf(a);
    expect<number>(sys.addrOf(a.subarray(10))).toBe(base + 10);
    Bun.gc(true);
    expect(sys.addrOf(new Uint8Array(a.buffer, a.byteOffset, 64))).toBe(base);
  });

  test.each([[-1, 8], [1.5, 8], [8, 3], [8, 0]])("arena(%d, %d) throws RangeError", (bytes, align) => {
    expect(() => sys.arena(bytes, align)).toThrow(RangeError);
  });
});

describe("batch structures", () => {
  test("iovecs() points each iovec at its buffer with its length", () => {
    const bufs = [sys.arena(100), sys.arena(7).subarray(3)];
    const iov = sys.iovecs(bufs);
    const dv = sys.viewOf(iov);
    expect(sys.getU64(dv, 0)).toBe(sys.addrOf(bufs[0]!));
    expect(sys.getU64(dv, 8)).toBe(100);
    expect(sys.getU64(dv, 16)).toBe(sys.addrOf(bufs[1]!));
    expect(sys.getU64(dv, 24)).toBe(4);
    sys.setIovLen(dv, 1, 2);
    expect(sys.getU64(dv, 24)).toBe(2);
  });

  test("MmsgBatch wires msghdrs to iovecs and names, and prepareRecv() restores capacities", () => {
    const bufs = [sys.arena(1500), sys.arena(9000)];
    const batch = new sys.MmsgBatch(bufs);
    const h = batch.hdrsView;
    const second = sys.MMSGHDR.SIZE;
    expect(sys.getU64(h, second + sys.MSGHDR.IOV)).toBe(sys.addrOf(batch.iov) + sys.IOVEC.SIZE);
    expect(sys.getU64(h, second + sys.MSGHDR.IOVLEN)).toBe(1);
    expect(sys.getU64(h, second + sys.MSGHDR.NAME)).toBe(sys.addrOf(batch.names) + 128);
    batch.setLen(1, 42);
    batch.setNameLen(1, 0);
    expect(sys.getU64(batch.iovView, sys.IOVEC.SIZE + sys.IOVEC.LEN)).toBe(42);
    batch.prepareRecv();
    expect(sys.getU64(batch.iovView, sys.IOVEC.SIZE + sys.IOVEC.LEN)).toBe(9000);
    expect(h.getUint32(second + sys.MSGHDR.NAMELEN, true)).toBe(128);
  });

  test("IovecList points each iovec at its range, appends another list, and copies out what it points at", () => {
    const a = sys.arena(16), b = sys.arena(16);
    a.set([1, 2, 3, 4, 5, 6, 7, 8]);
    b.set([9, 10, 11, 12]);
    const list = new sys.IovecList(3);
    expect(list.push(a, 2, 3)).toBe(true);
    const more = new sys.IovecList(2);
    more.push(b, 1, 2);
    more.push(a, 0, 0);
    expect(list.append(more)).toBe(true);
    expect([list.count, list.bytes]).toEqual([3, 5]);
    const dv = sys.viewOf(list.iov);
    expect(sys.getU64(dv, 0)).toBe(sys.addrOf(a) + 2);
    expect(sys.getU64(dv, sys.IOVEC.LEN)).toBe(3);
    expect(sys.getU64(dv, sys.IOVEC.SIZE)).toBe(sys.addrOf(b) + 1);
    expect(sys.getU64(dv, sys.IOVEC.SIZE + sys.IOVEC.LEN)).toBe(2);
    const out = new Uint8Array(7).fill(0xee);
    expect(list.copyTo(out, 1)).toBe(5);
    expect([...out]).toEqual([0xee, 3, 4, 5, 10, 11, 0xee]);
    // Full: nothing more goes in, and a range outside its buffer is a programmer error.
    expect(list.push(a, 0, 1)).toBe(false);
    expect(list.append(more)).toBe(false);
    expect(list.count).toBe(3);
    expect(() => new sys.IovecList(1).push(a, 10, 7)).toThrow(RangeError);
    list.clear();
    expect([list.count, list.bytes]).toEqual([0, 0]);
  });

  test("UdpSendBatch wires each message to its iovecs, with a UDP_SEGMENT control message when asked", () => {
    const buf = sys.arena(4096);
    const b = new sys.UdpSendBatch(4, 8);
    b.push(buf, 0, 1000);
    b.push(buf, 1000, 1000);
    b.push(buf, 2000, 500);
    expect(b.end(1000)).toBe(0);
    b.push(buf, 3000, 7);
    expect(b.end()).toBe(1);
    expect(b.count).toBe(2);
    const h = sys.viewOf(b.hdrs);
    const iov = sys.addrOf(b.iovs.iov);
    expect(sys.getU64(h, sys.MSGHDR.IOV)).toBe(iov);
    expect(sys.getU64(h, sys.MSGHDR.IOVLEN)).toBe(3);
    expect(sys.getU64(h, sys.MSGHDR.NAME)).toBe(0);
    expect(sys.getU64(h, sys.MSGHDR.CONTROLLEN)).toBe(sys.CMSG_SPACE(2));
    // Its content (SOL_UDP, UDP_SEGMENT, 1000) shows in the next test, where the kernel obeys it.
    expect(sys.getU64(h, sys.MSGHDR.CONTROL)).not.toBe(0);
    const second = sys.MMSGHDR.SIZE;
    expect(sys.getU64(h, second + sys.MSGHDR.IOV)).toBe(iov + 3 * sys.IOVEC.SIZE);
    expect(sys.getU64(h, second + sys.MSGHDR.IOVLEN)).toBe(1);
    expect(sys.getU64(h, second + sys.MSGHDR.CONTROL)).toBe(0);
    expect(sys.getU64(h, second + sys.MSGHDR.CONTROLLEN)).toBe(0);
    expect(b.fits(4)).toBe(true);
    expect(b.fits(5)).toBe(false);
    b.clear();
    expect([b.count, b.iovs.count]).toEqual([0, 0]);
  });

  test("UdpSendBatch: sendmmsg() delivers a UDP_SEGMENT message as separate datagrams of the segment size, the last shorter", () => {
    const lo = Uint8Array.from([127, 0, 0, 1]);
    const sa = new Uint8Array(128);
    const rx = sys.socket(sys.AF_INET, sys.SOCK_DGRAM | sys.SOCK_NONBLOCK | sys.SOCK_CLOEXEC, 0);
    const tx = sys.socket(sys.AF_INET, sys.SOCK_DGRAM | sys.SOCK_NONBLOCK | sys.SOCK_CLOEXEC, 0);
    try {
      expect(sys.bind(rx, sa, sys.writeSockaddrIn(sa, lo, 0))).toBe(0);
      expect(sys.getsockname(rx, sa)).toBeGreaterThan(0);
      expect(sys.connect(tx, sa, sys.writeSockaddrIn(sa, lo, sys.sockaddrPort(sa)))).toBe(0);
      const data = sys.arena(5000);
      for (let i = 0; i < data.byteLength; i++) data[i] = (i * 7) & 0xff;
      const b = new sys.UdpSendBatch(2, 4);
      b.push(data, 0, 1200);
      b.push(data, 1200, 2400); // one iovec may hold several datagrams: the kernel cuts by size
      b.push(data, 3600, 300);
      b.end(1200);
      b.push(data, 3900, 100);
      b.end();
      expect(sys.sendmmsg(tx, b.hdrs, b.count, 0)).toBe(2);
      expect([b.sentLen(0), b.sentLen(1)]).toEqual([3900, 100]);
      const got: number[][] = [];
      const buf = new Uint8Array(65536);
      for (;;) {
        const n = sys.recv(rx, buf, buf.byteLength, sys.MSG_DONTWAIT);
        if (n < 0) break;
        got.push([...buf.subarray(0, n)]);
      }
      const want = [[0, 1200], [1200, 2400], [2400, 3600], [3600, 3900], [3900, 4000]].map(([s, e]) => [...data.subarray(s, e)]);
      expect(got.map((g) => g.length)).toEqual([1200, 1200, 1200, 300, 100]);
      expect(got).toEqual(want);
    } finally {
      sys.close(rx);
      sys.close(tx);
    }
  });

  test("writeEpollEvent() stores events and both data halves at the arch offsets", () => {
    const b = new Uint8Array(16);
    sys.writeEpollEvent(sys.viewOf(b), 0, sys.EPOLLIN | sys.EPOLLET, 0xabcdef01, 77);
    const dv = sys.viewOf(b);
    expect(dv.getUint32(sys.EPOLL_EVENT.EVENTS, true)).toBe((sys.EPOLLIN | sys.EPOLLET) >>> 0);
    expect(dv.getUint32(sys.EPOLL_EVENT.DATA, true)).toBe(0xabcdef01);
    expect(dv.getUint32(sys.EPOLL_EVENT.DATA + 4, true)).toBe(77);
  });
});
