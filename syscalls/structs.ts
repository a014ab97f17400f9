// SPDX-License-Identifier: GPL-2.0-or-later
// structs.ts - kernel and glibc struct layouts, sockaddr codecs, batch builders
//
// Layouts are size and byte offsets for x86_64 and aarch64 (LP64 both; only
// epoll_event differs: packed to 12 bytes on x86_64, 16 on aarch64). The table
// for the running architecture is selected at load; tests compare every entry
// with gcc's sizeof/offsetof. Struct fields are host byte order (little-endian
// on both targets), so every DataView access here passes `true`; ports and
// addresses inside sockaddrs are network order, as the kernel wants them.
//
// Addresses (iov_base, msg_name...) are written as two u32 halves: addresses
// are below 2^53, and DataView.setBigUint64 would allocate a BigInt.

import { addrOf, arena } from "./arena.ts";
import { SOL_UDP, UDP_SEGMENT } from "./constants.ts";

/** Layout of one struct: its size and the byte offset of each field. */
export type Layout = { readonly SIZE: number } & { readonly [field: string]: number };

/** The layouts that differ by architecture, for tests and for documentation. */
export const ARCH_LAYOUTS = {
  x64: { EPOLL_EVENT: { SIZE: 12, EVENTS: 0, DATA: 4 } },
  arm64: { EPOLL_EVENT: { SIZE: 16, EVENTS: 0, DATA: 8 } },
} as const;

const ARCH = process.arch === "arm64" ? "arm64" : "x64";

/** struct epoll_event: u32 events; u64 data (packed on x86_64). */
export const EPOLL_EVENT: { readonly SIZE: number; readonly EVENTS: number; readonly DATA: number } =
  ARCH_LAYOUTS[ARCH].EPOLL_EVENT;

/** struct sockaddr_in (16 bytes): family, port (BE), IPv4 address. */
export const SOCKADDR_IN = { SIZE: 16, FAMILY: 0, PORT: 2, ADDR: 4 } as const;
/** struct sockaddr_in6 (28 bytes): family, port (BE), flow info, address, scope id (host order). */
export const SOCKADDR_IN6 = { SIZE: 28, FAMILY: 0, PORT: 2, FLOWINFO: 4, ADDR: 8, SCOPE_ID: 24 } as const;
/** struct sockaddr_un (110 bytes): family, path (108 bytes, NUL-terminated unless abstract). */
export const SOCKADDR_UN = { SIZE: 110, FAMILY: 0, PATH: 2 } as const;
/** struct sockaddr_nl (12 bytes): family, pad, port id, multicast groups. */
export const SOCKADDR_NL = { SIZE: 12, FAMILY: 0, PID: 4, GROUPS: 8 } as const;
/** struct sockaddr_storage: room for any address. */
export const SOCKADDR_STORAGE = { SIZE: 128, FAMILY: 0 } as const;
/** struct iovec: void *iov_base; size_t iov_len. */
export const IOVEC = { SIZE: 16, BASE: 0, LEN: 8 } as const;
/** struct msghdr: name, namelen (u32), iov, iovlen (size_t), control, controllen (size_t), flags. */
export const MSGHDR = { SIZE: 56, NAME: 0, NAMELEN: 8, IOV: 16, IOVLEN: 24, CONTROL: 32, CONTROLLEN: 40, FLAGS: 48 } as const;
/** struct mmsghdr: msghdr, then msg_len (u32) filled by the kernel. */
export const MMSGHDR = { SIZE: 64, HDR: 0, LEN: 56 } as const;
/** struct cmsghdr: cmsg_len (size_t), level, type; data follows at DATA. */
export const CMSGHDR = { SIZE: 16, LEN: 0, LEVEL: 8, TYPE: 12, DATA: 16 } as const;
/** struct ifreq (40 bytes): name[16], then a union: flags (short), ifindex, mtu (int), hwaddr (sockaddr). */
export const IFREQ = { SIZE: 40, NAME: 0, FLAGS: 16, IFINDEX: 16, MTU: 16, HWADDR: 16, HWADDR_DATA: 18 } as const;
/** struct timespec: seconds, nanoseconds (both 64-bit). */
export const TIMESPEC = { SIZE: 16, SEC: 0, NSEC: 8 } as const;
/** struct itimerspec: interval, then first expiry (timespecs). */
export const ITIMERSPEC = { SIZE: 32, INTERVAL_SEC: 0, INTERVAL_NSEC: 8, VALUE_SEC: 16, VALUE_NSEC: 24 } as const;
/** struct signalfd_siginfo (128 bytes), the fields the loop reads. */
export const SIGNALFD_SIGINFO = { SIZE: 128, SIGNO: 0, ERRNO: 4, CODE: 8, PID: 12, UID: 16, STATUS: 40 } as const;
/** siginfo_t as filled by waitid(): signal, code (CLD_*), pid, uid, status. */
export const SIGINFO = { SIZE: 128, SIGNO: 0, ERRNO: 4, CODE: 8, PID: 16, UID: 20, STATUS: 24 } as const;
/** glibc sigset_t: 1024 bits (the kernel reads the first 8 bytes). */
export const SIGSET = { SIZE: 128 } as const;
/** glibc struct sigaction: handler, mask, flags, restorer. */
export const SIGACTION = { SIZE: 152, HANDLER: 0, MASK: 8, FLAGS: 136, RESTORER: 144 } as const;
/** struct rlimit: rlim_cur, rlim_max (u64). */
export const RLIMIT = { SIZE: 16, CUR: 0, MAX: 8 } as const;
/** struct linger: l_onoff, l_linger (seconds). */
export const LINGER = { SIZE: 8, ONOFF: 0, LINGER: 4 } as const;
/** struct in_pktinfo: ifindex, local address, header destination. */
export const IN_PKTINFO = { SIZE: 12, IFINDEX: 0, SPEC_DST: 4, ADDR: 8 } as const;
/** struct in6_pktinfo: address, ifindex. */
export const IN6_PKTINFO = { SIZE: 20, ADDR: 0, IFINDEX: 16 } as const;
/** struct ucred (SO_PEERCRED): pid, uid, gid. */
export const UCRED = { SIZE: 12, PID: 0, UID: 4, GID: 8 } as const;
/** struct nlmsghdr (16 bytes): length (header included), type, flags, sequence number, port id. */
export const NLMSGHDR = { SIZE: 16, LEN: 0, TYPE: 4, FLAGS: 6, SEQ: 8, PID: 12 } as const;
/** struct nlmsgerr: the payload of NLMSG_ERROR, -errno (0: an acknowledgement), then the request's header. */
export const NLMSGERR = { SIZE: 20, ERROR: 0, MSG: 4 } as const;
/**
 * struct inet_diag_sockid (linux/inet_diag.h, 48 bytes): ports and addresses in network
 * order (an IPv4 address in the first 4 bytes), interface index, socket cookie.
 */
export const INET_DIAG_SOCKID = { SIZE: 48, SPORT: 0, DPORT: 2, SRC: 4, DST: 20, IF: 36, COOKIE: 40 } as const;
/**
 * struct inet_diag_req_v2 (56 bytes), the body of a SOCK_DIAG_BY_FAMILY request for AF_INET or
 * AF_INET6: family, protocol (IPPROTO_TCP...), extensions wanted (INET_DIAG_* bits), a mask of
 * states (1 << TCP_*) and a socket id to match (all zero for a dump).
 */
export const INET_DIAG_REQ_V2 = { SIZE: 56, FAMILY: 0, PROTOCOL: 1, EXT: 2, PAD: 3, STATES: 4, ID: 8 } as const;
/**
 * struct inet_diag_msg (72 bytes), one socket in a SOCK_DIAG_BY_FAMILY reply, attributes after
 * it: family, state (TCP_*), timer, retransmits, the socket id (SPORT...COOKIE are its fields,
 * at ID + INET_DIAG_SOCKID offsets), timer expiry (ms), queues (bytes), owner uid, inode.
 */
export const INET_DIAG_MSG = {
  SIZE: 72, FAMILY: 0, STATE: 1, TIMER: 2, RETRANS: 3, ID: 4, SPORT: 4, DPORT: 6, SRC: 8, DST: 24, IF: 40, COOKIE: 44,
  EXPIRES: 52, RQUEUE: 56, WQUEUE: 60, UID: 64, INODE: 68,
} as const;
/** struct virtio_net_hdr (10 bytes; 12 with num_buffers, the _mrg_rxbuf form). */
export const VIRTIO_NET_HDR = {
  SIZE: 10, SIZE_MRG_RXBUF: 12, FLAGS: 0, GSO_TYPE: 1, HDR_LEN: 2, GSO_SIZE: 4, CSUM_START: 6, CSUM_OFFSET: 8, NUM_BUFFERS: 10,
} as const;
/**
 * struct tcp_info (linux/tcp.h), up to tcpi_snd_wnd (Linux 5.4+; older
 * kernels return fewer bytes: getsockopt's length says how many). Times in
 * microseconds; windows and byte counts in bytes.
 */
export const TCP_INFO_LAYOUT = {
  SIZE: 232, STATE: 0, CA_STATE: 1, RETRANSMITS: 2, OPTIONS: 5, WSCALE: 6, RTO: 8, ATO: 12, SND_MSS: 16, RCV_MSS: 20,
  UNACKED: 24, LAST_DATA_SENT: 44, LAST_DATA_RECV: 52, PMTU: 60, RCV_SSTHRESH: 64, RTT: 68, RTTVAR: 72,
  SND_SSTHRESH: 76, SND_CWND: 80, ADVMSS: 84, RCV_SPACE: 96, TOTAL_RETRANS: 100, PACING_RATE: 104,
  BYTES_ACKED: 120, BYTES_RECEIVED: 128, NOTSENT_BYTES: 144, MIN_RTT: 148, DELIVERY_RATE: 160, BYTES_SENT: 200,
  SND_WND: 228,
} as const;

/**
 * Indices of the u32 array SO_MEMINFO returns (linux/sock_diag.h); SIZE is its
 * length in bytes. Send-side values are in bytes including buffer overhead.
 */
export const SK_MEMINFO = {
  RMEM_ALLOC: 0, RCVBUF: 1, WMEM_ALLOC: 2, SNDBUF: 3, FWD_ALLOC: 4, WMEM_QUEUED: 5, OPTMEM: 6, BACKLOG: 7, DROPS: 8,
  SIZE: 36,
} as const;

/** Returns `len` rounded up to the cmsg alignment (8 bytes on LP64). */
export function CMSG_ALIGN(len: number): number {
  return (len + 7) & ~7;
}
/** Returns the buffer space one control message with `len` data bytes takes. */
export function CMSG_SPACE(len: number): number {
  return CMSGHDR.SIZE + CMSG_ALIGN(len);
}
/** Returns the cmsg_len value for a control message with `len` data bytes. */
export function CMSG_LEN(len: number): number {
  return CMSGHDR.SIZE + len;
}

const TWO32 = 0x100000000;

/** Stores a 64-bit host-order value (an address or size below 2^53) at `off`, without a BigInt. */
export function setU64(dv: DataView, off: number, v: number): void {
  dv.setUint32(off, v >>> 0, true);
  dv.setUint32(off + 4, Math.floor(v / TWO32), true);
}
/** Returns the 64-bit host-order value at `off` as a number (exact below 2^53). */
export function getU64(dv: DataView, off: number): number {
  return dv.getUint32(off + 4, true) * TWO32 + dv.getUint32(off, true);
}

/** Returns a DataView over exactly `b` (allocates: build once, keep it). */
export function viewOf(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

// sockaddr codecs --------------------------------------------------------

const AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10;
const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

/**
 * Writes a sockaddr_in for `addr4` (4 bytes, network order) and `port` into
 * `buf` and returns its length (16). Throws RangeError if `buf` is too small.
 */
export function writeSockaddrIn(buf: Uint8Array, addr4: Uint8Array, port: number): number {
  if (buf.byteLength < SOCKADDR_IN.SIZE) throw new RangeError(`sockaddr_in needs 16 bytes, got ${buf.byteLength}`);
  buf.fill(0, 0, SOCKADDR_IN.SIZE);
  buf[0] = AF_INET & 0xff;
  buf[1] = AF_INET >> 8;
  buf[2] = port >> 8;
  buf[3] = port & 0xff;
  buf[4] = addr4[0] ?? 0;
  buf[5] = addr4[1] ?? 0;
  buf[6] = addr4[2] ?? 0;
  buf[7] = addr4[3] ?? 0;
  return SOCKADDR_IN.SIZE;
}

/**
 * Writes a sockaddr_in6 for `addr16` (16 bytes), `port` and `scopeId` into
 * `buf` and returns its length (28). Throws RangeError if `buf` is too small.
 */
export function writeSockaddrIn6(buf: Uint8Array, addr16: Uint8Array, port: number, scopeId = 0): number {
  if (buf.byteLength < SOCKADDR_IN6.SIZE) throw new RangeError(`sockaddr_in6 needs 28 bytes, got ${buf.byteLength}`);
  buf.fill(0, 0, SOCKADDR_IN6.SIZE);
  buf[0] = AF_INET6;
  buf[2] = port >> 8;
  buf[3] = port & 0xff;
  for (let i = 0; i < 16; i++) buf[SOCKADDR_IN6.ADDR + i] = addr16[i] ?? 0;
  buf[24] = scopeId & 0xff;
  buf[25] = (scopeId >>> 8) & 0xff;
  buf[26] = (scopeId >>> 16) & 0xff;
  buf[27] = scopeId >>> 24;
  return SOCKADDR_IN6.SIZE;
}

/**
 * Writes a sockaddr_un for `path` into `buf` and returns the length to pass
 * to bind/connect (2 + path bytes + 1 for the NUL; no NUL for an abstract
 * name, given with a leading "\0"). Throws RangeError if the path does not
 * fit in 108 bytes.
 */
export function writeSockaddrUn(buf: Uint8Array, path: string): number {
  const bytes = ENCODER.encode(path);
  const abstract = bytes[0] === 0;
  const need = bytes.length + (abstract ? 0 : 1);
  if (need > 108 || buf.byteLength < SOCKADDR_UN.PATH + need) {
    throw new RangeError(`sockaddr_un path too long (${bytes.length} bytes): ${path}`);
  }
  buf[0] = AF_UNIX;
  buf[1] = 0;
  buf.set(bytes, SOCKADDR_UN.PATH);
  if (!abstract) buf[SOCKADDR_UN.PATH + bytes.length] = 0;
  return SOCKADDR_UN.PATH + need;
}

/** Returns the address family of the sockaddr in `buf` (AF_INET, AF_INET6...), 0 if too short. */
export function sockaddrFamily(buf: Uint8Array): number {
  return buf.byteLength < 2 ? 0 : buf[0]! | (buf[1]! << 8);
}

/** Returns the port of a sockaddr_in/in6 in `buf` (host number), or -1 for other families. */
export function sockaddrPort(buf: Uint8Array): number {
  const f = sockaddrFamily(buf);
  if (f !== AF_INET && f !== AF_INET6) return -1;
  return (buf[2]! << 8) | buf[3]!;
}

/** A decoded socket address (slow paths: logs, configuration). */
export type Sockaddr =
  | { family: 2; addr: Uint8Array; port: number }
  | { family: 10; addr: Uint8Array; port: number; flowinfo: number; scopeId: number }
  | { family: 1; path: string }
  | { family: 16; pid: number; groups: number };

/**
 * Returns the address in `buf` (of length `len`, default the whole buffer)
 * as a new object, or null for an unknown family or a short buffer.
 * Allocates: hot paths use sockaddrFamily/sockaddrPort and read the address
 * bytes in place (SOCKADDR_IN.ADDR, SOCKADDR_IN6.ADDR).
 */
export function readSockaddr(buf: Uint8Array, len = buf.byteLength): Sockaddr | null {
  const dv = viewOf(buf);
  const f = sockaddrFamily(buf);
  if (f === AF_INET && len >= SOCKADDR_IN.SIZE) {
    return { family: AF_INET, addr: buf.slice(4, 8), port: dv.getUint16(2) };
  }
  if (f === AF_INET6 && len >= SOCKADDR_IN6.SIZE) {
    return {
      family: AF_INET6, addr: buf.slice(8, 24), port: dv.getUint16(2),
      flowinfo: dv.getUint32(4), scopeId: dv.getUint32(24, true),
    };
  }
  if (f === AF_UNIX && len >= 2) {
    let end: number = SOCKADDR_UN.PATH;
    const stop = Math.min(len, buf.byteLength);
    if (buf[end] === 0 && stop > end + 1) end = stop; // abstract: the length decides
    else while (end < stop && buf[end] !== 0) end++;
    return { family: AF_UNIX, path: DECODER.decode(buf.subarray(SOCKADDR_UN.PATH, end)) };
  }
  if (f === 16 && len >= SOCKADDR_NL.SIZE) {
    return { family: 16, pid: dv.getUint32(4, true), groups: dv.getUint32(8, true) };
  }
  return null;
}

/** Writes a sockaddr_nl for port id `pid` and multicast `groups` into `buf`; returns 12. */
export function writeSockaddrNl(buf: Uint8Array, pid = 0, groups = 0): number {
  const dv = viewOf(buf);
  buf.fill(0, 0, SOCKADDR_NL.SIZE);
  dv.setUint16(0, 16, true);
  dv.setUint32(SOCKADDR_NL.PID, pid, true);
  dv.setUint32(SOCKADDR_NL.GROUPS, groups, true);
  return SOCKADDR_NL.SIZE;
}

/** Writes an epoll_event (events, and data as two u32 halves) at byte `off` of `dv`. */
export function writeEpollEvent(dv: DataView, off: number, events: number, dataLo: number, dataHi: number): void {
  dv.setUint32(off + EPOLL_EVENT.EVENTS, events >>> 0, true);
  dv.setUint32(off + EPOLL_EVENT.DATA, dataLo >>> 0, true);
  dv.setUint32(off + EPOLL_EVENT.DATA + 4, dataHi >>> 0, true);
}

// signal sets --------------------------------------------------------------

/** Writes a sigset_t holding exactly `signals` into `set` (at least 128 bytes); returns `set`. */
export function sigsetOf(set: Uint8Array, signals: readonly number[]): Uint8Array {
  set.fill(0, 0, SIGSET.SIZE);
  for (const s of signals) set[(s - 1) >> 3]! |= 1 << ((s - 1) & 7);
  return set;
}

/** Returns whether signal `sig` is in the sigset_t `set`. */
export function sigsetHas(set: Uint8Array, sig: number): boolean {
  return ((set[(sig - 1) >> 3] ?? 0) & (1 << ((sig - 1) & 7))) !== 0;
}

// itimerspec ---------------------------------------------------------------

/** Writes an itimerspec (first expiry after `valueMs`, then every `intervalMs`; 0 = none) into `spec`. */
export function writeItimerspec(spec: DataView, valueMs: number, intervalMs: number): void {
  setU64(spec, ITIMERSPEC.INTERVAL_SEC, Math.floor(intervalMs / 1000));
  setU64(spec, ITIMERSPEC.INTERVAL_NSEC, Math.round((intervalMs % 1000) * 1e6));
  setU64(spec, ITIMERSPEC.VALUE_SEC, Math.floor(valueMs / 1000));
  setU64(spec, ITIMERSPEC.VALUE_NSEC, Math.round((valueMs % 1000) * 1e6));
}

// batch structures -----------------------------------------------------------

/**
 * Returns an arena-held array of iovecs, one per buffer in `bufs`, each
 * pointing at its buffer with iov_len set to the buffer's length. The
 * buffers must stay alive as long as the iovecs are used (arena or wasm
 * memory). Built once; rewrite lengths with setIovLen().
 */
export function iovecs(bufs: readonly Uint8Array[]): Uint8Array {
  const iov = arena(bufs.length * IOVEC.SIZE, 8);
  const dv = viewOf(iov);
  bufs.forEach((b, i) => {
    setU64(dv, i * IOVEC.SIZE + IOVEC.BASE, addrOf(b));
    setU64(dv, i * IOVEC.SIZE + IOVEC.LEN, b.byteLength);
  });
  return iov;
}

/** Sets iov_len of iovec `i` in the array viewed by `dv` (lengths below 2^32). */
export function setIovLen(dv: DataView, i: number, len: number): void {
  dv.setUint32(i * IOVEC.SIZE + IOVEC.LEN, len, true);
  dv.setUint32(i * IOVEC.SIZE + IOVEC.LEN + 4, 0, true);
}

/** Writes a msghdr at byte `off` of `dv` pointing at the given iovecs, name and control areas. */
export function writeMsghdr(
  dv: DataView, off: number,
  iov: Uint8Array, iovlen: number,
  name: Uint8Array | null, control: Uint8Array | null,
): void {
  setU64(dv, off + MSGHDR.NAME, name === null ? 0 : addrOf(name));
  dv.setUint32(off + MSGHDR.NAMELEN, name === null ? 0 : name.byteLength, true);
  dv.setUint32(off + MSGHDR.NAMELEN + 4, 0, true);
  setU64(dv, off + MSGHDR.IOV, addrOf(iov));
  setU64(dv, off + MSGHDR.IOVLEN, iovlen);
  setU64(dv, off + MSGHDR.CONTROL, control === null ? 0 : addrOf(control));
  setU64(dv, off + MSGHDR.CONTROLLEN, control === null ? 0 : control.byteLength);
  dv.setInt32(off + MSGHDR.FLAGS, 0, true);
  dv.setInt32(off + MSGHDR.FLAGS + 4, 0, true);
}

/**
 * A batch of `count` messages for sendmmsg/recvmmsg, built once in arena
 * memory: message i has one iovec pointing at `bufs[i]` and, if `withNames`,
 * a 128-byte sockaddr_storage. Per call, only lengths are rewritten:
 * prepareRecv() restores every capacity, setLen()/setNameLen() set what to send.
 */
export class MmsgBatch {
  /** The mmsghdr array: pass to sendmmsg/recvmmsg. */
  readonly hdrs: Uint8Array;
  /** DataView over hdrs (host order). */
  readonly hdrsView: DataView;
  /** One iovec per message. */
  readonly iov: Uint8Array;
  /** DataView over iov (host order). */
  readonly iovView: DataView;
  /** Sockaddr storage, 128 bytes per message (empty if built without names). */
  readonly names: Uint8Array;
  readonly count: number;
  private readonly capacity: Uint32Array;
  private readonly nameSize: number;

  constructor(readonly bufs: readonly Uint8Array[], withNames = true) {
    this.count = bufs.length;
    this.hdrs = arena(this.count * MMSGHDR.SIZE, 8);
    this.hdrsView = viewOf(this.hdrs);
    this.iov = iovecs(bufs);
    this.iovView = viewOf(this.iov);
    this.nameSize = withNames ? SOCKADDR_STORAGE.SIZE : 0;
    this.names = arena(this.count * this.nameSize, 8);
    this.capacity = new Uint32Array(this.count);
    for (let i = 0; i < this.count; i++) {
      this.capacity[i] = bufs[i]!.byteLength;
      const iov1 = this.iov.subarray(i * IOVEC.SIZE, (i + 1) * IOVEC.SIZE);
      const name = withNames ? this.names.subarray(i * this.nameSize, (i + 1) * this.nameSize) : null;
      writeMsghdr(this.hdrsView, i * MMSGHDR.SIZE, iov1, 1, name, null);
    }
  }

  /** Restores every iov_len to its buffer's capacity and every namelen to 128, before recvmmsg. */
  prepareRecv(n = this.count): void {
    for (let i = 0; i < n; i++) {
      setIovLen(this.iovView, i, this.capacity[i]!);
      this.hdrsView.setUint32(i * MMSGHDR.SIZE + MSGHDR.NAMELEN, this.nameSize, true);
    }
  }
  /** Sets how many bytes of buffer i message i carries (before sendmmsg). */
  setLen(i: number, len: number): void {
    setIovLen(this.iovView, i, len);
  }
  /** Sets the length of message i's destination address (0: none, for connected sockets). */
  setNameLen(i: number, len: number): void {
    this.hdrsView.setUint32(i * MMSGHDR.SIZE + MSGHDR.NAMELEN, len, true);
  }
  /** Returns the bytes the kernel reported for message i (msg_len). */
  msgLen(i: number): number {
    return this.hdrsView.getUint32(i * MMSGHDR.SIZE + MMSGHDR.LEN, true);
  }
  /** Returns message i's sockaddr storage (a subarray view: allocates; cache it in hot paths). */
  name(i: number): Uint8Array {
    return this.names.subarray(i * this.nameSize, (i + 1) * this.nameSize);
  }
  /** Returns msg_flags of message i as set by recvmmsg (MSG_TRUNC...). */
  flags(i: number): number {
    return this.hdrsView.getInt32(i * MMSGHDR.SIZE + MSGHDR.FLAGS, true);
  }
}

/**
 * A list of up to `capacity` iovecs in arena memory, filled anew for each
 * writev() or sendmsg() that gathers bytes from several buffers without
 * copying them. It holds the buffers pushed until the next clear(), so that
 * the memory the kernel reads stays alive; nothing is allocated after
 * construction.
 * @example list.clear(); list.push(frame, 0, 42); list.push(payload, 0, 1400); writev(fd, list.iov, list.count);
 */
export class IovecList {
  /** The iovec array: pass it with `count`. */
  readonly iov: Uint8Array;
  private readonly dv: DataView;
  /** The buffer, offset and length of each iovec in use. */
  private readonly bufs: (Uint8Array | null)[];
  private readonly offsets: Uint32Array;
  private readonly lens: Uint32Array;
  /** Iovecs in use. */
  count = 0;
  /** Sum of their lengths. */
  bytes = 0;

  constructor(readonly capacity: number) {
    this.iov = arena(capacity * IOVEC.SIZE, 8);
    this.dv = viewOf(this.iov);
    this.bufs = new Array<Uint8Array | null>(capacity).fill(null);
    this.offsets = new Uint32Array(capacity);
    this.lens = new Uint32Array(capacity);
  }

  /** Empties the list. */
  clear(): void {
    this.bufs.fill(null, 0, this.count);
    this.count = 0;
    this.bytes = 0;
  }

  /**
   * Appends `len` bytes of `buf` from `offset`; returns false, appending
   * nothing, if the list is full. Throws RangeError if the range is not inside
   * `buf` (a programmer error).
   */
  push(buf: Uint8Array, offset: number, len: number): boolean {
    if (offset < 0 || len < 0 || offset + len > buf.byteLength) {
      throw new RangeError(`IovecList.push: ${len} bytes at ${offset} do not fit in ${buf.byteLength}`);
    }
    const i = this.count;
    if (i === this.capacity) return false;
    setU64(this.dv, i * IOVEC.SIZE + IOVEC.BASE, addrOf(buf) + offset);
    setU64(this.dv, i * IOVEC.SIZE + IOVEC.LEN, len);
    this.bufs[i] = buf;
    this.offsets[i] = offset;
    this.lens[i] = len;
    this.count = i + 1;
    this.bytes += len;
    return true;
  }

  /** Appends the iovecs of `other`; returns false, appending nothing, if they do not fit. */
  append(other: IovecList): boolean {
    const at = this.count, n = other.count;
    if (at + n > this.capacity) return false;
    this.iov.set(other.iov.subarray(0, n * IOVEC.SIZE), at * IOVEC.SIZE);
    for (let k = 0; k < n; k++) this.bufs[at + k] = other.bufs[k]!;
    this.offsets.set(other.offsets.subarray(0, n), at);
    this.lens.set(other.lens.subarray(0, n), at);
    this.count = at + n;
    this.bytes += other.bytes;
    return true;
  }

  /**
   * Copies the bytes the list points at, in order, into `dst` from `offset`
   * (slow paths: captures, tests); returns the bytes copied. Throws RangeError
   * if they do not fit.
   */
  copyTo(dst: Uint8Array, offset = 0): number {
    if (offset < 0 || offset + this.bytes > dst.byteLength) {
      throw new RangeError(`IovecList.copyTo: ${this.bytes} bytes do not fit at ${offset} of ${dst.byteLength}`);
    }
    let at = offset;
    for (let k = 0; k < this.count; k++) {
      const o = this.offsets[k]!, len = this.lens[k]!;
      dst.set(this.bufs[k]!.subarray(o, o + len), at);
      at += len;
    }
    return at - offset;
  }
}

/** Bytes of a UDP_SEGMENT control message: a cmsghdr and its u16, aligned. */
const SEGMENT_CMSG_SPACE = CMSG_SPACE(2);

/**
 * Messages for sendmmsg() on a connected UDP socket, built anew for each call:
 * each message gathers its bytes from one or more buffers (push()) and, if
 * end() is given a segment size, carries a UDP_SEGMENT control message, so
 * that the kernel sends it as datagrams of that many bytes, the last one
 * possibly shorter (generic segmentation offload, Linux 4.18+). Built once in
 * arena memory; nothing is allocated per message.
 * @example b.clear(); b.push(buf, 0, 2800); b.end(1400); sendmmsg(fd, b.hdrs, b.count, 0);
 */
export class UdpSendBatch {
  /** The mmsghdr array: pass it with `count`. */
  readonly hdrs: Uint8Array;
  private readonly dv: DataView;
  /** Every iovec of every message, in order. */
  readonly iovs: IovecList;
  private readonly cmsgs: Uint8Array;
  private readonly cmsgDv: DataView;
  /** Complete messages. */
  count = 0;
  /** First iovec of the message being built. */
  private first = 0;

  constructor(readonly maxMessages: number, maxIovecs: number) {
    this.hdrs = arena(maxMessages * MMSGHDR.SIZE, 8);
    this.dv = viewOf(this.hdrs);
    this.iovs = new IovecList(maxIovecs);
    this.cmsgs = arena(maxMessages * SEGMENT_CMSG_SPACE, 8);
    this.cmsgDv = viewOf(this.cmsgs);
    for (let m = 0; m < maxMessages; m++) {
      const c = m * SEGMENT_CMSG_SPACE;
      setU64(this.cmsgDv, c + CMSGHDR.LEN, CMSG_LEN(2));
      this.cmsgDv.setInt32(c + CMSGHDR.LEVEL, SOL_UDP, true);
      this.cmsgDv.setInt32(c + CMSGHDR.TYPE, UDP_SEGMENT, true);
    }
  }

  /** Empties the batch. */
  clear(): void {
    this.iovs.clear();
    this.count = 0;
    this.first = 0;
  }

  /** True if another message of up to `iovecs` iovecs fits. */
  fits(iovecs: number): boolean {
    return this.count < this.maxMessages && this.iovs.count + iovecs <= this.iovs.capacity;
  }

  /**
   * Adds `len` bytes of `buf` from `offset` to the message being built.
   * Throws RangeError when no iovec is left or the range is outside `buf`
   * (programmer errors: check fits() first).
   */
  push(buf: Uint8Array, offset: number, len: number): void {
    if (this.count === this.maxMessages || !this.iovs.push(buf, offset, len)) {
      throw new RangeError(`UdpSendBatch.push: full (${this.count} messages, ${this.iovs.count} iovecs)`);
    }
  }

  /**
   * Completes the message being built: sent as one datagram if `segmentSize`
   * is 0, else cut by the kernel into datagrams of `segmentSize` bytes.
   * Returns its index.
   */
  end(segmentSize = 0): number {
    const m = this.count;
    const off = m * MMSGHDR.SIZE;
    const dv = this.dv;
    setU64(dv, off + MSGHDR.NAME, 0);
    dv.setUint32(off + MSGHDR.NAMELEN, 0, true);
    setU64(dv, off + MSGHDR.IOV, addrOf(this.iovs.iov) + this.first * IOVEC.SIZE);
    setU64(dv, off + MSGHDR.IOVLEN, this.iovs.count - this.first);
    if (segmentSize > 0) {
      this.cmsgDv.setUint16(m * SEGMENT_CMSG_SPACE + CMSGHDR.DATA, segmentSize, true);
      setU64(dv, off + MSGHDR.CONTROL, addrOf(this.cmsgs) + m * SEGMENT_CMSG_SPACE);
      setU64(dv, off + MSGHDR.CONTROLLEN, SEGMENT_CMSG_SPACE);
    } else {
      setU64(dv, off + MSGHDR.CONTROL, 0);
      setU64(dv, off + MSGHDR.CONTROLLEN, 0);
    }
    dv.setInt32(off + MSGHDR.FLAGS, 0, true);
    this.count = m + 1;
    this.first = this.iovs.count;
    return m;
  }

  /** Returns the bytes of message `m` the kernel reported sent (msg_len). */
  sentLen(m: number): number {
    return this.dv.getUint32(m * MMSGHDR.SIZE + MMSGHDR.LEN, true);
  }
}
