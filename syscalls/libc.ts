// SPDX-License-Identifier: GPL-2.0-or-later
// libc.ts - glibc bindings through bun:ffi: every wrapper returns >= 0 or -errno
//
// libc.so.6 is opened once, at module level. Each wrapper calls the libc
// function and, when it returns -1, reads errno through the address that
// __errno_location() gave once at load (errno is thread-local; JS runs on one
// thread per module instance, and a Worker loads its own instance), so a
// failure costs one extra 5 ns read, and success costs nothing.
//
// Returns are declared i32 even for ssize_t (read, send, splice...): a call
// never moves 2 GiB or more here, and i32 returns are a plain JS number
// (BUN-FFI.md: i64 builds a BigInt, i64_fast still costs more than i32).
//
// Pointer arguments take a typed array (bun:ffi passes the address of its
// first byte, byteOffset included) or an address from addrOf(). A typed array
// passed directly is alive for the call; memory the kernel keeps an address
// of after the call (iovecs inside a msghdr, epoll event arrays, batch
// structures) must come from arena.ts.

import { cc, dlopen, ptr as ptrOf, read as peek, type Pointer } from "bun:ffi";
import { SYS_pidfd_open, SYS_pidfd_send_signal, SYS_gettid, SYS_seccomp } from "./constants.ts";
import { addrOf, arena } from "./arena.ts";
import { CMSG_LEN, CMSG_SPACE, CMSGHDR, IOVEC, MSGHDR, SIGACTION, setU64, viewOf, writeMsghdr } from "./structs.ts";

/** A pointer argument: a typed array (its byteOffset is honoured), an address, or NULL. */
export type PtrArg = NodeJS.TypedArray | Pointer | null;
/** A path argument: a JS string, or bytes that already end in NUL. */
export type PathArg = string | Uint8Array;

const lib = dlopen("libc.so.6", {
  __errno_location: { args: [], returns: "ptr" },
  read: { args: ["i32", "ptr", "u64"], returns: "i32" },
  pread: { args: ["i32", "ptr", "u64", "i64"], returns: "i32" },
  write: { args: ["i32", "ptr", "u64"], returns: "i32" },
  readv: { args: ["i32", "ptr", "i32"], returns: "i32" },
  writev: { args: ["i32", "ptr", "i32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  open: { args: ["ptr", "i32", "u32"], returns: "i32" },
  openat: { args: ["i32", "ptr", "i32", "u32"], returns: "i32" },
  pipe2: { args: ["ptr", "i32"], returns: "i32" },
  fcntl: { args: ["i32", "i32", "i64"], returns: "i32" },
  ioctl: { args: ["i32", "u64", "ptr"], returns: "i32" },
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  socketpair: { args: ["i32", "i32", "i32", "ptr"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  connect: { args: ["i32", "ptr", "u32"], returns: "i32" },
  listen: { args: ["i32", "i32"], returns: "i32" },
  accept4: { args: ["i32", "ptr", "ptr", "i32"], returns: "i32" },
  getsockname: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  getpeername: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  getsockopt: { args: ["i32", "i32", "i32", "ptr", "ptr"], returns: "i32" },
  shutdown: { args: ["i32", "i32"], returns: "i32" },
  send: { args: ["i32", "ptr", "u64", "i32"], returns: "i32" },
  sendto: { args: ["i32", "ptr", "u64", "i32", "ptr", "u32"], returns: "i32" },
  recv: { args: ["i32", "ptr", "u64", "i32"], returns: "i32" },
  recvfrom: { args: ["i32", "ptr", "u64", "i32", "ptr", "ptr"], returns: "i32" },
  sendmsg: { args: ["i32", "ptr", "i32"], returns: "i32" },
  recvmsg: { args: ["i32", "ptr", "i32"], returns: "i32" },
  sendmmsg: { args: ["i32", "ptr", "u32", "i32"], returns: "i32" },
  recvmmsg: { args: ["i32", "ptr", "u32", "i32", "ptr"], returns: "i32" },
  splice: { args: ["i32", "ptr", "i32", "ptr", "u64", "u32"], returns: "i32" },
  epoll_create1: { args: ["i32"], returns: "i32" },
  epoll_ctl: { args: ["i32", "i32", "i32", "ptr"], returns: "i32" },
  epoll_wait: { args: ["i32", "ptr", "i32", "i32"], returns: "i32" },
  eventfd: { args: ["u32", "i32"], returns: "i32" },
  timerfd_create: { args: ["i32", "i32"], returns: "i32" },
  timerfd_settime: { args: ["i32", "i32", "ptr", "ptr"], returns: "i32" },
  signalfd: { args: ["i32", "ptr", "i32"], returns: "i32" },
  pthread_sigmask: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  sigprocmask: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  syscall: { args: ["i64", "i64", "i64", "i64", "i64"], returns: "i32" },
  waitid: { args: ["i32", "u32", "ptr", "i32"], returns: "i32" },
  waitpid: { args: ["i32", "ptr", "i32"], returns: "i32" },
  kill: { args: ["i32", "i32"], returns: "i32" },
  getpid: { args: [], returns: "i32" },
  getuid: { args: [], returns: "u32" },
  getgid: { args: [], returns: "u32" },
  setresuid: { args: ["u32", "u32", "u32"], returns: "i32" },
  setresgid: { args: ["u32", "u32", "u32"], returns: "i32" },
  setgroups: { args: ["u64", "ptr"], returns: "i32" },
  prctl: { args: ["i32", "u64", "u64", "u64", "u64"], returns: "i32" },
  getrlimit: { args: ["i32", "ptr"], returns: "i32" },
  setrlimit: { args: ["i32", "ptr"], returns: "i32" },
  inotify_init1: { args: ["i32"], returns: "i32" },
  inotify_add_watch: { args: ["i32", "ptr", "u32"], returns: "i32" },
  unlink: { args: ["ptr"], returns: "i32" },
  getrandom: { args: ["ptr", "u64", "u32"], returns: "i32" },
  if_nametoindex: { args: ["ptr"], returns: "u32" },
  memfd_create: { args: ["ptr", "u32"], returns: "i32" },
  dup: { args: ["i32"], returns: "i32" },
  dup3: { args: ["i32", "i32", "i32"], returns: "i32" },
  fchmod: { args: ["i32", "u32"], returns: "i32" },
  umask: { args: ["u32"], returns: "u32" },
  chdir: { args: ["ptr"], returns: "i32" },
  setsid: { args: [], returns: "i32" },
  sigaction: { args: ["i32", "ptr", "ptr"], returns: "i32" },
});

// The same symbol with an integer third argument: dlopen keys are symbol names,
// so the second signature of variadic ioctl() needs a second handle.
const libInt = dlopen("libc.so.6", {
  ioctl: { args: ["i32", "u64", "i64"], returns: "i32" },
});

const S = lib.symbols;
const ERRNO = S.__errno_location() as Pointer;

/** Returns the calling thread's current errno (positive). */
export function errno(): number {
  return peek.i32(ERRNO, 0);
}

/** Returns `r` when it is not -1, else -errno: the convention of every wrapper. */
function ret(r: number): number {
  return r === -1 ? -peek.i32(ERRNO, 0) : r;
}

// Scratch memory for path strings and small out-parameters (single-threaded use).
const PATH = arena(4097);
const INT = arena(4, 4);
const INT_DV = new DataView(INT.buffer, INT.byteOffset, 4);
const LEN = arena(4, 4);
const LEN_DV = new DataView(LEN.buffer, LEN.byteOffset, 4);
const encoder = new TextEncoder();

/** Returns `path` as NUL-terminated bytes in scratch memory, or null if too long. */
function cpath(path: PathArg): Uint8Array | null {
  if (typeof path !== "string") return path;
  const { read, written } = encoder.encodeInto(path, PATH.subarray(0, 4096));
  if (read !== path.length) return null;
  PATH[written] = 0;
  return PATH;
}

/**
 * Returns `s` encoded as a new NUL-terminated byte array (allocates: slow
 * paths only, e.g. building an ifreq name once).
 */
export function cstr(s: string): Uint8Array {
  const b = encoder.encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

const ENAMETOOLONG = 36;

/** Returns bytes read (0 at EOF), or -errno.  @syscalls read */
export function read(fd: number, buf: PtrArg, len: number): number {
  return ret(S.read(fd, buf, len));
}
/**
 * Returns bytes read from file offset `offset` (0 at end of file), or -errno;
 * the file position is not moved. Rereads a procfs table from its start.
 * @syscalls pread64
 */
export function pread(fd: number, buf: PtrArg, len: number, offset: number): number {
  return ret(S.pread(fd, buf, len, offset));
}
/** Returns bytes written, or -errno.  @syscalls write */
export function write(fd: number, buf: PtrArg, len: number): number {
  return ret(S.write(fd, buf, len));
}
/** Returns bytes read into the `iovcnt` iovecs at `iov`, or -errno.  @syscalls readv */
export function readv(fd: number, iov: PtrArg, iovcnt: number): number {
  return ret(S.readv(fd, iov, iovcnt));
}
/** Returns bytes written from the `iovcnt` iovecs at `iov`, or -errno.  @syscalls writev */
export function writev(fd: number, iov: PtrArg, iovcnt: number): number {
  return ret(S.writev(fd, iov, iovcnt));
}

/** The two iovecs of writev2(), process-lifetime (BUN-FFI.md pitfall 1). */
const iov2 = arena(2 * IOVEC.SIZE, 8);
const iov2View = viewOf(iov2);

/**
 * Writes `a` (the first `aLen` bytes) then `b` (its first `bLen` bytes) with one
 * writev(): a header in front of a frame without copying either. Returns the
 * bytes written, or -errno. Allocates nothing.
 * @example writev2(tapFd, vnetHeader, 10, frame, frame.byteLength)
 * @syscalls writev
 */
export function writev2(fd: number, a: NodeJS.TypedArray, aLen: number, b: NodeJS.TypedArray, bLen: number): number {
  setU64(iov2View, IOVEC.BASE, ptrOf(a));
  setU64(iov2View, IOVEC.LEN, aLen);
  setU64(iov2View, IOVEC.SIZE + IOVEC.BASE, ptrOf(b));
  setU64(iov2View, IOVEC.SIZE + IOVEC.LEN, bLen);
  return ret(S.writev(fd, iov2, 2));
}
/** Returns 0, or -errno (close(-1) is -EBADF).  @syscalls close */
export function close(fd: number): number {
  return ret(S.close(fd));
}
/** Returns a new file descriptor, or -errno.  @syscalls openat */
export function open(path: PathArg, flags: number, mode = 0): number {
  const p = cpath(path);
  return p === null ? -ENAMETOOLONG : ret(S.open(p, flags, mode));
}
/** Returns a new file descriptor opened relative to `dirfd`, or -errno.  @syscalls openat */
export function openat(dirfd: number, path: PathArg, flags: number, mode = 0): number {
  const p = cpath(path);
  return p === null ? -ENAMETOOLONG : ret(S.openat(dirfd, p, flags, mode));
}
/** Returns 0 with the read and write ends in fds[0] and fds[1], or -errno.  @syscalls pipe2 */
export function pipe2(fds: Int32Array, flags: number): number {
  return ret(S.pipe2(fds, flags));
}
/** Returns the fcntl result (flags, new fd, pipe size...), or -errno.  @syscalls fcntl */
export function fcntl(fd: number, cmd: number, arg = 0): number {
  return ret(S.fcntl(fd, cmd, arg));
}
/** Returns the ioctl result for a request taking a pointer, or -errno.  @syscalls ioctl */
export function ioctl(fd: number, request: number, arg: PtrArg): number {
  return ret(S.ioctl(fd, request, arg));
}
/** Returns the ioctl result for a request taking an integer, or -errno.  @syscalls ioctl */
export function ioctlInt(fd: number, request: number, arg: number): number {
  return ret(libInt.symbols.ioctl(fd, request, arg));
}
/** Returns a new socket, or -errno.  @syscalls socket */
export function socket(domain: number, type: number, protocol: number): number {
  return ret(S.socket(domain, type, protocol));
}
/** Returns 0 with the two connected sockets in fds[0] and fds[1], or -errno.  @syscalls socketpair */
export function socketpair(domain: number, type: number, protocol: number, fds: Int32Array): number {
  return ret(S.socketpair(domain, type, protocol, fds));
}
/** Returns 0, or -errno.  @syscalls bind */
export function bind(fd: number, addr: PtrArg, addrlen: number): number {
  return ret(S.bind(fd, addr, addrlen));
}
/** Returns 0, or -errno (-EINPROGRESS for a non-blocking socket still connecting).  @syscalls connect */
export function connect(fd: number, addr: PtrArg, addrlen: number): number {
  return ret(S.connect(fd, addr, addrlen));
}
/** Returns 0, or -errno.  @syscalls listen */
export function listen(fd: number, backlog: number): number {
  return ret(S.listen(fd, backlog));
}
/**
 * Returns the accepted socket, or -errno. `addr` (with its capacity in the
 * u32 at `addrlen`, updated to the real length) may be null.  @syscalls accept4
 */
export function accept4(fd: number, addr: PtrArg, addrlen: PtrArg, flags: number): number {
  return ret(S.accept4(fd, addr, addrlen, flags));
}
/**
 * Returns the length of the local address written into `addr` (at most
 * addr.byteLength), or -errno.  @syscalls getsockname
 */
export function getsockname(fd: number, addr: Uint8Array): number {
  LEN_DV.setUint32(0, addr.byteLength, true);
  const r = ret(S.getsockname(fd, addr, LEN));
  return r < 0 ? r : LEN_DV.getUint32(0, true);
}
/** Returns the length of the peer address written into `addr`, or -errno.  @syscalls getpeername */
export function getpeername(fd: number, addr: Uint8Array): number {
  LEN_DV.setUint32(0, addr.byteLength, true);
  const r = ret(S.getpeername(fd, addr, LEN));
  return r < 0 ? r : LEN_DV.getUint32(0, true);
}
/** Returns 0, or -errno.  @syscalls setsockopt */
export function setsockopt(fd: number, level: number, opt: number, val: PtrArg, len: number): number {
  return ret(S.setsockopt(fd, level, opt, val, len));
}
/**
 * Returns the length of the option value written into `val` (at most
 * val.byteLength), or -errno.  @syscalls getsockopt
 */
export function getsockopt(fd: number, level: number, opt: number, val: Uint8Array): number {
  LEN_DV.setUint32(0, val.byteLength, true);
  const r = ret(S.getsockopt(fd, level, opt, val, LEN));
  return r < 0 ? r : LEN_DV.getUint32(0, true);
}
/** Returns 0 after setting an int-valued option, or -errno. No allocation.  @syscalls setsockopt */
export function setsockoptInt(fd: number, level: number, opt: number, value: number): number {
  INT_DV.setInt32(0, value, true);
  return ret(S.setsockopt(fd, level, opt, INT, 4));
}
/**
 * Returns the value of an int-valued option, or -errno. Every option this
 * project reads this way (SO_ERROR, SO_RCVBUF, TCP_MAXSEG, SO_PEEK_OFF...)
 * is non-negative, so a negative result is always an error.  @syscalls getsockopt
 */
export function getsockoptInt(fd: number, level: number, opt: number): number {
  INT_DV.setInt32(0, 0, true);
  LEN_DV.setUint32(0, 4, true);
  const r = ret(S.getsockopt(fd, level, opt, INT, LEN));
  return r < 0 ? r : INT_DV.getInt32(0, true);
}
/** Returns 0, or -errno.  @syscalls shutdown */
export function shutdown(fd: number, how: number): number {
  return ret(S.shutdown(fd, how));
}
/** Returns bytes sent, or -errno.  @syscalls sendto */
export function send(fd: number, buf: PtrArg, len: number, flags: number): number {
  return ret(S.send(fd, buf, len, flags));
}
/** Returns bytes sent to `addr`, or -errno.  @syscalls sendto */
export function sendto(fd: number, buf: PtrArg, len: number, flags: number, addr: PtrArg, addrlen: number): number {
  return ret(S.sendto(fd, buf, len, flags, addr, addrlen));
}
/** Returns bytes received (0 at orderly shutdown), or -errno.  @syscalls recvfrom */
export function recv(fd: number, buf: PtrArg, len: number, flags: number): number {
  return ret(S.recv(fd, buf, len, flags));
}
/**
 * Returns bytes received, or -errno; the sender's address goes to `addr`
 * and its length to the u32 at `addrlen` (both may be null).  @syscalls recvfrom
 */
export function recvfrom(fd: number, buf: PtrArg, len: number, flags: number, addr: PtrArg, addrlen: PtrArg): number {
  return ret(S.recvfrom(fd, buf, len, flags, addr, addrlen));
}
/** Returns bytes sent from the msghdr at `msg`, or -errno.  @syscalls sendmsg */
export function sendmsg(fd: number, msg: PtrArg, flags: number): number {
  return ret(S.sendmsg(fd, msg, flags));
}
/** Returns bytes received into the msghdr at `msg`, or -errno.  @syscalls recvmsg */
export function recvmsg(fd: number, msg: PtrArg, flags: number): number {
  return ret(S.recvmsg(fd, msg, flags));
}
/** Returns how many of the `vlen` mmsghdrs were sent, or -errno.  @syscalls sendmmsg */
export function sendmmsg(fd: number, msgvec: PtrArg, vlen: number, flags: number): number {
  return ret(S.sendmmsg(fd, msgvec, vlen, flags));
}
/** Returns how many mmsghdrs were filled (msg_len set in each), or -errno.  @syscalls recvmmsg */
export function recvmmsg(fd: number, msgvec: PtrArg, vlen: number, flags: number, timeout: PtrArg = null): number {
  return ret(S.recvmmsg(fd, msgvec, vlen, flags, timeout));
}
/** Returns bytes moved from `fdIn` to `fdOut` (one must be a pipe), or -errno.  @syscalls splice */
export function splice(fdIn: number, fdOut: number, len: number, flags: number): number {
  return ret(S.splice(fdIn, null, fdOut, null, len, flags));
}
/** Returns a new epoll descriptor, or -errno.  @syscalls epoll_create1 */
export function epoll_create1(flags: number): number {
  return ret(S.epoll_create1(flags));
}
/** Returns 0, or -errno. `event` is an epoll_event (see structs.ts), null for DEL.  @syscalls epoll_ctl */
export function epoll_ctl(epfd: number, op: number, fd: number, event: PtrArg): number {
  return ret(S.epoll_ctl(epfd, op, fd, event));
}
/** Returns how many events were stored at `events`, or -errno (-EINTR on a signal).  @syscalls epoll_wait */
export function epoll_wait(epfd: number, events: PtrArg, maxevents: number, timeoutMs: number): number {
  return ret(S.epoll_wait(epfd, events, maxevents, timeoutMs));
}
/** Returns a new eventfd, or -errno.  @syscalls eventfd2 */
export function eventfd(initval: number, flags: number): number {
  return ret(S.eventfd(initval, flags));
}
/** Returns a new timerfd, or -errno.  @syscalls timerfd_create */
export function timerfd_create(clockid: number, flags: number): number {
  return ret(S.timerfd_create(clockid, flags));
}
/** Returns 0 after arming with the itimerspec at `value`, or -errno.  @syscalls timerfd_settime */
export function timerfd_settime(fd: number, flags: number, value: PtrArg, old: PtrArg = null): number {
  return ret(S.timerfd_settime(fd, flags, value, old));
}
/** Returns the signalfd (new when fd is -1) for the sigset at `mask`, or -errno.  @syscalls signalfd4 */
export function signalfd(fd: number, mask: PtrArg, flags: number): number {
  return ret(S.signalfd(fd, mask, flags));
}
/**
 * Returns 0 after changing the calling thread's signal mask, or -errno
 * (pthread_sigmask returns the error number itself; it is negated here).
 * Only the calling thread is affected: see src/loop/signal.ts for what that
 * means in multithreaded Bun.  @syscalls rt_sigprocmask
 */
export function pthread_sigmask(how: number, set: PtrArg, old: PtrArg = null): number {
  const r = S.pthread_sigmask(how, set, old);
  return r === 0 ? 0 : -r;
}
/**
 * Returns 0 after installing the struct sigaction at `act` for `signum`
 * (see structs.ts SIGACTION), or -errno.  @syscalls rt_sigaction
 */
export function sigaction(signum: number, act: PtrArg, old: PtrArg = null): number {
  return ret(S.sigaction(signum, act, old));
}
/** Returns a pidfd for `pid` (readable once it exits), or -errno.  @syscalls pidfd_open */
export function pidfd_open(pid: number, flags = 0): number {
  return ret(S.syscall(SYS_pidfd_open, pid, flags, 0, 0));
}
/** Returns 0 after sending `sig` to the process behind `pidfd`, or -errno.  @syscalls pidfd_send_signal */
export function pidfd_send_signal(pidfd: number, sig: number): number {
  return ret(S.syscall(SYS_pidfd_send_signal, pidfd, sig, 0, 0));
}
/** Returns the calling thread's id, never fails.  @syscalls gettid */
export function gettid(): number {
  return S.syscall(SYS_gettid, 0, 0, 0, 0);
}
/**
 * Returns 0 with the child's state in the siginfo_t at `info` (see
 * structs.ts SIGINFO), or -errno; with WNOHANG and nothing to report, 0 and
 * si_pid 0.  @syscalls waitid
 */
export function waitid(idtype: number, id: number, info: PtrArg, options: number): number {
  return ret(S.waitid(idtype, id, info, options));
}
/** Returns the reaped pid (0 with WNOHANG and none), status in the i32 at `status`, or -errno.  @syscalls wait4 */
export function waitpid(pid: number, status: PtrArg, options: number): number {
  return ret(S.waitpid(pid, status, options));
}
/** Returns 0 after sending `sig` to `pid`, or -errno.  @syscalls kill */
export function kill(pid: number, sig: number): number {
  return ret(S.kill(pid, sig));
}
/** Returns the process id, never fails.  @syscalls getpid */
export function getpid(): number {
  return S.getpid();
}
/**
 * Sets real, effective and saved user ids of every thread (glibc broadcasts the
 * change to all threads). Returns 0, or -errno.  @syscalls setresuid
 */
export function setresuid(uid: number): number {
  return ret(S.setresuid(uid, uid, uid));
}
/** As setresuid(), for group ids.  @syscalls setresgid */
export function setresgid(gid: number): number {
  return ret(S.setresgid(gid, gid, gid));
}
/** Drops every supplementary group. Returns 0, or -errno.  @syscalls setgroups */
export function setgroupsNone(): number {
  return ret(S.setgroups(0, null));
}
/** Returns the real user id, never fails.  @syscalls getuid */
export function getuid(): number {
  return S.getuid();
}
/** Returns the real group id, never fails.  @syscalls getgid */
export function getgid(): number {
  return S.getgid();
}
/** Returns the prctl result (0 for most options), or -errno.  @syscalls prctl */
export function prctl(option: number, a2 = 0, a3 = 0, a4 = 0, a5 = 0): number {
  return ret(S.prctl(option, a2, a3, a4, a5));
}
/** Returns 0 with {rlim_cur, rlim_max} as two u64 at `rlim` (structs.ts RLIMIT), or -errno.  @syscalls prlimit64 */
export function getrlimit(resource: number, rlim: PtrArg): number {
  return ret(S.getrlimit(resource, rlim));
}
/** Returns 0 after setting the limit from the two u64 at `rlim`, or -errno.  @syscalls prlimit64 */
export function setrlimit(resource: number, rlim: PtrArg): number {
  return ret(S.setrlimit(resource, rlim));
}
/** Returns a new inotify descriptor, or -errno.  @syscalls inotify_init1 */
export function inotify_init1(flags: number): number {
  return ret(S.inotify_init1(flags));
}
/** Returns the watch descriptor for `path`, or -errno.  @syscalls inotify_add_watch */
export function inotify_add_watch(fd: number, path: PathArg, mask: number): number {
  const p = cpath(path);
  return p === null ? -ENAMETOOLONG : ret(S.inotify_add_watch(fd, p, mask));
}
/** Returns 0 after removing `path`, or -errno.  @syscalls unlink */
export function unlink(path: PathArg): number {
  const p = cpath(path);
  return p === null ? -ENAMETOOLONG : ret(S.unlink(p));
}
/** Returns how many random bytes were written into `buf`, or -errno.  @syscalls getrandom */
export function getrandom(buf: Uint8Array, flags = 0): number {
  return ret(S.getrandom(buf, buf.byteLength, flags));
}
/** Returns the index of the interface named `name`, or -errno (-ENODEV if absent).  @syscalls socket ioctl close */
export function if_nametoindex(name: PathArg): number {
  const p = cpath(name);
  if (p === null) return -ENAMETOOLONG;
  const r = S.if_nametoindex(p);
  return r === 0 ? -peek.i32(ERRNO, 0) : r;
}
/** Returns a new memfd, or -errno.  @syscalls memfd_create */
export function memfd_create(name: PathArg, flags: number): number {
  const p = cpath(name);
  return p === null ? -ENAMETOOLONG : ret(S.memfd_create(p, flags));
}
/** Returns a duplicate of `fd`, or -errno.  @syscalls dup */
export function dup(fd: number): number {
  return ret(S.dup(fd));
}
/** Returns `newfd`, now a duplicate of `oldfd`, or -errno.  @syscalls dup3 */
export function dup3(oldfd: number, newfd: number, flags: number): number {
  return ret(S.dup3(oldfd, newfd, flags));
}
/** Returns 0, or -errno.  @syscalls fchmod */
export function fchmod(fd: number, mode: number): number {
  return ret(S.fchmod(fd, mode));
}
/** Returns the previous umask, never fails.  @syscalls umask */
export function umask(mask: number): number {
  return S.umask(mask);
}
/** Returns 0, or -errno.  @syscalls chdir */
export function chdir(path: PathArg): number {
  const p = cpath(path);
  return p === null ? -ENAMETOOLONG : ret(S.chdir(p));
}
/** Returns the new session id, or -errno (-EPERM for a group leader).  @syscalls setsid */
export function setsid(): number {
  return ret(S.setsid());
}

// SCM_RIGHTS ----------------------------------------------------------------

/** Most descriptors one sendFds()/recvFds() call carries. */
export const MAX_FDS = 16;
const FD_MSG = arena(MSGHDR.SIZE, 8);
const FD_MSG_DV = viewOf(FD_MSG);
const FD_IOV = arena(IOVEC.SIZE, 8);
const FD_IOV_DV = viewOf(FD_IOV);
const FD_CTRL = arena(CMSG_SPACE(4 * MAX_FDS), 8);
const FD_CTRL_DV = viewOf(FD_CTRL);
writeMsghdr(FD_MSG_DV, 0, FD_IOV, 1, null, FD_CTRL);
const SOL_SOCKET = 1, SCM_RIGHTS = 1, MSG_CMSG_CLOEXEC = 0x40000000, MSG_NOSIGNAL = 0x4000;

/**
 * Returns bytes of `data` sent on the unix socket `sock` together with the
 * descriptors `fds` (SCM_RIGHTS, at most MAX_FDS), or -errno. `data` must
 * hold at least one byte: the kernel drops descriptors sent with no data.
 * @syscalls sendmsg
 */
export function sendFds(sock: number, data: Uint8Array, fds: ArrayLike<number>): number {
  if (fds.length > MAX_FDS || fds.length === 0) throw new RangeError(`sendFds: ${fds.length} descriptors (1..${MAX_FDS})`);
  setU64(FD_IOV_DV, IOVEC.BASE, Number(ptrOf(data)));
  setU64(FD_IOV_DV, IOVEC.LEN, data.byteLength);
  setU64(FD_CTRL_DV, CMSGHDR.LEN, CMSG_LEN(4 * fds.length));
  FD_CTRL_DV.setInt32(CMSGHDR.LEVEL, SOL_SOCKET, true);
  FD_CTRL_DV.setInt32(CMSGHDR.TYPE, SCM_RIGHTS, true);
  for (let i = 0; i < fds.length; i++) FD_CTRL_DV.setInt32(CMSGHDR.DATA + 4 * i, fds[i]!, true);
  setU64(FD_MSG_DV, MSGHDR.CONTROLLEN, CMSG_SPACE(4 * fds.length));
  const r = ret(S.sendmsg(sock, FD_MSG, MSG_NOSIGNAL));
  setU64(FD_IOV_DV, IOVEC.BASE, 0);
  return r;
}

/**
 * Returns bytes received into `data` from the unix socket `sock`, or -errno;
 * descriptors that came with them (SCM_RIGHTS, close-on-exec) are stored in
 * `fds` in order, and the remaining entries set to -1. Descriptors that do
 * not fit in `fds` are closed.  @syscalls recvmsg close
 */
export function recvFds(sock: number, data: Uint8Array, fds: Int32Array): number {
  setU64(FD_IOV_DV, IOVEC.BASE, Number(ptrOf(data)));
  setU64(FD_IOV_DV, IOVEC.LEN, data.byteLength);
  setU64(FD_MSG_DV, MSGHDR.CONTROLLEN, FD_CTRL.byteLength);
  FD_CTRL.fill(0);
  fds.fill(-1);
  const r = ret(S.recvmsg(sock, FD_MSG, MSG_CMSG_CLOEXEC));
  setU64(FD_IOV_DV, IOVEC.BASE, 0);
  if (r < 0) return r;
  const controllen = FD_MSG_DV.getUint32(MSGHDR.CONTROLLEN, true);
  let off = 0;
  let n = 0;
  while (off + CMSGHDR.SIZE <= controllen) {
    const len = FD_CTRL_DV.getUint32(off + CMSGHDR.LEN, true);
    if (len < CMSGHDR.SIZE) break;
    if (FD_CTRL_DV.getInt32(off + CMSGHDR.LEVEL, true) === SOL_SOCKET &&
        FD_CTRL_DV.getInt32(off + CMSGHDR.TYPE, true) === SCM_RIGHTS) {
      for (let p = off + CMSGHDR.DATA; p + 4 <= off + len; p += 4) {
        const fd = FD_CTRL_DV.getInt32(p, true);
        if (n < fds.length) fds[n++] = fd;
        else S.close(fd);
      }
    }
    off += (len + 7) & ~7;
  }
  return r;
}

// Signals through a pipe --------------------------------------------------
//
// Measured (tests/integration/loop_signal.test.ts, Bun 1.4.5, 6 threads):
// blocking a signal with pthread_sigmask only blocks it on the calling thread,
// so a process-directed SIGTERM or SIGHUP is delivered to one of Bun's other
// threads and its default action kills the process (exit 143/129) before a
// signalfd is read, and SIGCHLD is discarded there (the signalfd never sees
// it). The robust way is a process-wide handler: any thread may run it, and
// it writes the signal number to a pipe the epoll loop watches (the
// self-pipe trick). The handler is four lines of C compiled once, lazily,
// with bun:ffi cc (TinyCC, 10-40 ms), because a JS callback must never run in
// signal context.

const SIGPIPE_C = `
long write(int fd, const void *buf, unsigned long n);
int *__errno_location(void);
static volatile int sig_fd = -1;
static void sig_handler(int sig)
{
	int saved = *__errno_location();
	unsigned char b = (unsigned char)sig;
	write(sig_fd, &b, 1);
	*__errno_location() = saved;
}
void sigpipe_set_fd(int fd) { sig_fd = fd; }
void *sigpipe_handler(void) { return (void *)sig_handler; }
`;

/** The compiled handler library, held for the process lifetime once built. */
let sigLib: { setFd: (fd: number) => void; handler: number } | null = null;
/** Pipe ends of the signal pipe, -1 until signalPipe() first succeeds. */
const sigFds = new Int32Array([-1, -1]);
const SIG_ACT = arena(SIGACTION.SIZE, 8);
const SA_RESTART = 0x10000000, O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000, MFD_CLOEXEC = 1;

function buildSigLib(): { setFd: (fd: number) => void; handler: number } | null {
  // cc() cannot read $bunfs paths in a compiled executable: go through a memfd.
  const mfd = memfd_create("sigpipe.c", MFD_CLOEXEC);
  if (mfd < 0) return null;
  const src = encoder.encode(SIGPIPE_C);
  const w = write(mfd, src, src.byteLength);
  if (w !== src.byteLength) {
    close(mfd);
    return null;
  }
  const lib = cc({
    source: `/proc/self/fd/${mfd}`,
    symbols: {
      sigpipe_set_fd: { args: ["i32"], returns: "void" },
      sigpipe_handler: { args: [], returns: "ptr" },
    },
  });
  close(mfd);
  keepAlive.push(lib);
  const h = lib.symbols.sigpipe_handler();
  if (h === null) return null;
  return { setFd: (fd) => lib.symbols.sigpipe_set_fd(fd), handler: Number(h) };
}
/** Strong references to compiled code, which must outlive every signal. */
const keepAlive: unknown[] = [];

/**
 * Returns the read end of the process's signal pipe (non-blocking,
 * close-on-exec) after installing a handler, for every signal in
 * `signals`, that writes the signal number as one byte to it; or -errno
 * (-ENOSYS if the handler could not be compiled). Any thread may take the
 * signal. Calling it again adds signals and returns the same descriptor.
 * Read the pipe with read(): each byte is one signal delivery.
 * @syscalls memfd_create write close pipe2 rt_sigaction
 */
export function signalPipe(signals: readonly number[]): number {
  if (sigLib === null) {
    sigLib = buildSigLib();
    if (sigLib === null) return -38;
  }
  if (sigFds[0] === -1) {
    const r = ret(S.pipe2(sigFds, O_NONBLOCK | O_CLOEXEC));
    if (r < 0) return r;
    sigLib.setFd(sigFds[1]!);
  }
  const dv = viewOf(SIG_ACT);
  SIG_ACT.fill(0);
  setU64(dv, SIGACTION.HANDLER, sigLib.handler);
  SIG_ACT.fill(0xff, SIGACTION.MASK, SIGACTION.MASK + 8); // block all signals while it runs
  dv.setInt32(SIGACTION.FLAGS, SA_RESTART, true);
  for (const sig of signals) {
    const r = ret(S.sigaction(sig, SIG_ACT, null));
    if (r < 0) return r;
  }
  return sigFds[0]!;
}

/**
 * Returns 0 after restoring the default action (SIG_DFL) for `signals`, or
 * -errno. The signal pipe stays open.  @syscalls rt_sigaction
 */
export function signalDefault(signals: readonly number[]): number {
  SIG_ACT.fill(0);
  for (const sig of signals) {
    const r = ret(S.sigaction(sig, SIG_ACT, null));
    if (r < 0) return r;
  }
  return 0;
}

export {
  writeSockaddrIn,
  writeSockaddrIn6,
  writeSockaddrUn,
  readSockaddr,
  sockaddrFamily,
  sockaddrPort,
} from "./structs.ts";

/** struct sock_fprog: u16 length, then (aligned) the filter's address. */
const SOCK_FPROG = arena(16, 8);
const SOCK_FPROG_VIEW = new DataView(SOCK_FPROG.buffer, SOCK_FPROG.byteOffset, 16);
const SECCOMP_SET_MODE_FILTER = 1;
const SECCOMP_FILTER_FLAG_TSYNC = 1;
const PR_SET_NO_NEW_PRIVS_OPT = 38;

/**
 * Installs the classic BPF program `filter` (struct sock_filter[], 8 bytes each) as a
 * seccomp filter on every thread of the process, after PR_SET_NO_NEW_PRIVS. Returns 0,
 * -errno, or the (positive) id of a thread that could not be synchronised.
 * `filter` must stay referenced while this runs only: the kernel copies it.
 * @syscalls prctl seccomp
 */
export function seccompInstall(filter: Uint8Array): number {
  const r = ret(S.prctl(PR_SET_NO_NEW_PRIVS_OPT, 1, 0, 0, 0));
  if (r < 0) return r;
  SOCK_FPROG_VIEW.setUint16(0, filter.byteLength / 8, true);
  setU64(SOCK_FPROG_VIEW, 8, addrOf(filter));
  return ret(S.syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, addrOf(SOCK_FPROG), 0));
}
