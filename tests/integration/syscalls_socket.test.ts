// SPDX-License-Identifier: GPL-2.0-or-later
// syscalls_socket.test.ts - libc socket wrappers over loopback: TCP, UDP batches, splice, SCM_RIGHTS

import { afterEach, describe, expect, test } from "bun:test";
import * as sys from "../../syscalls/mod.ts";

const LO4 = new Uint8Array([127, 0, 0, 1]);
const LO6 = new Uint8Array(16);
LO6[15] = 1;

/** Descriptors opened by the current test, closed after it. */
const open: number[] = [];
function track(fd: number, what: string): number {
  if (fd < 0) throw new Error(`${what}: ${sys.errnoName(fd)}`);
  open.push(fd);
  return fd;
}
afterEach(() => {
  for (const fd of open.splice(0)) sys.close(fd);
});

/** Returns [client, accepted] sockets connected over loopback in `family`. */
function tcpPair(family: number): [number, number] {
  const sa = new Uint8Array(128);
  const lst = track(sys.socket(family, sys.SOCK_STREAM | sys.SOCK_CLOEXEC, 0), "socket");
  const len = family === sys.AF_INET ? sys.writeSockaddrIn(sa, LO4, 0) : sys.writeSockaddrIn6(sa, LO6, 0);
  expect(sys.bind(lst, sa, len)).toBe(0);
  expect(sys.listen(lst, 4)).toBe(0);
  expect(sys.getsockname(lst, sa)).toBe(len);
  const cli = track(sys.socket(family, sys.SOCK_STREAM | sys.SOCK_CLOEXEC, 0), "socket");
  expect(sys.connect(cli, sa, len)).toBe(0);
  const acc = track(sys.accept4(lst, null, null, sys.SOCK_CLOEXEC), "accept4");
  return [cli, acc];
}

describe("TCP over loopback", () => {
  test.each([
    ["IPv4", sys.AF_INET, LO4],
    ["IPv6", sys.AF_INET6, LO6],
  ] as const)("%s: bind, listen, connect, accept and exchange bytes", (_name, family, addr) => {
    const [cli, acc] = tcpPair(family);
    const peer = new Uint8Array(128);
    expect(sys.getpeername(acc, peer)).toBeGreaterThan(0);
    const decoded = sys.readSockaddr(peer);
    expect(decoded?.family).toBe(family);
    expect(decoded !== null && "addr" in decoded ? [...decoded.addr] : []).toEqual([...addr]);
    const msg = new TextEncoder().encode("hello, passt");
    expect(sys.send(cli, msg, msg.length, sys.MSG_NOSIGNAL)).toBe(msg.length);
    const got = new Uint8Array(64);
    expect(sys.recv(acc, got, 64, 0)).toBe(msg.length);
    expect(new TextDecoder().decode(got.subarray(0, msg.length))).toBe("hello, passt");
    expect(sys.recv(acc, got, 64, sys.MSG_DONTWAIT)).toBe(-sys.Errno.EAGAIN);
    expect(sys.setsockoptInt(cli, sys.IPPROTO_TCP, sys.TCP_NODELAY, 1)).toBe(0);
    expect(sys.getsockoptInt(cli, sys.IPPROTO_TCP, sys.TCP_NODELAY)).toBe(1);
    const info = new Uint8Array(sys.TCP_INFO_LAYOUT.SIZE);
    expect(sys.getsockopt(cli, sys.IPPROTO_TCP, sys.TCP_INFO, info)).toBe(sys.TCP_INFO_LAYOUT.SIZE);
    expect(info[sys.TCP_INFO_LAYOUT.STATE]).toBe(1); // TCP_ESTABLISHED
    expect(sys.getU64(sys.viewOf(info), sys.TCP_INFO_LAYOUT.BYTES_ACKED)).toBe(msg.length + 1); // +1: the SYN
  });

  test("connect() to a closed port fails with ECONNREFUSED", () => {
    const sa = new Uint8Array(16);
    const probe = track(sys.socket(sys.AF_INET, sys.SOCK_STREAM | sys.SOCK_CLOEXEC, 0), "socket");
    expect(sys.bind(probe, sa, sys.writeSockaddrIn(sa, LO4, 0))).toBe(0);
    sys.getsockname(probe, sa); // a port nobody listens on: bound, not listening
    const cli = track(sys.socket(sys.AF_INET, sys.SOCK_STREAM | sys.SOCK_CLOEXEC, 0), "socket");
    expect(sys.connect(cli, sa, 16)).toBe(-sys.Errno.ECONNREFUSED);
  });
});

describe("UDP batches", () => {
  test("sendmmsg() and recvmmsg() move 32 datagrams in one call each", () => {
    const N = 32;
    const sa = new Uint8Array(16);
    const rx = track(sys.socket(sys.AF_INET, sys.SOCK_DGRAM | sys.SOCK_CLOEXEC, 0), "socket");
    expect(sys.bind(rx, sa, sys.writeSockaddrIn(sa, LO4, 0))).toBe(0);
    expect(sys.getsockname(rx, sa)).toBe(16);
    const tx = track(sys.socket(sys.AF_INET, sys.SOCK_DGRAM | sys.SOCK_CLOEXEC, 0), "socket");
    const txAddr = new Uint8Array(16);
    expect(sys.bind(tx, txAddr, sys.writeSockaddrIn(txAddr, LO4, 0))).toBe(0);
    sys.getsockname(tx, txAddr);

    const out = new sys.MmsgBatch(Array.from({ length: N }, () => sys.arena(1400)));
    for (let i = 0; i < N; i++) {
      out.bufs[i]!.fill(i);
      out.setLen(i, 100 + i);
      out.name(i).set(sa);
      out.setNameLen(i, 16);
    }
    expect(sys.sendmmsg(tx, out.hdrs, N, 0)).toBe(N);

    const inb = new sys.MmsgBatch(Array.from({ length: N }, () => sys.arena(1500)));
    inb.prepareRecv();
    expect(sys.recvmmsg(rx, inb.hdrs, N, sys.MSG_DONTWAIT)).toBe(N);
    for (let i = 0; i < N; i++) {
      expect(inb.msgLen(i)).toBe(100 + i);
      expect(inb.bufs[i]!.subarray(0, 100 + i).every((x) => x === i)).toBe(true);
      expect(sys.sockaddrPort(inb.name(i))).toBe(sys.sockaddrPort(txAddr));
    }
    expect(sys.recvmmsg(rx, inb.hdrs, N, sys.MSG_DONTWAIT)).toBe(-sys.Errno.EAGAIN);
  });
});

describe("splice", () => {
  test("splice() moves 256 KiB from one loopback TCP socket to another through a pipe", () => {
    const [srcCli, srcAcc] = tcpPair(sys.AF_INET);
    const [dstCli, dstAcc] = tcpPair(sys.AF_INET);
    const pipe = new Int32Array(2);
    expect(sys.pipe2(pipe, sys.O_CLOEXEC | sys.O_NONBLOCK)).toBe(0);
    track(pipe[0]!, "pipe");
    track(pipe[1]!, "pipe");
    const TOTAL = 256 * 1024;
    const data = new Uint8Array(TOTAL);
    for (let i = 0; i < TOTAL; i++) data[i] = (i * 7 + (i >> 11)) & 0xff;
    const got = new Uint8Array(TOTAL);
    let sent = 0, moved = 0, recvd = 0;
    const tmp = new Uint8Array(65536);
    for (let spins = 0; recvd < TOTAL && spins < 100000; spins++) {
      if (sent < TOTAL) {
        const n = sys.send(srcCli, data.subarray(sent), TOTAL - sent, sys.MSG_DONTWAIT | sys.MSG_NOSIGNAL);
        if (n > 0) sent += n;
      }
      const a = sys.splice(srcAcc, pipe[1]!, 65536, sys.SPLICE_F_MOVE | sys.SPLICE_F_NONBLOCK);
      if (a < 0 && a !== -sys.Errno.EAGAIN) throw new Error(`splice in: ${sys.errnoName(a)}`);
      const b = sys.splice(pipe[0]!, dstCli, 65536, sys.SPLICE_F_MOVE | sys.SPLICE_F_NONBLOCK);
      if (b < 0 && b !== -sys.Errno.EAGAIN) throw new Error(`splice out: ${sys.errnoName(b)}`);
      if (b > 0) moved += b;
      const r = sys.recv(dstAcc, tmp, tmp.length, sys.MSG_DONTWAIT);
      if (r > 0) {
        got.set(tmp.subarray(0, r), recvd);
        recvd += r;
      }
    }
    expect(moved).toBe(TOTAL);
    expect(recvd).toBe(TOTAL);
    expect(Bun.hash(got)).toBe(Bun.hash(data));
  });
});

describe("SCM_RIGHTS", () => {
  test("sendFds() passes a pipe's write end over a socketpair and it works on the other side", () => {
    const sp = new Int32Array(2);
    expect(sys.socketpair(sys.AF_UNIX, sys.SOCK_STREAM | sys.SOCK_CLOEXEC, 0, sp)).toBe(0);
    track(sp[0]!, "socketpair");
    track(sp[1]!, "socketpair");
    const pipe = new Int32Array(2);
    expect(sys.pipe2(pipe, sys.O_CLOEXEC)).toBe(0);
    track(pipe[0]!, "pipe");
    track(pipe[1]!, "pipe");

    expect(sys.sendFds(sp[0]!, new Uint8Array([0x47]), [pipe[1]!])).toBe(1);
    const data = new Uint8Array(4);
    const fds = new Int32Array(2);
    expect(sys.recvFds(sp[1]!, data, fds)).toBe(1);
    expect(data[0]).toBe(0x47);
    const passed = fds[0]!;
    expect(passed).toBeGreaterThanOrEqual(0);
    expect(passed).not.toBe(pipe[1]);
    expect(fds[1]).toBe(-1);
    track(passed, "passed fd");
    expect(sys.fcntl(passed, sys.F_GETFD)).toBe(sys.FD_CLOEXEC);
    expect(sys.write(passed, new Uint8Array([1, 2, 3]), 3)).toBe(3);
    const back = new Uint8Array(3);
    expect(sys.read(pipe[0]!, back, 3)).toBe(3);
    expect([...back]).toEqual([1, 2, 3]);
  });

  test("recvFds() without descriptors leaves every slot at -1", () => {
    const sp = new Int32Array(2);
    sys.socketpair(sys.AF_UNIX, sys.SOCK_STREAM | sys.SOCK_CLOEXEC, 0, sp);
    track(sp[0]!, "socketpair");
    track(sp[1]!, "socketpair");
    sys.write(sp[0]!, new Uint8Array([5]), 1);
    const fds = new Int32Array(3).fill(99);
    expect(sys.recvFds(sp[1]!, new Uint8Array(4), fds)).toBe(1);
    expect([...fds]).toEqual([-1, -1, -1]);
  });
});
