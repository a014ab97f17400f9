// SPDX-License-Identifier: GPL-2.0-or-later
// libc.test.ts - libc wrappers: -errno on failure, results on success, no lost byteOffset

import { describe, expect, test } from "bun:test";
import * as sys from "../../../syscalls/mod.ts";
import { Errno, errnoName } from "../../../syscalls/errno.ts";

describe("wrappers return -errno on failure", () => {
  const cases: [string, () => number, number][] = [
    ["close(-1)", () => sys.close(-1), Errno.EBADF],
    ["read(-1)", () => sys.read(-1, new Uint8Array(4), 4), Errno.EBADF],
    ["write(-1)", () => sys.write(-1, new Uint8Array(4), 4), Errno.EBADF],
    ["open() of a missing file", () => sys.open("/nonexistent/passt-ts", sys.O_RDONLY), Errno.ENOENT],
    ["socket() of an unknown family", () => sys.socket(4242, sys.SOCK_STREAM, 0), Errno.EAFNOSUPPORT],
    ["listen() on a non-socket", () => sys.listen(0x7ffffff0, 1), Errno.EBADF],
    ["kill() of a pid that cannot exist", () => sys.kill(0x3fffffff, 0), Errno.ESRCH],
    ["pidfd_open() of a pid that cannot exist", () => sys.pidfd_open(0x3fffffff), Errno.ESRCH],
    ["if_nametoindex() of a missing interface", () => sys.if_nametoindex("nosuch0"), Errno.ENODEV],
    ["pthread_sigmask() with a bad `how`", () => sys.pthread_sigmask(99, new Uint8Array(128)), Errno.EINVAL],
    ["epoll_ctl() on a bad epoll fd", () => sys.epoll_ctl(-1, sys.EPOLL_CTL_DEL, 0, null), Errno.EBADF],
    ["getsockoptInt() on a non-socket", () => sys.getsockoptInt(-1, sys.SOL_SOCKET, sys.SO_ERROR), Errno.EBADF],
    ["open() of an over-long path", () => sys.open("x".repeat(5000), sys.O_RDONLY), Errno.ENAMETOOLONG],
  ];
  test.each(cases)("%s fails with the right errno", (_name, call, errno) => {
    const r = call();
    expect(errnoName(r)).toBe(errnoName(errno));
    expect(r).toBe(-errno);
  });
});

describe("wrappers return results on success", () => {
  test("getpid() is process.pid", () => {
    expect(sys.getpid()).toBe(process.pid);
  });

  test("the loopback interface has an index", () => {
    expect(sys.if_nametoindex("lo")).toBeGreaterThan(0);
  });

  test("read() and write() honour a subarray's byteOffset", () => {
    const fds = new Int32Array(2);
    expect(sys.pipe2(fds, sys.O_CLOEXEC)).toBe(0);
    const src = new Uint8Array([9, 9, 9, 1, 2, 3, 9]);
    expect(sys.write(fds[1]!, src.subarray(3), 3)).toBe(3);
    const dst = new Uint8Array(8);
    expect(sys.read(fds[0]!, dst.subarray(2), 6)).toBe(3);
    expect([...dst]).toEqual([0, 0, 1, 2, 3, 0, 0, 0]);
    expect(sys.close(fds[0]!)).toBe(0);
    expect(sys.close(fds[1]!)).toBe(0);
  });

  test("setsockoptInt() and getsockoptInt() round-trip SO_RCVBUF", () => {
    const fd = sys.socket(sys.AF_INET, sys.SOCK_DGRAM | sys.SOCK_CLOEXEC, 0);
    expect(fd).toBeGreaterThanOrEqual(0);
    expect(sys.setsockoptInt(fd, sys.SOL_SOCKET, sys.SO_RCVBUF, 65536)).toBe(0);
    // Linux doubles the value for bookkeeping overhead (socket(7)).
    expect(sys.getsockoptInt(fd, sys.SOL_SOCKET, sys.SO_RCVBUF)).toBe(131072);
    sys.close(fd);
  });

  test("getrandom() fills the buffer", () => {
    const b = new Uint8Array(64);
    expect(sys.getrandom(b)).toBe(64);
    expect(b.some((x) => x !== 0)).toBe(true);
  });

  test("getrlimit() reads RLIMIT_NOFILE with cur <= max", () => {
    const r = sys.arena(sys.RLIMIT.SIZE, 8);
    expect(sys.getrlimit(sys.RLIMIT_NOFILE, r)).toBe(0);
    const dv = sys.viewOf(r);
    const cur = sys.getU64(dv, sys.RLIMIT.CUR);
    expect(cur).toBeGreaterThan(0);
    expect(cur).toBeLessThanOrEqual(sys.getU64(dv, sys.RLIMIT.MAX));
  });

  test("memfd_create() and fcntl(F_GETFD) see close-on-exec", () => {
    const fd = sys.memfd_create("t", sys.MFD_CLOEXEC);
    expect(fd).toBeGreaterThanOrEqual(0);
    expect(sys.fcntl(fd, sys.F_GETFD)).toBe(sys.FD_CLOEXEC);
    const d = sys.dup(fd);
    expect(sys.fcntl(d, sys.F_GETFD)).toBe(0);
    expect(sys.close(d)).toBe(0);
    expect(sys.close(fd)).toBe(0);
  });

  test("ioctl(FIONBIO) sets O_NONBLOCK and ioctl(FIONREAD) counts queued bytes", () => {
    const fds = new Int32Array(2);
    sys.pipe2(fds, sys.O_CLOEXEC);
    const one = new Int32Array([1]);
    expect(sys.ioctl(fds[0]!, sys.FIONBIO, one)).toBe(0);
    expect(sys.fcntl(fds[0]!, sys.F_GETFL) & sys.O_NONBLOCK).toBe(sys.O_NONBLOCK);
    expect(sys.read(fds[0]!, new Uint8Array(1), 1)).toBe(-Errno.EAGAIN);
    sys.write(fds[1]!, new Uint8Array(5), 5);
    const n = new Int32Array(1);
    expect(sys.ioctl(fds[0]!, sys.FIONREAD, n)).toBe(0);
    expect(n[0]).toBe(5);
    sys.close(fds[0]!);
    sys.close(fds[1]!);
  });

  test("ioctlInt(TUNSETIFF) on a pipe fails with ENOTTY", () => {
    const fds = new Int32Array(2);
    sys.pipe2(fds, sys.O_CLOEXEC);
    expect(sys.ioctlInt(fds[0]!, sys.TUNSETPERSIST, 0)).toBe(-Errno.ENOTTY);
    sys.close(fds[0]!);
    sys.close(fds[1]!);
  });
});

describe("errnoName()", () => {
  test.each([
    [-9, "EBADF"],
    [11, "EAGAIN"],
    [-95, "EOPNOTSUPP"],
    [4000, "errno 4000"],
  ] as const)("errnoName(%d) is %s", (n, name) => {
    expect(errnoName(n)).toBe(name);
  });
});
