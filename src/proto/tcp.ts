// SPDX-License-Identifier: GPL-2.0-or-later
// tcp.ts - TCP L2-L4 translation between guest segments and host sockets
//
// Theory of operation
//
// Goal (passt tcp.c, REFERENCE.md section 3): the guest's TCP talks to host
// sockets without a TCP stack of ours and without per-connection buffers. The
// kernel socket holds every byte: data from the host stays in the socket's
// receive queue until the guest acknowledges it, data from the guest is only
// acknowledged once the socket took it.
//
// Host to guest: recvmsg(MSG_PEEK) with SO_PEEK_OFF (the kernel advances the
// peek offset, so each call returns bytes not sent yet) reads straight into
// the payload area of up to DATA_BATCH frame buffers in wasm memory, one
// MSS-sized iovec each; TCP, IP and Ethernet headers are then written in front
// and the checksum computed in place. We send from seqToTap up to the guest's
// window (seqAckFromTap + wnd << ws). A guest ACK discards the acknowledged
// bytes with recv(MSG_TRUNC) (the kernel moves the peek offset back by as
// much). Two duplicate ACKs, or the retransmission timer (RTO_INIT_MS, doubled
// per retry), rewind: seqToTap = seqAckFromTap and SO_PEEK_OFF = 0, so the
// next peek starts at the first unacknowledged byte. When a peek returns 0 the
// socket is at end of file with every byte sent: only then does the FIN go out
// (so data after a guest FIN goes out exactly once, then FIN). Without
// SO_PEEK_OFF (kernels before 6.10), already-sent bytes are peeked into a
// discard buffer in front of the frames (up to DISCARD_IOVS MiB).
//
// Guest to host: each in-sequence segment is written with send(); what the
// socket does not take is not acknowledged. In-sequence ACKs are sent once
// per batch of guest frames (tcpBatchEnd()), and only if they tell the guest
// something new; the ACK of a segment smaller than the guest's MSS waits up to
// DELACK_MS for data to the guest to carry it (see "Delayed ACKs"). The ACK number follows what the host peer acknowledged, as
// upstream does: seqAckBase + tcpi_bytes_acked (TCP_INFO, read once per batch
// while the ACK lags, never per segment), so the guest's TCP sees the real
// path's round trip and the data still queued in our socket as not yet
// delivered. While it lags behind seqFromTap (ACK_LAGS), the timer looks again
// every ACK_INTERVAL_MS. It is everything the socket took (seqFromTap) instead
// for local peers (loopback, our own address) and those with a tcpi_min_rtt
// under LOW_RTT_US (ACK_ALL: no TCP_INFO at all), for throughput-bound flows
// (throughputBound()), once either side sent its FIN, and for ACKs that
// answer a guest retransmission, probe or gap: a guest that retransmits
// learned all it could from waiting, and must not time out for data the
// socket has. ACKs never go backwards. The window we advertise
// is the room left in the socket's send buffer, less a margin for the
// kernel's overhead (updateWndToTap()), scaled by our shift (MAX_WS, 256x,
// when the guest scales): a guest that keeps to it never sends what we must
// drop. When the socket is nearly full, EPOLLOUT is armed, and its edge sends
// a window update; that also lets the kernel grow the buffer.
//
// If the socket takes less than a segment anyway, the rest, and whatever the
// guest sends after it in sequence, goes to the connection's spill buffer
// (allocated then, up to SPILL_MAX_BYTES, freed once written) and is not
// acknowledged; we advertise a zero window, and EPOLLOUT writes the spill,
// then reopens the window. The guest never has to retransmit for want of
// room here: without SACK that costs it one round trip per segment after the
// hole, or its retransmission timer. A FIN behind spilled data waits for it
// (FIN_PENDING). Out-of-sequence data (frames lost on the tap) is dropped and
// answered with an immediate duplicate ACK.
//
// Handshakes: a guest SYN creates the flow and a non-blocking socket and
// connect()s to the NATed destination (fwd.ts: the gateway reaches host
// loopback); on EPOLLOUT we answer SYN-ACK with our MSS (what the tap MTU
// allows, in whole pages: see synMss()), or RST if connect() failed, as
// upstream. A connection accepted on a -t listener (tcp_listen.ts) sends a SYN
// to the guest from the peer's address as natToTap() maps it; the guest's
// SYN-ACK establishes it.
//
// Events and flags are in tcp_conn.ts. Timers: one timerfd per connection
// (EpollType.TCP_TIMER, created when first needed), as upstream: it gives the
// retransmission timeout its exact value without scanning every connection,
// at the cost of one descriptor per connection. The timer runs, by priority:
// RTO while data, SYN or FIN is unacknowledged (handshake: up to SYN_RETRIES;
// data: up to MAX_RETRIES, then RST); FIN_TIMEOUT_MS once both FINs are done
// but the host peer has not closed; otherwise ACT_TIMEOUT_MS of inactivity,
// after which the connection is reset, and, while established, a keepalive
// KEEPALIVE_INTERVAL_MS after the last segment from the guest (then every
// KEEPALIVE_INTERVAL_MS): an ACK with seqToTap - 1, as a TCP keepalive probe
// is. A live guest answers with an ACK (PROBE_SENT keeps it from counting as
// a duplicate ACK, or as activity); a guest that lost the connection
// (rebooted, qemu restarted or migrated) answers with RST, and the host peer
// sees the connection reset instead of waiting for ACT_TIMEOUT_MS.
//
// Invariants: seqAckFromTap <= seqToTap (mod 2^32); the bytes between them
// are exactly the first (seqToTap - seqAckFromTap) bytes of the socket's
// receive queue (minus our FIN when TAP_FIN_SENT); the peek offset equals that
// difference. Nothing per segment allocates except the subarray views the
// checksum and TapSink.send() take.
//
// Limits: no SACK, timestamps or PAWS (options are ignored); urgent data is
// passed as normal data; guest data is written one segment per send() call.
// The spill buffer is the one place we hold data for a connection.

import {
  accept4, close, connect, getsockname, getsockopt, getsockoptInt, recv, recvmsg, send, setsockopt,
  setsockoptInt, shutdown, socket, bind, arena, viewOf, setU64, writeSockaddrIn, writeSockaddrIn6, addrOf,
  errnoName, Errno, IOVEC, MSGHDR, SOCKADDR_IN, SOCKADDR_IN6,
  AF_INET, AF_INET6, EPOLLERR, EPOLLET, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP, MSG_DONTWAIT, MSG_NOSIGNAL,
  MSG_PEEK, MSG_TRUNC, SHUT_WR, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM, SOL_SOCKET, SO_ERROR,
  SO_LINGER, SO_MEMINFO, SO_PEEK_OFF, SO_SNDBUF, SK_MEMINFO, ioctl, SIOCOUTQ, IPPROTO_TCP, TCP_INFO,
  TCP_INFO_LAYOUT as TI, getU64,
} from "../../syscalls/mod.ts";
import type { Ctx } from "../ctx.ts";
import { flows, FlowType, INISIDE, Pif, sidxFlow, sidxOf, TGTSIDE } from "../flow/table.ts";
import { guestDst, hostBindAddr, natFromTap, natToTap } from "../fwd.ts";
import { inanyEqual, inanyFrom, inanyFrom4, inanyFrom6, inanyIs4, inanyIsLoopback, inanyIsUnspecified } from "../inany.ts";
import { log } from "../log.ts";
import { EpollType, type Loop } from "../loop/loop.ts";
import { timerArm, timerCreate, timerRead } from "../loop/timer.ts";
import { allocFrame, ipv4Frame, ipv6Frame, L4_OFFSET4, L4_OFFSET6, type TapSink } from "../tap/frame.ts";
import { tapFrameMeta } from "../tap/input.ts";
import { setU16 } from "../wire/_bytes.ts";
import { fold, pseudoSum4, pseudoSum6 } from "../wire/checksum.ts";
import { IpProtocol, type Ipv4View } from "../wire/ipv4.ts";
import type { Ipv6View } from "../wire/ipv6.ts";
import { TcpFlag, TcpOptions, TcpView, type TcpFields } from "../wire/tcp.ts";
import {
  conns, tcpConnFromRef, tcpConnNewGen, tcpConnRef, tcpEventsName, seqAdd, seqDiff, tcpIsn, TcpConnFlag as F, TcpEvent as E,
} from "./tcp_conn.ts";
import { listeners, tcpListenClose, tcpListenInit } from "./tcp_listen.ts";
import { tcpSpliceAccept } from "./tcp_splice.ts";

export { conns, TcpConnFlag, TcpEvent, tcpEventsName } from "./tcp_conn.ts";

/** Initial retransmission timeout (RFC 6298: 1 s). */
export const RTO_INIT_MS = 1000;
/** Largest retransmission timeout after backing off. */
export const RTO_MAX_MS = 120_000;
/** Retransmissions of data or FIN before the connection is reset. */
export const MAX_RETRIES = 5;
/** Doublings of the window probe interval after RTO_INIT_MS (capped by RTO_MAX_MS). */
const PROBE_BACKOFF_MAX = 7;
/** Retransmissions of our SYN or SYN-ACK before the connection is reset. */
export const SYN_RETRIES = 6;
/** Time a connection may stay with both FINs done but the host socket open. */
export const FIN_TIMEOUT_MS = 60_000;
/** Inactivity after which a connection is reset (upstream ACT_TIMEOUT, 7200 s). */
export const ACT_TIMEOUT_MS = 7_200_000;
/** Silence from the guest after which an established connection sends it a keepalive (upstream KEEPALIVE_INTERVAL, 30 s). */
export const KEEPALIVE_INTERVAL_MS = 30_000;
/** Interval of the checks for the host peer's ACKs while our ACK to the guest lags behind them (upstream ACK_INTERVAL). */
export const ACK_INTERVAL_MS = 10;
/** A host peer with a tcpi_min_rtt below this is acked for at once, as a local one (upstream LOW_RTT_THRESHOLD). */
export const LOW_RTT_US = 10;
/** A flow whose send buffer holds at most this many bandwidth-delay products is throughput-bound (see throughputBound()). */
export const SNDBUF_BDP_RATIO = 20;
/** Duplicate ACKs from the guest that trigger a retransmission. */
export const DUP_ACK_THRESHOLD = 2;
/** Our window scale shift towards the guest: 256x, windows up to 16 MiB. */
export const MAX_WS = 8;
/** MSS assumed when the guest's SYN carries none (RFC 9293 3.7.1). */
export const MSS_DEFAULT = 536;
/** Frames filled by one recvmsg(MSG_PEEK). */
export const DATA_BATCH = 32;
/** Largest TCP payload of one IPv4 / IPv6 segment (65535-byte IP packet, 20-byte TCP header). */
const MAX_MSS4 = 65535 - 20 - 20;
const MAX_MSS6 = 65535 - 20;
const TCP_HLEN = 20;
/** Offset of the checksum in the TCP header. */
const TCP_CSUM_OFFSET = 16;
/** Page size: our MSS towards the guest is rounded down to a multiple of it. */
const PAGE_BYTES = 4096;
/**
 * Send buffer space we keep out of the window, on top of 1/32 of SO_SNDBUF: the
 * kernel charges each buffer it queues with its overhead (about 1.5% for the
 * 64 KiB ones a busy socket builds), so the guest's data takes a little more
 * of it than its length; what does not fit is dropped, and costs a retransmission.
 */
const SNDBUF_MARGIN_BYTES = 4096;
const PAYLOAD_OFFSET4 = L4_OFFSET4 + TCP_HLEN;
const PAYLOAD_OFFSET6 = L4_OFFSET6 + TCP_HLEN;
const DATA_FRAME_BYTES = PAYLOAD_OFFSET6 + MAX_MSS6;
/** Discard iovecs (1 MiB each) in front of the frames when SO_PEEK_OFF is missing. */
const DISCARD_IOVS = 16;
const DISCARD_BYTES = 1 << 20;
/** First size of a spill buffer (see spillAppend()), doubled as needed. */
const SPILL_MIN_BYTES = 64 << 10;
/** Largest spill buffer of one connection: 4 MiB, what Linux lets a send buffer grow to by default. */
export const SPILL_MAX_BYTES = 4 << 20;
/** Connections accepted per listener wakeup. */
const ACCEPT_BATCH = 32;

// Buffers, allocated once ------------------------------------------------------

const dataFrames: Uint8Array[] = [];
for (let k = 0; k < DATA_BATCH; k++) dataFrames.push(allocFrame(DATA_FRAME_BYTES));
const ctrlFrame = allocFrame(L4_OFFSET6 + TcpView.MAX_HEADER_LEN);
/** Length of the frame sendFlags() last built in ctrlFrame. */
let ctrlFrameLen = 0;
const discard = arena(DISCARD_BYTES, 64);

/**
 * iovec arrays, one per IP version: DISCARD_IOVS entries pointing at the
 * discard buffer, then one per data frame at its payload offset.
 */
function buildIov(payloadOffset: number): Uint8Array {
  const iov = arena((DISCARD_IOVS + DATA_BATCH) * IOVEC.SIZE, 8);
  const dv = viewOf(iov);
  for (let k = 0; k < DISCARD_IOVS; k++) {
    setU64(dv, k * IOVEC.SIZE + IOVEC.BASE, addrOf(discard));
    setU64(dv, k * IOVEC.SIZE + IOVEC.LEN, DISCARD_BYTES);
  }
  for (let k = 0; k < DATA_BATCH; k++) {
    const at = (DISCARD_IOVS + k) * IOVEC.SIZE;
    setU64(dv, at + IOVEC.BASE, addrOf(dataFrames[k]!) + payloadOffset);
    setU64(dv, at + IOVEC.LEN, 0);
  }
  return iov;
}
const iov4 = buildIov(PAYLOAD_OFFSET4);
const iov6 = buildIov(PAYLOAD_OFFSET6);
const iov4View = viewOf(iov4);
const iov6View = viewOf(iov6);
const msg = arena(MSGHDR.SIZE, 8);
const msgView = viewOf(msg);

const sa = arena(SOCKADDR_IN6.SIZE + 4, 8);
const saLen = arena(4, 4);
const saLenView = viewOf(saLen);
const lingerZero = arena(8, 4); // { l_onoff = 1, l_linger = 0 }
lingerZero[0] = 1;

// Scratch inany addresses and IP addresses for headers.
const aSrc = new Uint8Array(16);
const aDst = new Uint8Array(16);
const aHost = new Uint8Array(16);
const aOur = new Uint8Array(16);
const aBind = new Uint8Array(16);
const aTapSrc = new Uint8Array(16);
const aGuest = new Uint8Array(16);
const src4 = new Uint8Array(4);
const dst4 = new Uint8Array(4);
const src6 = new Uint8Array(16);
const dst6 = new Uint8Array(16);

const seg = new TcpView();
const opts = new TcpOptions();
const dataFields: TcpFields = { srcPort: 0, dstPort: 0, seqNumber: 0, ackNumber: 0, flags: 0, window: 0, payloadLength: 0 };
/** Header fields of data frames whose checksum the tap completes (offload): no addresses, so emit() leaves the checksum to us. */
const dataFieldsGso: TcpFields = { srcPort: 0, dstPort: 0, seqNumber: 0, ackNumber: 0, flags: 0, window: 0, payloadLength: 0 };
const synFields: TcpFields = { srcPort: 0, dstPort: 0, seqNumber: 0, ackNumber: 0, flags: 0, window: 0, mss: 0, windowScale: 0 };
const synFieldsNoWs: TcpFields = { srcPort: 0, dstPort: 0, seqNumber: 0, ackNumber: 0, flags: 0, window: 0, mss: 0 };

/** Connections with ACK_TO_TAP_DUE, sent by tcpBatchEnd(). */
const ackQueue = new Int32Array(flows.max);
let ackQueued = 0;

// Module state, set by tcpInit() -------------------------------------------------

let ctx: Ctx | null = null;
let loop: Loop | null = null;
let tap: TapSink | null = null;
/** The sink cuts large TCP frames into MSS-sized segments itself (TapSink.tso). */
let tso = false;
/** Whether the kernel supports SO_PEEK_OFF on TCP sockets (Linux 6.10+), probed by tcpInit(). */
let peekOffsetCap = true;
let activeConns = 0;
/** KEEPALIVE_INTERVAL_MS, shorter in tests (tcpSetKeepaliveInterval()). */
let keepaliveIntervalMs = KEEPALIVE_INTERVAL_MS;
/** Times a connection started spilling (see spill), for tests and statistics. */
let spillEvents = 0;

/**
 * Returns whether SO_PEEK_OFF works on a TCP socket of this kernel.
 * @syscalls socket setsockopt close
 */
function probePeekOffset(): boolean {
  const s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  const r = setsockoptInt(s, SOL_SOCKET, SO_PEEK_OFF, 0);
  close(s);
  return r === 0;
}

/**
 * Sets up TCP translation: registers the TCP, TCP_TIMER and TCP_LISTEN
 * handlers in `loopArg`, probes SO_PEEK_OFF, opens the -t listeners, and
 * returns how many listening sockets were opened. Calling it again (tests)
 * replaces the context, loop and sink; existing connections keep running.
 * @syscalls socket setsockopt bind listen epoll_ctl close
 */
export function tcpInit(ctxArg: Ctx, loopArg: Loop, tapArg: TapSink): number {
  ctx = ctxArg;
  loop = loopArg;
  tap = tapArg;
  tso = tapArg.tso === true;
  peekOffsetCap = probePeekOffset();
  log.debug(`TCP: SO_PEEK_OFF ${peekOffsetCap ? "supported" : "not supported, using a discard buffer"}`);
  loopArg.on(EpollType.TCP, tcpSockHandler);
  loopArg.on(EpollType.TCP_TIMER, tcpTimerHandler);
  loopArg.on(EpollType.TCP_DELACK, tcpDelackHandler);
  loopArg.on(EpollType.TCP_LISTEN, tcpListenHandler);
  return tcpListenInit(ctxArg, loopArg);
}

/** For tests: forces the path without SO_PEEK_OFF (discard buffer) on or off. Returns the previous setting. */
export function tcpSetPeekOffsetCap(cap: boolean): boolean {
  const prev = peekOffsetCap;
  peekOffsetCap = cap;
  return prev;
}

/** For tests: sets the keepalive interval (KEEPALIVE_INTERVAL_MS by default). Returns the previous one. */
export function tcpSetKeepaliveInterval(ms: number): number {
  const prev = keepaliveIntervalMs;
  keepaliveIntervalMs = ms;
  return prev;
}

/** Returns how many times guest data went to a spill buffer because the socket was full. */
export function tcpSpillEvents(): number {
  return spillEvents;
}

/** Returns the number of live TCP connections (tap side). */
export function tcpActive(): number {
  return activeConns;
}

/** Resets every connection (RST to the guest), closes the listeners. For shutdown and tests. */
export function tcpCloseAll(): void {
  for (let i = 0; i < conns.max && activeConns > 0; i++) if (conns.sock[i]! >= 0) tcpRst(i, "closing");
  if (loop !== null) tcpListenClose(loop);
}

// Helpers ---------------------------------------------------------------------------

function now(): number {
  return performance.now();
}

/**
 * Payload bytes of one data frame to the guest: the guest's MSS, or with TSO on the tap
 * as many whole MSS as a 64 KiB IP packet holds (the tap cuts them; see tap.ts).
 */
function frameBytes(i: number): number {
  const mss = conns.mssToTap[i]!;
  if (!tso) return mss;
  const max = conns.v6[i] === 1 ? MAX_MSS6 : MAX_MSS4;
  return mss >= max ? max : max - (max % mss);
}

/** Largest payload a segment to the guest may carry for the MTU and our frames. */
function mtuMss(v6: boolean): number {
  const mtu = ctx!.mtu > 0 ? ctx!.mtu : 65520;
  return Math.min(mtu - (v6 ? 60 : 40), v6 ? MAX_MSS6 : MAX_MSS4);
}

/** Returns the epoll events a connection in its current state waits for. */
function epollEvents(i: number): number {
  const ev = conns.events[i]!;
  if (ev & E.ESTABLISHED) return EPOLLIN | EPOLLRDHUP | EPOLLET | (conns.flags[i]! & (F.WND_CLOSED | F.SNDBUF_LOW) ? EPOLLOUT : 0);
  if (ev & E.TAP_SYN_RCVD && !(ev & E.TAP_SYN_ACK_SENT)) return EPOLLOUT | EPOLLRDHUP | EPOLLET;
  return EPOLLRDHUP | EPOLLET;
}

function epollUpdate(i: number): void {
  const r = loop!.mod(conns.sock[i]!, epollEvents(i), EpollType.TCP, tcpConnRef(i));
  if (log.traceEnabled) log.trace(`TCP: flow ${i}: epoll 0x${(epollEvents(i) >>> 0).toString(16)} -> ${r}`);
}

/** Copies the connection's tap-side addresses into the header scratch buffers. */
function loadAddrs(i: number): void {
  const base = i * 32;
  const a = conns.tapAddrs;
  if (conns.v6[i]) {
    for (let k = 0; k < 16; k++) {
      dst6[k] = a[base + k]!;
      src6[k] = a[base + 16 + k]!;
    }
  } else {
    for (let k = 0; k < 4; k++) {
      dst4[k] = a[base + 12 + k]!;
      src4[k] = a[base + 28 + k]!;
    }
  }
}

const meminfo = arena(SK_MEMINFO.SIZE, 4);
const meminfoView = viewOf(meminfo);
const outq = arena(4, 4);
const outqView = viewOf(outq);
const tcpInfoBuf = arena(TI.SIZE, 8);
const tcpInfoView = viewOf(tcpInfoBuf);

/**
 * Returns the window to advertise to the guest, unscaled, and stores it: the
 * bytes our socket takes now, SO_SNDBUF less what it holds (SO_MEMINFO; both
 * count buffer overhead, so this errs low by a few per cent), zero while
 * WND_CLOSED. Whatever the guest sends beyond it we cannot write, and the
 * guest has to send again, so this is the whole window: the host peer's
 * window (tcpi_snd_wnd) only decides how fast the socket drains.
 *
 * When the socket is not writable (free space under half of what is queued,
 * the kernel's own test), SNDBUF_LOW arms EPOLLOUT: its edge is our cue for a
 * window update, and epoll's poll of the full socket marks it out of space,
 * which is what lets the kernel grow the send buffer on the next ACK from the
 * peer (tcp_check_space()). Without it the buffer stays at its initial size,
 * 46 KB on an Ethernet path, and a window that small stalls the guest.
 * @syscalls getsockopt ioctl epoll_ctl
 */
function updateWndToTap(i: number): number {
  const ws = conns.wsToTap[i]!;
  let wnd = 0;
  if (!(conns.flags[i]! & F.WND_CLOSED)) {
    const s = conns.sock[i]!;
    let sndbuf: number, queued: number;
    if (getsockopt(s, SOL_SOCKET, SO_MEMINFO, meminfo) >= (SK_MEMINFO.WMEM_QUEUED + 1) * 4) {
      sndbuf = meminfoView.getUint32(SK_MEMINFO.SNDBUF * 4, true);
      queued = meminfoView.getUint32(SK_MEMINFO.WMEM_QUEUED * 4, true);
    } else {
      sndbuf = Math.max(getsockoptInt(s, SOL_SOCKET, SO_SNDBUF), 0);
      queued = ioctl(s, SIOCOUTQ, outq) < 0 ? 0 : outqView.getInt32(0, true);
    }
    conns.sndbuf[i] = sndbuf;
    const free = Math.max(sndbuf - queued, 0);
    // Never more than a quarter of the buffer: a writable socket has a third of it free
    // (see below), so the window only drops to zero with EPOLLOUT armed to reopen it.
    wnd = Math.max(free - Math.min((sndbuf >>> 5) + SNDBUF_MARGIN_BYTES, sndbuf >>> 2), 0);
    // sk_stream_is_writeable(), exactly: armed on anything else, EPOLLOUT would fire at once.
    if (free < queued >>> 1 && !(conns.flags[i]! & F.SNDBUF_LOW) && conns.events[i]! & E.ESTABLISHED) {
      conns.flags[i]! |= F.SNDBUF_LOW;
      epollUpdate(i);
    }
  }
  const unscaled = Math.min(wnd >>> ws, 0xffff);
  conns.wndToTap[i] = unscaled;
  return unscaled;
}

/**
 * Sends a segment without payload to the guest: `flags` (TcpFlag bits) with
 * seq = seqToTap and, with ACK, ack = seqFromTap: all the socket took. A SYN
 * carries our MSS `mss` and, if we scale, our window scale. Returns false if
 * the sink dropped it.
 */
function sendFlags(i: number, flags: number, mss = 0): boolean {
  let window = 0;
  // SYN windows are never scaled (RFC 7323 2.2).
  if (flags & TcpFlag.SYN) window = Math.min(updateWndToTap(i) << conns.wsToTap[i]!, 0xffff);
  else if (!(flags & TcpFlag.RST)) window = updateWndToTap(i);
  return emitFlags(i, flags, conns.seqFromTap[i]!, window, mss);
}

/**
 * Sends the guest an ACK that follows the host peer (ackToTapFollow()) if it
 * tells something new, a higher ACK number or another window, or if `force`.
 * @syscalls getsockopt ioctl
 */
function ackToTapIfNeeded(i: number, force: boolean): void {
  const ack = ackToTapFollow(i);
  const lastWnd = conns.wndToTap[i]!;
  const wnd = updateWndToTap(i);
  if (force || ack !== conns.seqAckToTap[i] || wnd !== lastWnd) emitFlags(i, TcpFlag.ACK, ack, wnd, 0);
}

/**
 * Sends a segment without payload: `flags`, seq = seqToTap, ack = `ack` (with
 * ACK, then stored in seqAckToTap), `window` as carried; a SYN carries `mss`
 * and our window scale, if we scale. Returns false if the sink dropped it.
 */
function emitFlags(i: number, flags: number, ack: number, window: number, mss: number): boolean {
  const v6 = conns.v6[i] === 1;
  loadAddrs(i);
  const f = flags & TcpFlag.SYN ? (conns.wsToTap[i]! > 0 ? synFields : synFieldsNoWs) : dataFields;
  f.srcPort = conns.peerPort[i]!;
  f.dstPort = conns.guestPort[i]!;
  f.seqNumber = conns.seqToTap[i]!;
  if (flags & TcpFlag.ACK) {
    conns.seqAckToTap[i] = ack;
    ackLagUpdate(i);
  }
  f.ackNumber = flags & TcpFlag.ACK ? ack : 0;
  f.flags = flags;
  f.window = window;
  if (flags & TcpFlag.SYN) {
    f.mss = mss;
    if (f === synFields) f.windowScale = conns.wsToTap[i]!;
  }
  if (f === dataFields) f.payloadLength = 0;
  f.src = v6 ? src6 : src4;
  f.dst = v6 ? dst6 : dst4;
  const l4off = v6 ? L4_OFFSET6 : L4_OFFSET4;
  const hlen = TcpView.emit(ctrlFrame, l4off, f);
  ctrlFrameLen = v6
    ? ipv6Frame(ctx!, ctrlFrame, src6, dst6, IpProtocol.TCP, hlen)
    : ipv4Frame(ctx!, ctrlFrame, src4, dst4, IpProtocol.TCP, hlen);
  return tap!.send(ctrlFrame.subarray(0, ctrlFrameLen));
}

/**
 * Marks an ACK as due for connection `i`, to go out at the end of the guest
 * batch: one that follows the host peer, if it tells the guest something new,
 * or, if `forced` (the guest sent nothing new), one of all the socket took.
 */
function queueAck(i: number, forced = false): void {
  if (forced) conns.flags[i]! |= F.ACK_FORCED;
  if (conns.flags[i]! & F.ACK_TO_TAP_DUE) return;
  conns.flags[i]! |= F.ACK_TO_TAP_DUE;
  ackQueue[ackQueued++] = i;
}

// ACKs that follow the host peer ------------------------------------------------

/** Returns the bytes of struct tcp_info the kernel wrote for socket `s` into tcpInfoBuf, or -errno. @syscalls getsockopt */
function tcpInfo(s: number): number {
  return getsockopt(s, IPPROTO_TCP, TCP_INFO, tcpInfoBuf);
}

/**
 * Sets ACK_ALL on connection `i`, just created, if `peer`, the host peer's
 * address, is loopback or `our`, our address on the socket: the host itself,
 * where ACKs come back at once.
 */
function ackModeLocal(i: number, peer: Uint8Array, our: Uint8Array): void {
  if (inanyIsLoopback(peer) || inanyEqual(peer, our)) conns.flags[i]! |= F.ACK_ALL;
}

/**
 * Measures seqAckBase of connection `i`, just established: seqFromTap less
 * what the host peer acknowledged so far (our SYN, on a socket we connected;
 * nothing on an accepted one). Sets ACK_ALL instead if the kernel reports no
 * tcpi_bytes_acked (before Linux 4.2), or the handshake's RTT was low.
 * @syscalls getsockopt
 */
function ackBaseInit(i: number): void {
  if (conns.flags[i]! & F.ACK_ALL) {
    if (log.debugEnabled) log.debug(`TCP: flow ${i}: local peer: ACKs to the guest cover all the socket takes`);
    return;
  }
  const n = tcpInfo(conns.sock[i]!);
  if (n < TI.BYTES_ACKED + 8 || (n >= TI.MIN_RTT + 4 && tcpInfoView.getUint32(TI.MIN_RTT, true) < LOW_RTT_US)) {
    conns.flags[i]! |= F.ACK_ALL;
    if (log.debugEnabled) log.debug(`TCP: flow ${i}: ${n < TI.BYTES_ACKED + 8 ? "no tcpi_bytes_acked" : "low RTT"}: ACKs to the guest cover all the socket takes`);
    return;
  }
  conns.seqAckBase[i] = seqAdd(conns.seqFromTap[i]!, -tcpInfoView.getUint32(TI.BYTES_ACKED, true));
}

/**
 * Returns whether the flow of connection `i` is throughput-bound, from the
 * `n` bytes of tcp_info in tcpInfoBuf: its send buffer holds at most
 * SNDBUF_BDP_RATIO bandwidth-delay products (tcpi_delivery_rate x tcpi_rtt,
 * or tcpi_snd_cwnd x tcpi_snd_mss before Linux 4.9). Such a buffer is a short
 * queue: holding the guest's ACKs back for it hides little, and costs
 * throughput, as the guest must keep the buffer full for the kernel to grow
 * it. Where it holds many more, acking all of it would hide from the guest a
 * queue of seconds: what its application thinks delivered, and its RTT.
 */
function throughputBound(i: number, n: number): boolean {
  const rate = n >= TI.DELIVERY_RATE + 8 ? getU64(tcpInfoView, TI.DELIVERY_RATE) : 0; // bytes/s
  const bdp = rate > 0
    ? (rate * tcpInfoView.getUint32(TI.RTT, true)) / 1e6
    : tcpInfoView.getUint32(TI.SND_CWND, true) * tcpInfoView.getUint32(TI.SND_MSS, true);
  return conns.sndbuf[i]! <= SNDBUF_BDP_RATIO * bdp;
}

/**
 * Returns the ACK number for the guest that follows the host peer: seqAckBase
 * + tcpi_bytes_acked, never beyond seqFromTap (what the socket took) nor below
 * the last ACK sent. It is seqFromTap, without a syscall, if the last ACK
 * covered it already, for ACK_ALL connections and once either side sent its
 * FIN; after reading TCP_INFO, if the peer's RTT turned out low (then ACK_ALL
 * from now on) or the flow is throughput-bound.
 * @syscalls getsockopt
 */
function ackToTapFollow(i: number): number {
  const all = conns.seqFromTap[i]!;
  const last = conns.seqAckToTap[i]!;
  if (last === all || conns.flags[i]! & F.ACK_ALL || conns.events[i]! & (E.TAP_FIN_RCVD | E.SOCK_FIN_RCVD)) return all;
  const n = tcpInfo(conns.sock[i]!);
  if (n < TI.BYTES_ACKED + 8) return all;
  if (n >= TI.MIN_RTT + 4 && tcpInfoView.getUint32(TI.MIN_RTT, true) < LOW_RTT_US) {
    conns.flags[i]! |= F.ACK_ALL;
    return all;
  }
  if (throughputBound(i, n)) return all;
  const acked = seqAdd(conns.seqAckBase[i]!, tcpInfoView.getUint32(TI.BYTES_ACKED, true));
  if (seqDiff(acked, all) >= 0) return all;
  return seqDiff(acked, last) > 0 ? acked : last;
}

/** Sets seqAckToTap of connection `i` for the segments about to go out: see ackToTapFollow(). */
function ackToTapSet(i: number): void {
  conns.flags[i]! &= ~F.ACK_DELAYED; // carried by the frame this is for
  conns.seqAckToTap[i] = ackToTapFollow(i);
  ackLagUpdate(i);
}

/**
 * Sets or clears ACK_LAGS after seqAckToTap changed; newly set, the timer
 * looks at the host peer's ACKs again in ACK_INTERVAL_MS.
 */
function ackLagUpdate(i: number): void {
  if (conns.seqAckToTap[i] === conns.seqFromTap[i]) {
    conns.flags[i]! &= ~F.ACK_LAGS;
    return;
  }
  if (conns.flags[i]! & F.ACK_LAGS) return;
  conns.flags[i]! |= F.ACK_LAGS;
  timerArmNext(i);
}

/**
 * Starts the wait of the connection's timer for what it waits for now (see
 * Theory of operation), and arms it. @syscalls timerfd_create timerfd_settime epoll_ctl
 */
function timerCtl(i: number): void {
  let fd = conns.timer[i]!;
  if (fd < 0) {
    fd = timerCreate(loop!, EpollType.TCP_TIMER, tcpConnRef(i));
    if (fd < 0) {
      log.debug(`TCP: flow ${i}: no timer: ${errnoName(fd)}`);
      return;
    }
    conns.timer[i] = fd;
  }
  const t = now();
  let ms: number;
  if (conns.flags[i]! & F.ACK_FROM_TAP_DUE) ms = Math.min(RTO_INIT_MS * 2 ** conns.retries[i]!, RTO_MAX_MS);
  else if (conns.has(i, E.SOCK_FIN_SENT | E.TAP_FIN_ACKED)) ms = FIN_TIMEOUT_MS;
  else {
    ms = ACT_TIMEOUT_MS - (t - conns.lastActivityMs[i]!);
    if (keepaliveOn(i)) ms = Math.min(ms, keepaliveIntervalMs - (t - conns.tapQuietSinceMs[i]!));
    ms = Math.max(ms, 1);
  }
  conns.timerAtMs[i] = t + ms;
  timerArmNext(i);
}

/**
 * Arms the connection's timer for the end of its current wait (timerAtMs) or,
 * if sooner, the next ACK_LAGS check. @syscalls timerfd_settime
 */
function timerArmNext(i: number): void {
  const fd = conns.timer[i]!;
  if (fd < 0) return timerCtl(i);
  const t = now();
  let at = conns.timerAtMs[i]!;
  if (conns.flags[i]! & F.ACK_LAGS) at = Math.min(at, t + ACK_INTERVAL_MS);
  // Set to fire no later than needed: leave it (one timerfd_settime() per timeout, not per ACK).
  const armed = conns.timerArmedAtMs[i]!;
  if (armed > t && armed <= at) return;
  conns.timerArmedAtMs[i] = at;
  timerArm(fd, Math.max(at - t, 0));
}

/**
 * Returns whether connection `i` keeps the guest side alive: established, and
 * not both FINs exchanged. A silent guest may be gone (rebooted, its qemu
 * restarted or migrated) with the connection: a keepalive then draws a RST,
 * which closes the host socket, and the host peer learns of it at once
 * instead of after ACT_TIMEOUT_MS.
 */
function keepaliveOn(i: number): boolean {
  const ev = conns.events[i]!;
  return (ev & E.ESTABLISHED) !== 0 && (ev & (E.TAP_FIN_RCVD | E.TAP_FIN_SENT)) !== (E.TAP_FIN_RCVD | E.TAP_FIN_SENT);
}

/** Sets ACK_FROM_TAP_DUE and starts the retransmission timer if it was not running. */
function ackFromTapDue(i: number): void {
  if (conns.flags[i]! & F.ACK_FROM_TAP_DUE) return;
  conns.flags[i]! |= F.ACK_FROM_TAP_DUE;
  timerCtl(i);
}

/** Returns 0 after setting the socket's peek offset (a no-op without SO_PEEK_OFF), or -errno. @syscalls setsockopt */
function setPeekOffset(i: number, offset: number): number {
  if (!peekOffsetCap) return 0;
  return setsockoptInt(conns.sock[i]!, SOL_SOCKET, SO_PEEK_OFF, offset);
}

/**
 * Closes connection `i`: its socket (with SO_LINGER 0 if `abort`, so the host
 * peer sees a reset) and timer, and frees its flow.
 * @syscalls setsockopt epoll_ctl close
 */
function tcpClose(i: number, abort: boolean): void {
  const s = conns.sock[i]!;
  if (s < 0) return;
  if (abort) setsockopt(s, SOL_SOCKET, SO_LINGER, lingerZero, 8);
  loop!.del(s);
  close(s);
  const t = conns.timer[i]!;
  if (t >= 0) {
    loop!.del(t);
    close(t);
  }
  conns.reset(i);
  spill[i] = null;
  flows.free(i);
  activeConns--;
}

/** Sends RST to the guest, resets the host side and frees connection `i`. */
function tcpRst(i: number, why: string): void {
  if (log.debugEnabled) log.debug(`TCP: flow ${i}: reset (${why})`);
  sendFlags(i, TcpFlag.RST | TcpFlag.ACK);
  tcpClose(i, true);
}

/** Closes connection `i` if both directions are finished. Returns whether it did. */
function maybeDone(i: number): boolean {
  if (!conns.has(i, E.TAP_FIN_ACKED | E.SOCK_FIN_SENT)) return false;
  tcpClose(i, false);
  return true;
}

// Host to guest -------------------------------------------------------------------

/**
 * Sends pending socket data to the guest, within its window, and the FIN once
 * the socket is at end of file with everything sent. Resets the connection on
 * a socket error. @syscalls recvmsg
 */
function dataFromSock(i: number): void {
  if (!(conns.events[i]! & E.ESTABLISHED) || conns.events[i]! & E.TAP_FIN_SENT) return;
  const s = conns.sock[i]!;
  const v6 = conns.v6[i] === 1;
  const iov = v6 ? iov6 : iov4;
  const iovView = v6 ? iov6View : iov4View;
  const mss = frameBytes(i);
  const wnd = conns.wndFromTap[i]! * 2 ** conns.wsFromTap[i]!;
  for (;;) {
    const inflight = seqDiff(conns.seqToTap[i]!, conns.seqAckFromTap[i]!);
    const sendable = Math.min(wnd - inflight, DATA_BATCH * mss);
    if (sendable <= 0) {
      conns.flags[i]! |= F.STALLED;
      // With a zero window only the guest's window update restarts us: if it is lost, we
      // would wait for ever. The timer probes (RFC 9293 3.8.6.1, tcpTimerHandler()).
      if (wnd === 0) ackFromTapDue(i);
      return;
    }
    conns.flags[i]! &= ~F.STALLED;
    const nfr = Math.ceil(sendable / mss);
    for (let k = 0; k < nfr; k++) {
      const len = k === nfr - 1 ? sendable - mss * (nfr - 1) : mss;
      iovView.setUint32((DISCARD_IOVS + k) * IOVEC.SIZE + IOVEC.LEN, len, true);
    }
    // Without SO_PEEK_OFF, the bytes already sent are peeked again into the discard buffer.
    let skip = 0;
    let first = DISCARD_IOVS;
    if (!peekOffsetCap && inflight > 0) {
      if (inflight > DISCARD_IOVS * DISCARD_BYTES) {
        conns.flags[i]! |= F.STALLED; // beyond what we can skip: wait for ACKs
        return;
      }
      const nd = Math.ceil(inflight / DISCARD_BYTES);
      first = DISCARD_IOVS - nd;
      for (let k = first; k < DISCARD_IOVS; k++) {
        const len = k === DISCARD_IOVS - 1 ? inflight - DISCARD_BYTES * (nd - 1) : DISCARD_BYTES;
        iovView.setUint32(k * IOVEC.SIZE + IOVEC.LEN, len, true);
      }
      skip = inflight;
    }
    setU64(msgView, MSGHDR.NAME, 0);
    msgView.setUint32(MSGHDR.NAMELEN, 0, true);
    setU64(msgView, MSGHDR.IOV, addrOf(iov) + first * IOVEC.SIZE);
    setU64(msgView, MSGHDR.IOVLEN, DISCARD_IOVS - first + nfr);
    setU64(msgView, MSGHDR.CONTROL, 0);
    setU64(msgView, MSGHDR.CONTROLLEN, 0);
    let n = recvmsg(s, msg, MSG_PEEK | MSG_DONTWAIT);
    if (n === -Errno.EAGAIN) return;
    if (n < 0) return tcpRst(i, `recvmsg: ${errnoName(n)}`);
    n -= skip;
    if (n < 0) return; // the queue shrank under us: cannot happen while we own it; wait
    if (n === 0) {
      conns.setEvent(i, E.SOCK_FIN_RCVD);
      sendFlags(i, TcpFlag.FIN | TcpFlag.ACK);
      conns.seqToTap[i] = seqAdd(conns.seqToTap[i]!, 1);
      conns.setEvent(i, E.TAP_FIN_SENT);
      ackFromTapDue(i);
      return;
    }
    sendDataFrames(i, n, v6);
    ackFromTapDue(i);
    // A short answer to the guest: its next request is likely to follow (see loop.ts).
    if (n < conns.mssToTap[i]!) loop!.pollSoon();
    // Drained: new data comes with EPOLLIN; the end of file comes with no event of its own.
    if (n < sendable && !(conns.flags[i]! & F.SOCK_RDHUP)) return;
  }
}

/** Puts headers in front of the `n` bytes just peeked into the data frames and sends them. */
function sendDataFrames(i: number, n: number, v6: boolean): void {
  loadAddrs(i);
  const mss = conns.mssToTap[i]!;
  const fsz = frameBytes(i);
  const f = dataFields;
  f.srcPort = conns.peerPort[i]!;
  f.dstPort = conns.guestPort[i]!;
  ackToTapSet(i);
  f.ackNumber = conns.seqAckToTap[i]!;
  f.window = updateWndToTap(i);
  f.src = v6 ? src6 : src4;
  f.dst = v6 ? dst6 : dst4;
  // With offload on the tap, every data frame leaves its checksum to the kernel, also one
  // that needs no cutting: the namespace's TCP then neither has us compute it nor checks it
  // (a CHECKSUM_PARTIAL packet delivered locally is trusted). Measured at MTU 65520, where no
  // frame is cut: 12% of our CPU in the JS checksum and 4.7% in the kernel's verification of
  // it. emit() leaves the field to the pseudo-header sum.
  const ff = tso ? dataFieldsGso : f;
  if (tso) {
    ff.srcPort = f.srcPort;
    ff.dstPort = f.dstPort;
    ff.ackNumber = f.ackNumber;
    ff.window = f.window;
  }
  const l4off = v6 ? L4_OFFSET6 : L4_OFFSET4;
  for (let off = 0, k = 0; off < n; k++) {
    const len = Math.min(fsz, n - off);
    const frame = dataFrames[k]!;
    ff.seqNumber = conns.seqToTap[i]!;
    ff.flags = off + len === n ? TcpFlag.ACK | TcpFlag.PSH : TcpFlag.ACK;
    ff.payloadLength = len;
    TcpView.emit(frame, l4off, ff);
    if (tso) {
      const pseudo = v6 ? pseudoSum6(src6, dst6, IpProtocol.TCP, TCP_HLEN + len) : pseudoSum4(src4, dst4, IpProtocol.TCP, TCP_HLEN + len);
      setU16(frame, l4off + TCP_CSUM_OFFSET, fold(pseudo));
    }
    const total = v6
      ? ipv6Frame(ctx!, frame, src6, dst6, IpProtocol.TCP, TCP_HLEN + len)
      : ipv4Frame(ctx!, frame, src4, dst4, IpProtocol.TCP, TCP_HLEN + len);
    tap!.send(frame.subarray(0, total), tso ? mss : 0);
    conns.seqToTap[i] = seqAdd(conns.seqToTap[i]!, len);
    off += len;
  }
  f.payloadLength = 0;
}

/** Goes back to the first byte the guest has not acknowledged and sends from there. */
function rewind(i: number): void {
  if (log.debugEnabled) log.debug(`TCP: flow ${i}: retransmitting from ${conns.seqAckFromTap[i]}`);
  conns.events[i]! &= ~E.TAP_FIN_SENT;
  conns.seqToTap[i] = conns.seqAckFromTap[i]!;
  conns.dupAcks[i] = 0;
  const r = setPeekOffset(i, 0);
  if (r < 0) return tcpRst(i, `SO_PEEK_OFF: ${errnoName(r)}`);
  dataFromSock(i);
}

// Guest ACKs ----------------------------------------------------------------------

/**
 * Applies an ACK from the guest: discards acknowledged bytes from the socket,
 * tracks our FIN, counts duplicates (DUP_ACK_THRESHOLD rewinds), takes the new
 * window, and sends more if the window allows. Returns false if the
 * connection was closed. @syscalls recvfrom
 */
function ackFromTap(i: number, ack: number, wnd: number, pure: boolean): boolean {
  const oldWnd = conns.wndFromTap[i]!;
  conns.wndFromTap[i] = wnd;
  const acked = seqDiff(ack, conns.seqAckFromTap[i]!);
  const inflight = seqDiff(conns.seqToTap[i]!, conns.seqAckFromTap[i]!);
  if (acked > 0 && acked <= inflight) {
    let dataAcked = acked;
    if (conns.events[i]! & E.TAP_FIN_SENT && ack === conns.seqToTap[i]) {
      dataAcked--;
      conns.setEvent(i, E.TAP_FIN_ACKED);
    }
    if (dataAcked > 0) {
      const n = recv(conns.sock[i]!, null, dataAcked, MSG_TRUNC | MSG_DONTWAIT);
      if (n < 0) {
        tcpRst(i, `recv(MSG_TRUNC): ${errnoName(n)}`);
        return false;
      }
    }
    conns.seqAckFromTap[i] = ack;
    conns.dupAcks[i] = 0;
    conns.retries[i] = 0;
    if (ack === conns.seqToTap[i]) conns.flags[i]! &= ~F.ACK_FROM_TAP_DUE;
    timerCtl(i);
    if (maybeDone(i)) return false;
  } else if (acked === 0 && pure && inflight > 0 && wnd === oldWnd && !(conns.flags[i]! & F.PROBE_SENT)) {
    if (++conns.dupAcks[i]! >= DUP_ACK_THRESHOLD) {
      rewind(i);
      return conns.sock[i]! >= 0;
    }
  }
  conns.flags[i]! &= ~F.PROBE_SENT; // this ACK answered any probe
  if (oldWnd === 0 && wnd > 0) conns.retries[i] = 0; // probes counted in it (windowProbe())
  // Only a connection that stopped for want of window has more to send now: one that
  // emptied its socket hears of new data from EPOLLIN (a peek here would find nothing).
  if (conns.flags[i]! & F.STALLED) dataFromSock(i);
  return conns.sock[i]! >= 0;
}

// Guest to host ---------------------------------------------------------------------

/**
 * Handles a segment of an established connection: its ACK, its data (written
 * to the socket as far as it takes it) and its FIN.
 * @syscalls sendto shutdown
 */
function dataFromTap(i: number): void {
  if (seg.syn) return; // a stray SYN on an established connection: ignore
  const hlen = seg.headerLength;
  const len = seg.bytes.byteLength - hlen;
  if (seg.ack && !ackFromTap(i, seg.ackNumber, seg.window, len === 0 && !seg.fin)) return;
  if (len === 0 && !seg.fin) {
    // A window probe (RFC 9293 3.8.6.1) sits just below what we expect: answer it.
    if (seg.seqNumber !== conns.seqFromTap[i]) queueAck(i, true);
    return;
  }
  if (conns.events[i]! & E.TAP_FIN_RCVD) {
    queueAck(i, true);
    return;
  }
  const seq = seg.seqNumber;
  const next = seqAdd(conns.seqFromTap[i]!, conns.spillLen[i]!); // next byte we expect
  const off = seqDiff(next, seq); // bytes of this segment we have already
  if (off < 0) {
    // A gap (frames lost on the tap): we keep no out-of-order data. A duplicate ACK at
    // once makes the guest retransmit.
    ctx!.stats.drop("tcpOutOfOrder");
    sendFlags(i, TcpFlag.ACK);
    return;
  }
  if (off < len) {
    const data = seg.bytes.subarray(hlen + off);
    let taken = 0;
    if (conns.spillLen[i] === 0) {
      const n = send(conns.sock[i]!, data, data.byteLength, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && n !== -Errno.EAGAIN) return tcpRst(i, `send: ${errnoName(n)}`);
      taken = Math.max(n, 0);
      conns.seqFromTap[i] = seqAdd(conns.seqFromTap[i]!, taken);
    }
    if (taken < data.byteLength) {
      if (conns.spillLen[i] === 0) {
        if (log.debugEnabled) log.debug(`TCP: flow ${i}: socket took ${taken} of ${data.byteLength} bytes (window ${conns.wndToTap[i]! << conns.wsToTap[i]!} sent), spilling`);
        spillEvents++;
        conns.flags[i]! |= F.WND_CLOSED;
        epollUpdate(i);
      }
      const kept = spillAppend(i, data.subarray(taken));
      if (taken + kept < data.byteLength) ctx!.stats.drop("tcpSpillFull");
    }
  }
  const fin = seg.fin && seqDiff(seqAdd(conns.seqFromTap[i]!, conns.spillLen[i]!), seqAdd(seq, len)) === 0;
  if (fin) {
    if (conns.spillLen[i]! > 0) conns.flags[i]! |= F.FIN_PENDING;
    else if (!finFromTap(i)) return;
  }
  queueAck(i, off >= len && !fin); // nothing new: a retransmission
}

/**
 * Takes the guest's FIN, all its data being written: shuts down the socket's
 * sending side. If the guest already acknowledged our FIN, nothing is left:
 * the FIN is acknowledged at once and the connection closed. Returns false if
 * the connection is gone. @syscalls shutdown
 */
function finFromTap(i: number): boolean {
  conns.seqFromTap[i] = seqAdd(conns.seqFromTap[i]!, 1);
  conns.setEvent(i, E.TAP_FIN_RCVD);
  const r = shutdown(conns.sock[i]!, SHUT_WR);
  if (r < 0 && r !== -Errno.ENOTCONN) {
    tcpRst(i, `shutdown: ${errnoName(r)}`);
    return false;
  }
  conns.setEvent(i, E.SOCK_FIN_SENT);
  if (conns.has(i, E.TAP_FIN_ACKED)) {
    sendFlags(i, TcpFlag.ACK);
    tcpClose(i, false);
    return false;
  }
  timerCtl(i);
  return true;
}

// Spill buffers (guest to host) ---------------------------------------------------

/**
 * Per connection: bytes the guest sent in sequence, inside the window we
 * advertised, that the socket would not take (spillLen of them, from
 * seqFromTap on), or null. The window keeps this rare (updateWndToTap()), so
 * the buffer is allocated when needed and freed once written. Without it the
 * guest would have to retransmit every segment after the hole, one per round
 * trip at best without SACK, and a Linux guest that sees more duplicate ACKs
 * than it has segments in flight stops fast-retransmitting on that
 * connection altogether: uploads stalled for seconds at a time.
 */
const spill: (Uint8Array | null)[] = new Array<Uint8Array | null>(flows.max).fill(null);

/**
 * Appends `bytes` to the spill of connection `i`, growing it up to
 * SPILL_MAX_BYTES, and returns how many bytes fit (the guest retransmits the
 * rest).
 */
function spillAppend(i: number, bytes: Uint8Array): number {
  const len = conns.spillLen[i]!;
  let buf = spill[i] ?? null;
  const need = len + bytes.byteLength;
  if (buf === null || need > buf.byteLength) {
    let cap = buf === null ? SPILL_MIN_BYTES : buf.byteLength;
    while (cap < need && cap < SPILL_MAX_BYTES) cap *= 2;
    cap = Math.min(cap, SPILL_MAX_BYTES);
    if (buf === null || cap > buf.byteLength) {
      const grown = new Uint8Array(cap);
      if (buf !== null) grown.set(buf.subarray(0, len));
      spill[i] = buf = grown;
    }
  }
  const n = Math.min(bytes.byteLength, buf.byteLength - len);
  buf.set(bytes.subarray(0, n), len);
  conns.spillLen[i] = len + n;
  return n;
}

/**
 * Writes what the spill of connection `i` holds to its socket, then, once it
 * is empty, a FIN that waited for it. Returns false if the connection is gone.
 * @syscalls sendto
 */
function spillFlush(i: number): boolean {
  const len = conns.spillLen[i]!;
  const buf = spill[i];
  if (len === 0 || !buf) return true;
  const n = send(conns.sock[i]!, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n < 0 && n !== -Errno.EAGAIN) {
    tcpRst(i, `send: ${errnoName(n)}`);
    return false;
  }
  const taken = Math.max(n, 0);
  conns.seqFromTap[i] = seqAdd(conns.seqFromTap[i]!, taken);
  if (taken < len) {
    buf.copyWithin(0, taken, len);
    conns.spillLen[i] = len - taken;
    return true;
  }
  conns.spillLen[i] = 0;
  spill[i] = null;
  if (conns.flags[i]! & F.FIN_PENDING) {
    conns.flags[i]! &= ~F.FIN_PENDING;
    return finFromTap(i);
  }
  return true;
}

/** Handles the guest's answer to our SYN (connection accepted on a listener). */
function synAckFromTap(i: number): void {
  if (!seg.syn || !seg.ack) return;
  if (seg.ackNumber !== conns.seqToTap[i]) return tcpRst(i, "SYN-ACK for another sequence");
  seg.readOptions(opts);
  if (opts.windowScale === null) conns.wsToTap[i] = 0;
  conns.wsFromTap[i] = opts.windowScale ?? 0;
  conns.mssToTap[i] = Math.min(opts.mss ?? MSS_DEFAULT, mtuMss(conns.v6[i] === 1));
  conns.seqInitFromTap[i] = seg.seqNumber;
  conns.seqFromTap[i] = seqAdd(seg.seqNumber, 1);
  conns.seqAckFromTap[i] = seg.ackNumber;
  conns.wndFromTap[i] = synWindow(seg.window, conns.wsFromTap[i]!);
  ackBaseInit(i);
  establish(i);
  sendFlags(i, TcpFlag.ACK);
  dataFromSock(i);
}

/**
 * Returns the window of a SYN or SYN-ACK from the guest in the units of the
 * later ones, which the guest scales by 2^`ws`: "The window field in a segment
 * where the SYN bit is set ... MUST NOT be scaled" (RFC 7323 2.2). Rounded
 * down, at least 1. Taking it as scaled let us send up to 2^ws times what the
 * guest could take, until its first ACK.
 */
function synWindow(window: number, ws: number): number {
  return Math.max(window >>> ws, 1);
}

/** Moves connection `i` to ESTABLISHED: stops the handshake timer, waits for socket data. */
function establish(i: number): void {
  conns.setEvent(i, E.ESTABLISHED);
  conns.flags[i]! &= ~F.ACK_FROM_TAP_DUE;
  conns.retries[i] = 0;
  setPeekOffset(i, 0); // enables peeking at an offset (the default, -1, is off)
  epollUpdate(i);
  timerCtl(i);
}

/**
 * Handles a guest SYN without a flow: creates the flow and socket and starts
 * connect(); answers RST at once if connect() fails synchronously.
 * @syscalls socket bind connect getsockname epoll_ctl close
 */
function connFromTap(v6: boolean): boolean {
  const c = ctx!;
  const sport = seg.srcPort, dport = seg.dstPort;
  if (!natFromTap(c, IpProtocol.TCP, aDst, dport, aHost)) return c.stats.drop("tcp: no destination");
  seg.readOptions(opts);
  const host4 = inanyIs4(aHost);
  const s = socket(host4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) return c.stats.drop("tcp: socket failed");
  if (hostBindAddr(c, aHost, aBind)) {
    const l = host4 ? writeSockaddrIn(sa, aBind.subarray(12), 0) : writeSockaddrIn6(sa, aBind, 0);
    bind(s, sa, l);
  }
  const salen = host4 ? writeSockaddrIn(sa, aHost.subarray(12), dport) : writeSockaddrIn6(sa, aHost, dport);
  const r = connect(s, sa, salen);
  if (r < 0 && r !== -Errno.EINPROGRESS) {
    close(s);
    rstNoConn(v6);
    return true;
  }
  const f = flows.alloc();
  if (f < 0) {
    close(s);
    return c.stats.drop("tcp: flow table full");
  }
  const nl = getsockname(s, sa);
  if (nl > 0) readSockaddr(aOur);
  else aOur.fill(0);
  const ourPort = nl > 0 ? (sa[2]! << 8) | sa[3]! : 0;
  flows.setSide(f, INISIDE, Pif.TAP, aSrc, sport, aDst, dport);
  flows.setSide(f, TGTSIDE, Pif.HOST, aHost, dport, aOur, ourPort);
  flows.setType(f, FlowType.TCP);
  flows.hashInsert(sidxOf(f, INISIDE));

  connInit(f, s, v6, aSrc, sport, aDst, dport);
  ackModeLocal(f, aHost, aOur);
  conns.seqInitFromTap[f] = seg.seqNumber;
  conns.seqFromTap[f] = seqAdd(seg.seqNumber, 1);
  conns.wsFromTap[f] = opts.windowScale ?? 0;
  conns.wndFromTap[f] = synWindow(seg.window, conns.wsFromTap[f]!);
  conns.wsToTap[f] = opts.windowScale === null ? 0 : MAX_WS;
  conns.mssToTap[f] = Math.min(opts.mss ?? MSS_DEFAULT, mtuMss(v6));
  const isn = tcpIsn(aSrc, 0, sport, aDst, 0, dport);
  conns.seqToTap[f] = isn;
  conns.seqAckFromTap[f] = isn;
  conns.lastActivityMs[f] = conns.tapQuietSinceMs[f] = now();
  conns.setEvent(f, E.TAP_SYN_RCVD);
  const er = loop!.add(s, epollEvents(f), EpollType.TCP, tcpConnRef(f));
  if (er < 0) {
    tcpRst(f, `epoll_ctl: ${errnoName(er)}`);
    return true;
  }
  flows.activate(f);
  return true;
}

/** Reads the address of the sockaddr in `sa` as an inany into `out`; returns its port. */
function readSockaddr(out: Uint8Array): number {
  const family = sa[0]! | (sa[1]! << 8);
  if (family === AF_INET) inanyFrom4(sa.subarray(SOCKADDR_IN.ADDR, SOCKADDR_IN.ADDR + 4), out);
  else inanyFrom6(sa.subarray(SOCKADDR_IN6.ADDR, SOCKADDR_IN6.ADDR + 16), out);
  return (sa[2]! << 8) | sa[3]!;
}

/**
 * Answers a guest segment that matches no connection with RST (RFC 9293
 * 3.10.7.1): seq = its ACK number if it has one, else seq 0 and ACK of
 * everything it carried.
 */
function rstNoConn(v6: boolean): void {
  const f = dataFields;
  f.srcPort = seg.dstPort;
  f.dstPort = seg.srcPort;
  if (seg.ack) {
    f.seqNumber = seg.ackNumber;
    f.ackNumber = 0;
    f.flags = TcpFlag.RST;
  } else {
    f.seqNumber = 0;
    f.ackNumber = seqAdd(seg.seqNumber, seg.sequenceLength);
    f.flags = TcpFlag.RST | TcpFlag.ACK;
  }
  f.window = 0;
  f.payloadLength = 0;
  if (v6) {
    src6.set(aDst);
    dst6.set(aSrc);
  } else {
    for (let k = 0; k < 4; k++) {
      src4[k] = aDst[12 + k]!;
      dst4[k] = aSrc[12 + k]!;
    }
  }
  f.src = v6 ? src6 : src4;
  f.dst = v6 ? dst6 : dst4;
  const hlen = TcpView.emit(ctrlFrame, v6 ? L4_OFFSET6 : L4_OFFSET4, f);
  const len = v6
    ? ipv6Frame(ctx!, ctrlFrame, src6, dst6, IpProtocol.TCP, hlen)
    : ipv4Frame(ctx!, ctrlFrame, src4, dst4, IpProtocol.TCP, hlen);
  tap!.send(ctrlFrame.subarray(0, len));
}

/** Dispatches a checked guest segment (addresses already in aSrc/aDst) to its connection. */
function tapSegment(v6: boolean): boolean {
  const sport = seg.srcPort, dport = seg.dstPort;
  const sidx = flows.lookup(IpProtocol.TCP, Pif.TAP, aSrc, sport, aDst, dport);
  if (sidx < 0) {
    if (seg.rst) return true;
    if (seg.syn && !seg.ack) return connFromTap(v6);
    rstNoConn(v6);
    return true;
  }
  const i = sidxFlow(sidx);
  if (conns.sock[i]! < 0) return ctx!.stats.drop("tcp: stale flow");
  const t = now();
  conns.tapQuietSinceMs[i] = t;
  // The guest's answer to a keepalive is no activity, or keepalives would keep idle
  // connections from ever timing out.
  const bare = seg.ack && !seg.syn && !seg.fin && !seg.rst && seg.bytes.byteLength === seg.headerLength;
  if (!bare || !(conns.flags[i]! & F.PROBE_SENT)) conns.lastActivityMs[i] = t;
  if (seg.rst) {
    if (log.debugEnabled) log.debug(`TCP: flow ${i}: RST from guest`);
    tcpClose(i, true);
    return true;
  }
  const ev = conns.events[i]!;
  if (ev & E.SOCK_ACCEPTED) {
    synAckFromTap(i);
    return true;
  }
  if (ev & E.TAP_SYN_RCVD) {
    if (!(ev & E.TAP_SYN_ACK_SENT)) return true; // still connecting: the guest's SYN retransmission waits
    if (seg.syn) {
      // Our SYN-ACK was lost: send it again.
      conns.seqToTap[i] = seqAdd(conns.seqToTap[i]!, -1);
      sendSynAck(i);
      return true;
    }
    if (!seg.ack || seg.ackNumber !== conns.seqToTap[i]) return true;
    conns.seqAckFromTap[i] = seg.ackNumber;
    conns.wndFromTap[i] = seg.window;
    establish(i);
  }
  dataFromTap(i);
  if (conns.sock[i]! >= 0 && conns.events[i]! & E.ESTABLISHED && (ev & E.ESTABLISHED) === 0) dataFromSock(i);
  return true;
}

/**
 * Starts the connection state of flow `f` for socket `s`: fresh fields and a new
 * generation, and the tap-side addresses (16-byte inany) and ports of both ends.
 */
function connInit(f: number, s: number, v6: boolean, guest: Uint8Array, guestPort: number, peer: Uint8Array, peerPort: number): void {
  conns.reset(f);
  tcpConnNewGen(f);
  activeConns++;
  conns.sock[f] = s;
  conns.v6[f] = v6 ? 1 : 0;
  conns.tapAddrs.set(guest, f * 32);
  conns.tapAddrs.set(peer, f * 32 + 16);
  conns.guestPort[f] = guestPort;
  conns.peerPort[f] = peerPort;
}

/** Sends SYN-ACK with our MSS; seqToTap counts the SYN afterwards. */
function sendSynAck(i: number): void {
  sendFlags(i, TcpFlag.SYN | TcpFlag.ACK, synMss(i));
  conns.seqToTap[i] = seqAdd(conns.seqToTap[i]!, 1);
}

/**
 * Handles one TCP segment from the guest over IPv4: `l4` is the TCP header
 * and payload. Returns false if it was dropped (bad checksum, impossible
 * header, no route; counted in ctx.stats), true if it was handled.
 */
export function tcp4(ip: Ipv4View, l4: Uint8Array): boolean {
  if (ctx === null) return false;
  if (seg.wrap(l4) === null) return ctx.stats.drop("tcp: malformed");
  const src = ip.srcAddr, dst = ip.dstAddr;
  if (!tapFrameMeta.l4ChecksumOk && !seg.verifyChecksum(src, dst)) return ctx.stats.drop("tcp: bad checksum");
  inanyFrom4(src, aSrc);
  inanyFrom4(dst, aDst);
  return tapSegment(false);
}

/** Handles one TCP segment from the guest over IPv6; see tcp4(). */
export function tcp6(ip: Ipv6View, l4: Uint8Array): boolean {
  if (ctx === null) return false;
  if (seg.wrap(l4) === null) return ctx.stats.drop("tcp: malformed");
  const src = ip.srcAddr, dst = ip.dstAddr;
  if (!tapFrameMeta.l4ChecksumOk && !seg.verifyChecksum(src, dst)) return ctx.stats.drop("tcp: bad checksum");
  inanyFrom6(src, aSrc);
  inanyFrom6(dst, aDst);
  return tapSegment(true);
}

/** Sends the ACKs queued while handling a batch of guest frames. Call once per batch. */
export function tcpBatchEnd(): void {
  for (let q = 0; q < ackQueued; q++) {
    const i = ackQueue[q]!;
    if (conns.sock[i]! < 0 || !(conns.flags[i]! & F.ACK_TO_TAP_DUE)) continue;
    const forced = conns.flags[i]! & F.ACK_FORCED;
    conns.flags[i]! &= ~(F.ACK_TO_TAP_DUE | F.ACK_FORCED);
    if (forced) sendFlags(i, TcpFlag.ACK);
    else if (ackDelayable(i)) ackDelay(i);
    else ackToTapIfNeeded(i, false);
  }
  ackQueued = 0;
}

// Delayed ACKs ---------------------------------------------------------------------
//
// A guest segment smaller than its MSS is usually a request whose answer follows
// within microseconds: an ACK sent at once is a frame, a write to the tap and work
// for the guest's TCP, and the answer's first frame would carry it anyway. So the
// ACK of such a segment waits, up to DELACK_MS, on one timer shared by every
// connection (as a TCP receiver's delayed ACK does, RFC 9293 3.8.6.3, much
// shorter); data sent to the guest meanwhile carries it (sendDataFrames()). Full
// segments, FINs, and ACKs that answer anything but new data go out at once.

/** Longest wait of a delayed ACK. */
export const DELACK_MS = 1;
const delackQueue = new Int32Array(flows.max);
let delackQueued = 0;
let delackFd = -1;
let delackArmed = false;

/** Returns whether the ACK due for `i` may wait for data to the guest. */
function ackDelayable(i: number): boolean {
  const pending = seqDiff(conns.seqFromTap[i]!, conns.seqAckToTap[i]!);
  return (
    pending > 0 && pending < conns.mssToTap[i]! && conns.events[i]! & E.ESTABLISHED &&
    !(conns.events[i]! & E.TAP_FIN_RCVD) && !(conns.flags[i]! & (F.WND_CLOSED | F.SNDBUF_LOW | F.ACK_LAGS))
  ) as boolean;
}

/** Queues the ACK of `i` for the delayed-ACK timer, arming it if it is idle. */
function ackDelay(i: number): void {
  if (conns.flags[i]! & F.ACK_DELAYED) return;
  if (delackFd < 0) {
    delackFd = timerCreate(loop!, EpollType.TCP_DELACK, 0);
    if (delackFd < 0) return ackToTapIfNeeded(i, false);
  }
  conns.flags[i]! |= F.ACK_DELAYED;
  delackQueue[delackQueued++] = i;
  loop!.pollSoon(); // the answer is likely on its way: see loop.ts
  if (!delackArmed) {
    delackArmed = true;
    timerArm(delackFd, DELACK_MS);
  }
}

/** The delayed-ACK timer: sends the ACKs that no data carried meanwhile. */
export function tcpDelackHandler(_ref: number, _events: number, fd: number): void {
  timerRead(fd);
  delackArmed = false;
  const n = delackQueued;
  delackQueued = 0;
  for (let q = 0; q < n; q++) {
    const i = delackQueue[q]!;
    if (!(conns.flags[i]! & F.ACK_DELAYED)) continue;
    conns.flags[i]! &= ~F.ACK_DELAYED;
    if (conns.sock[i]! >= 0) ackToTapIfNeeded(i, false);
  }
}

// Socket, timer and listener events -------------------------------------------------

/** Returns the pending socket error of connection `i` as -errno, 0 if none. @syscalls getsockopt */
function sockError(i: number): number {
  const e = getsockoptInt(conns.sock[i]!, SOL_SOCKET, SO_ERROR);
  return e > 0 ? -e : e;
}

/**
 * Handles EPOLLOUT after we closed or shrank the window for want of room in
 * the socket: writes the spill, if any, and once it is all written, sends a
 * window update. While some of it is left, the ACK of what was written keeps
 * the window closed, and the next EPOLLOUT goes on.
 */
function windowReopened(i: number): void {
  if (conns.spillLen[i]! > 0) {
    if (!spillFlush(i)) return;
    if (conns.spillLen[i]! > 0) {
      ackToTapIfNeeded(i, true);
      return;
    }
  }
  conns.flags[i]! &= ~(F.WND_CLOSED | F.SNDBUF_LOW);
  epollUpdate(i);
  ackToTapIfNeeded(i, true);
}

/** epoll handler for connection sockets (EpollType.TCP, index = tcpConnRef() of the flow). */
export function tcpSockHandler(ref: number, events: number, fd: number): void {
  const i = tcpConnFromRef(ref);
  if (i < 0 || conns.sock[i] !== fd) return; // stale event for a closed connection
  if (log.traceEnabled) log.trace(`TCP: flow ${i}: socket events 0x${events.toString(16)}, ${tcpEventsName(conns.events[i]!)}`);
  conns.lastActivityMs[i] = now();
  const ev = conns.events[i]!;
  if (ev & E.TAP_SYN_RCVD && !(ev & E.TAP_SYN_ACK_SENT)) {
    const err = sockError(i);
    if (err < 0 || events & (EPOLLERR | EPOLLHUP)) {
      if (log.debugEnabled) log.debug(`TCP: flow ${i}: connect failed: ${errnoName(err)}`);
      tcpRst(i, "connect failed");
      return;
    }
    if (!(events & EPOLLOUT)) return;
    ackBaseInit(i);
    sendSynAck(i);
    conns.setEvent(i, E.TAP_SYN_ACK_SENT);
    epollUpdate(i);
    ackFromTapDue(i);
    return;
  }
  if (events & EPOLLERR) {
    const err = sockError(i);
    tcpRst(i, `socket error ${errnoName(err)}`);
    return;
  }
  if (!(ev & E.ESTABLISHED)) {
    if (events & EPOLLHUP) tcpRst(i, "host peer closed before the guest answered");
    return;
  }
  if (events & EPOLLOUT && conns.flags[i]! & (F.WND_CLOSED | F.SNDBUF_LOW)) windowReopened(i);
  if (events & (EPOLLRDHUP | EPOLLHUP)) conns.flags[i]! |= F.SOCK_RDHUP;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) dataFromSock(i);
}

/**
 * Sends the guest a window probe or keepalive: an ACK whose sequence number
 * is one it has seen already (seqToTap - 1), which a receiver must answer
 * with an ACK carrying its window ("If an incoming segment is not acceptable,
 * an acknowledgment should be sent in reply", RFC 9293 3.10.7.4), and a guest
 * that lost the connection answers with RST. Unlike a probe with a byte of
 * data, it needs no data in the window. Sets PROBE_SENT: the answer is no
 * duplicate ACK.
 */
function windowProbe(i: number): void {
  conns.seqToTap[i] = seqAdd(conns.seqToTap[i]!, -1);
  sendFlags(i, TcpFlag.ACK);
  conns.seqToTap[i] = seqAdd(conns.seqToTap[i]!, 1);
  conns.flags[i]! |= F.PROBE_SENT;
}

/** epoll handler for connection timers (EpollType.TCP_TIMER, index = tcpConnRef() of the flow). @syscalls read */
export function tcpTimerHandler(ref: number, _events: number, fd: number): void {
  const i = tcpConnFromRef(ref);
  if (i < 0 || conns.timer[i] !== fd) return;
  timerRead(fd);
  conns.timerArmedAtMs[i] = 0;
  if (conns.sock[i]! < 0) return;
  if (conns.flags[i]! & F.ACK_LAGS) ackToTapIfNeeded(i, false);
  // Timers fire on time or late, never early; the millisecond allows for rounding.
  if (now() < conns.timerAtMs[i]! - 1) return timerArmNext(i); // only an ACK_LAGS check was due
  const ev = conns.events[i]!;
  if (conns.flags[i]! & F.ACK_FROM_TAP_DUE) {
    if (!(ev & E.ESTABLISHED)) {
      if (conns.retries[i]! >= SYN_RETRIES) return tcpRst(i, "handshake timed out");
      conns.retries[i]!++;
      conns.seqToTap[i] = seqAdd(conns.seqToTap[i]!, -1);
      if (ev & E.SOCK_ACCEPTED) {
        sendFlags(i, TcpFlag.SYN, synMss(i));
        conns.seqToTap[i] = seqAdd(conns.seqToTap[i]!, 1);
      } else sendSynAck(i);
      timerCtl(i);
      return;
    }
    if (conns.wndFromTap[i] === 0) {
      // A zero window is no failure: probe it for as long as the guest keeps it shut.
      windowProbe(i);
      if (conns.retries[i]! < PROBE_BACKOFF_MAX) conns.retries[i]!++;
      timerCtl(i);
      return;
    }
    if (conns.retries[i]! >= MAX_RETRIES) return tcpRst(i, "retransmissions exhausted");
    conns.retries[i]!++;
    rewind(i);
    if (conns.sock[i]! >= 0) timerCtl(i);
    return;
  }
  if (conns.has(i, E.SOCK_FIN_SENT | E.TAP_FIN_ACKED)) return tcpRst(i, "FIN timeout");
  const t = now();
  if (t - conns.lastActivityMs[i]! >= ACT_TIMEOUT_MS) return tcpRst(i, "inactivity");
  if (keepaliveOn(i) && t - conns.tapQuietSinceMs[i]! >= keepaliveIntervalMs - 1) {
    if (log.debugEnabled) log.debug(`TCP: flow ${i}: nothing from the guest for ${Math.round(t - conns.tapQuietSinceMs[i]!)} ms: keepalive`);
    windowProbe(i);
    conns.tapQuietSinceMs[i] = t;
  }
  timerCtl(i);
}

/**
 * Returns the MSS we advertise to the guest in a SYN or SYN-ACK for connection
 * `i`: what the tap MTU allows, rounded down to whole pages (as upstream).
 * Not the host socket's MSS: that is the path to the host peer (1448 bytes
 * over Ethernet), and mirroring it made the guest send 45 times as many
 * segments, each a tap frame we read, check and write one by one, and
 * bursts of small frames overflow the tap queue. We re-segment anyway.
 */
function synMss(i: number): number {
  const mss = mtuMss(conns.v6[i] === 1);
  return mss > PAGE_BYTES ? mss - (mss % PAGE_BYTES) : mss;
}

/**
 * epoll handler for -t listeners (EpollType.TCP_LISTEN, index = listener
 * slot): accepts pending connections and sends a SYN to the guest for each.
 * @syscalls accept4 getsockname setsockopt epoll_ctl close
 */
export function tcpListenHandler(slot: number, _events: number, fd: number): void {
  if (listeners.fd[slot] !== fd) return;
  for (let k = 0; k < ACCEPT_BATCH; k++) {
    saLenView.setUint32(0, SOCKADDR_IN6.SIZE, true);
    const s = accept4(fd, sa, saLen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (s < 0) return;
    if (tcpSpliceAccept(slot, s, sa)) continue; // loopback to loopback, or -T (pasta)
    connFromSock(slot, s);
  }
}

/** Creates the flow for socket `s` just accepted on listener `slot` (peer address in `sa`) and sends the SYN. */
function connFromSock(slot: number, s: number): void {
  const c = ctx!;
  const peerPort = readSockaddr(aSrc);
  if (!natToTap(c, aSrc, aTapSrc)) {
    close(s);
    return;
  }
  const toAddr = listeners.toAddr[slot];
  if (toAddr !== null && toAddr !== undefined) inanyFrom(toAddr, aGuest);
  else if (!guestDst(c, aTapSrc, aGuest)) {
    close(s);
    return;
  }
  if (inanyIs4(aGuest) !== inanyIs4(aTapSrc) || inanyIsUnspecified(aGuest)) {
    close(s);
    return;
  }
  const v6 = !inanyIs4(aGuest);
  const guestPort = listeners.toPort[slot]!;
  const ourPort = listeners.port[slot]!;
  const nl = getsockname(s, sa);
  if (nl > 0) readSockaddr(aOur);
  else aOur.fill(0);
  const f = flows.alloc();
  if (f < 0) {
    close(s);
    return;
  }
  flows.setSide(f, INISIDE, Pif.HOST, aSrc, peerPort, aOur, ourPort);
  flows.setSide(f, TGTSIDE, Pif.TAP, aGuest, guestPort, aTapSrc, peerPort);
  flows.setType(f, FlowType.TCP);
  flows.hashInsert(sidxOf(f, TGTSIDE));

  connInit(f, s, v6, aGuest, guestPort, aTapSrc, peerPort);
  ackModeLocal(f, aSrc, aOur);
  conns.wsToTap[f] = MAX_WS;
  const isn = tcpIsn(aGuest, 0, guestPort, aTapSrc, 0, peerPort);
  conns.seqToTap[f] = isn;
  conns.seqAckFromTap[f] = isn;
  conns.lastActivityMs[f] = now();
  conns.setEvent(f, E.SOCK_ACCEPTED);
  const er = loop!.add(s, epollEvents(f), EpollType.TCP, tcpConnRef(f));
  if (er < 0) {
    tcpClose(f, true);
    return;
  }
  flows.activate(f);
  sendFlags(f, TcpFlag.SYN, synMss(f));
  conns.seqToTap[f] = seqAdd(isn, 1);
  ackFromTapDue(f);
}
