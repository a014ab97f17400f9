// SPDX-License-Identifier: GPL-2.0-or-later
// udp_splice.ts - UDP between the host's and the namespace's loopback, socket to socket (passt udp.c "spliced" flows)
//
// Theory of operation
//
// pasta only. Datagrams between a loopback client and a loopback service on
// the other side need no frames: we receive a batch with recvmmsg() on one
// socket and send it with one sendmmsg() on another, both connected, so the
// kernel addresses every datagram for us.
//
// Listeners (one per port and loopback address), opened by fwd_auto.ts:
// - Pif.HOST: for -u rules that may be spliced (no listening or target
//   address, splicing on), bound to the host's 127.0.0.1 and ::1 next to the
//   wildcard listeners of udp.ts. All of them use SO_REUSEADDR, and the kernel
//   gives a datagram to the socket bound to its exact destination first: the
//   ones sent to 127.0.0.1 or ::1, that is from loopback clients, come here;
//   everything else goes to udp.ts and the tap.
// - Pif.SPLICE: every -U rule, sockets made inside the namespace (nsSocket)
//   on its 127.0.0.1 and ::1.
//
// A datagram from a new peer on a listener opens a flow with two sockets,
// each bound and connected:
//   side 0 (initiator): bound to the listener's address and port, connected
//     to the peer, on the listener's side; later datagrams of the peer arrive
//     here (a connected socket wins over the listener), and replies leave
//     from the port the peer sent to.
//   side 1 (target): on the other side, connected to the target: for host ->
//     namespace the namespace's external address (its loopback with
//     --host-lo-to-ns-lo), as TCP splicing does; for namespace -> host the
//     host's loopback address the client used. It binds the peer's source
//     port (UDP keeps it, as upstream), or any port if that is taken; for
//     namespace -> host also the peer's loopback address.
// What arrives on one side of a flow is sent on the other. Flows expire as
// udp.ts's do: UDP_TIMEOUT_MS after the last datagram if only one direction
// was seen, UDP_TIMEOUT_STREAM_MS once both were; a closed listener leaves
// its flows running until then.
//
// Flows live in a table of their own (UDP_SPLICE_FLOWS entries) rather than
// the shared flow table: nothing else looks them up, and udp.ts owns the
// expiry of FlowType.UDP. Epoll references: EpollType.UDP_SPLICE with index
// flow * 2 + side for flow sockets, LISTEN_BIT | listener for listeners.
//
// Limits: datagrams larger than DATAGRAM_MAX_BYTES are dropped (MSG_TRUNC).

import {
  bind, close, connect, recvmmsg, send, sendmmsg, setsockoptInt, socket, errnoName, Errno, MmsgBatch, MMSGHDR, arena,
  AF_INET, AF_INET6, EPOLLIN, IPPROTO_IPV6, IPPROTO_UDP, IPV6_V6ONLY, MSG_DONTWAIT, MSG_NOSIGNAL, MSG_TRUNC,
  SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SOL_SOCKET, SO_REUSEADDR, SOCKADDR_IN, SOCKADDR_IN6,
} from "../../syscalls/mod.ts";
import { type NsAgent, nsSocket } from "../../syscalls/ns.ts";
import type { Ctx } from "../ctx.ts";
import { Pif } from "../flow/table.ts";
import { writeSockaddrInany } from "../flow/sock.ts";
import { INANY_ANY4, INANY_ANY6, inanyFrom4, inanyFrom6, inanyIs4, inanyIsLoopback, inanyToString } from "../inany.ts";
import { log, rateLimited } from "../log.ts";
import { EpollType, type Loop } from "../loop/loop.ts";
import { UDP_TIMEOUT_MS, UDP_TIMEOUT_STREAM_MS } from "./udp.ts";

/** Spliced UDP flows at most (upstream shares its flow table; ours is separate). */
export const UDP_SPLICE_FLOWS = 16384;
/** Splice listeners at most: every port, two loopback addresses, both directions. */
export const UDP_SPLICE_LISTENERS = 1 << 18;
/** Datagrams per recvmmsg()/sendmmsg() call (upstream UDP_MAX_FRAMES). */
export const UDP_SPLICE_BATCH = 32;
/** Largest datagram carried: a whole UDP payload over IPv6 without jumbograms. */
export const DATAGRAM_MAX_BYTES = 65535;

/** Set in the epoll index of a listener. */
const LISTEN_BIT = 1 << 22;
/** How often flows are checked for expiry. */
const EXPIRY_SCAN_MS = 1000;

// Listeners -------------------------------------------------------------------------

const lisFd = new Int32Array(UDP_SPLICE_LISTENERS).fill(-1);
const lisPif = new Uint8Array(UDP_SPLICE_LISTENERS);
/** Bound address per listener, inany, 16 bytes each. */
const lisAddr = new Uint8Array(UDP_SPLICE_LISTENERS * 16);
const lisPort = new Uint16Array(UDP_SPLICE_LISTENERS);
const lisToPort = new Uint16Array(UDP_SPLICE_LISTENERS);
const lisFree: number[] = [];
let lisCount = 0;

// Flows -----------------------------------------------------------------------------

/** Socket per side (index: flow * 2 + side), -1 when the entry is free. */
const flowSock = new Int32Array(UDP_SPLICE_FLOWS * 2).fill(-1);
/** Time of the last datagram, ms on the performance.now() clock. */
const flowLastMs = new Float64Array(UDP_SPLICE_FLOWS);
/** Bit `side` set once a datagram arrived on that side. */
const flowSeen = new Uint8Array(UDP_SPLICE_FLOWS);
/** Lookup key of each flow (listener, peer address and port), for removal. */
const flowKey = new Array<string | null>(UDP_SPLICE_FLOWS).fill(null);
const byKey = new Map<string, number>();
const flowFree: number[] = [];
let flowCount = 0;
let active = 0;

// Buffers: one set of datagram buffers, viewed by two batches --------------------------

const bufs: Uint8Array[] = [];
for (let i = 0; i < UDP_SPLICE_BATCH; i++) bufs.push(arena(DATAGRAM_MAX_BYTES, 64));
/** For listeners: with the senders' addresses. */
const namedBatch = new MmsgBatch(bufs, true);
/** For connected flow sockets, both receiving and sending. */
const flowBatch = new MmsgBatch(bufs, false);

const SA = arena(SOCKADDR_IN6.SIZE, 8);
const peerAny = new Uint8Array(16);
const targetAny = new Uint8Array(16);
const bindAny = new Uint8Array(16);
const warnLimited = rateLimited("warn");

interface SpliceState {
  readonly ctx: Ctx;
  readonly loop: Loop;
  readonly agent: NsAgent;
}
let state: SpliceState | null = null;
let lastExpiryMs = 0;

/**
 * Starts UDP splicing for pasta: registers the UDP_SPLICE handler and the
 * expiry check in `loop`. From then on udpSpliceListen() may be called.
 */
export function udpSpliceInit(ctx: Ctx, loop: Loop, agent: NsAgent): void {
  const st: SpliceState = { ctx, loop, agent };
  state = st;
  loop.on(EpollType.UDP_SPLICE, (index, _events, fd) => {
    if (index & LISTEN_BIT) listenHandler(st, index & ~LISTEN_BIT, fd);
    else flowHandler(st, index >>> 1, index & 1, fd);
  });
  loop.onTurn(() => {
    const now = performance.now();
    if (now - lastExpiryMs < EXPIRY_SCAN_MS) return;
    lastExpiryMs = now;
    expire(st, now);
  });
}

/** Returns whether udpSpliceInit() ran (pasta with UDP). */
export function udpSpliceEnabled(): boolean {
  return state !== null;
}

/** Returns the number of spliced UDP flows open (tests, statistics). */
export function udpSpliceActive(): number {
  return active;
}

/**
 * Returns a new non-blocking UDP socket of the family of `addr` (inany),
 * on the host or (Pif.SPLICE) in the namespace, or -errno. IPv6 sockets are
 * IPV6_V6ONLY.  @syscalls socket setsockopt close
 */
function udpSocket(st: SpliceState, pif: number, addr: Uint8Array): number {
  const v4 = inanyIs4(addr);
  const family = v4 ? AF_INET : AF_INET6;
  const type = SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
  const s = pif === Pif.SPLICE ? nsSocket(st.agent, family, type, IPPROTO_UDP) : socket(family, type, IPPROTO_UDP);
  if (s < 0) return s;
  if (!v4 && setsockoptInt(s, IPPROTO_IPV6, IPV6_V6ONLY, 1) < 0) {
    close(s);
    return -Errno.EINVAL;
  }
  return s;
}

/**
 * Returns the id of a new listener on `addr` (inany, a loopback address)
 * port `port` on `pif` (Pif.HOST: our socket; Pif.SPLICE: in the namespace)
 * whose datagrams go to port `toPort` on the other side, or -errno.
 * @syscalls socket setsockopt bind epoll_ctl close
 */
export function udpSpliceListen(pif: number, addr: Uint8Array, port: number, toPort: number): number {
  const st = state;
  if (st === null) return -Errno.EINVAL;
  const s = udpSocket(st, pif, addr);
  if (s < 0) return s;
  setsockoptInt(s, SOL_SOCKET, SO_REUSEADDR, 1);
  const r = bind(s, SA, writeSockaddrInany(SA, addr, port));
  const id = r < 0 ? -1 : (lisFree.pop() ?? (lisCount < UDP_SPLICE_LISTENERS ? lisCount++ : -1));
  const e = r < 0 ? r : id < 0 ? -Errno.ENOSPC : st.loop.add(s, EPOLLIN, EpollType.UDP_SPLICE, LISTEN_BIT | id);
  if (e < 0) {
    close(s);
    if (id >= 0) lisFree.push(id);
    return e;
  }
  lisFd[id] = s;
  lisPif[id] = pif;
  lisAddr.set(addr.subarray(0, 16), id * 16);
  lisPort[id] = port;
  lisToPort[id] = toPort;
  return id;
}

/** Closes listener `id` of udpSpliceListen(); its flows run until they expire. @syscalls epoll_ctl close */
export function udpSpliceUnlisten(id: number): void {
  const st = state;
  const s = lisFd[id]!;
  if (st === null || s < 0) return;
  st.loop.del(s);
  close(s);
  lisFd[id] = -1;
  lisFree.push(id);
}

/** Reads the sender address of datagram `i` of namedBatch into peerAny; returns its port, or -1. */
function readPeer(i: number): number {
  const names = namedBatch.names;
  const off = i * 128;
  const family = names[off]! | (names[off + 1]! << 8);
  if (family === AF_INET) inanyFrom4(names.subarray(off + SOCKADDR_IN.ADDR, off + SOCKADDR_IN.ADDR + 4), peerAny);
  else if (family === AF_INET6) inanyFrom6(names.subarray(off + SOCKADDR_IN6.ADDR, off + SOCKADDR_IN6.ADDR + 16), peerAny);
  else return -1;
  return (names[off + 2]! << 8) | names[off + 3]!;
}

/**
 * Reads datagrams from listener `id`, opening flows for new peers, and
 * sends each on its flow's target socket. Never throws.  @syscalls recvmmsg sendto
 */
function listenHandler(st: SpliceState, id: number, fd: number): void {
  if (lisFd[id] !== fd) return;
  namedBatch.prepareRecv();
  const n = recvmmsg(fd, namedBatch.hdrs, UDP_SPLICE_BATCH, MSG_DONTWAIT);
  if (n <= 0) return;
  const now = performance.now();
  for (let i = 0; i < n; i++) {
    if (namedBatch.flags(i) & MSG_TRUNC) {
      st.ctx.stats.drop("udpSpliceTooBig");
      continue;
    }
    const peerPort = readPeer(i);
    if (peerPort < 0) continue;
    const key = `${id}|${inanyToString(peerAny)}|${peerPort}`;
    let f = byKey.get(key);
    if (f === undefined) {
      const created = openFlow(st, id, peerPort, key);
      if (created < 0) continue;
      f = created;
    }
    const r = send(flowSock[f * 2 + 1]!, bufs[i]!, namedBatch.msgLen(i), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r < 0 && r !== -Errno.EAGAIN) warnLimited(`UDP splice flow ${f}: send: ${errnoName(r)}`);
    flowLastMs[f] = now;
    flowSeen[f]! |= 1;
  }
}

/**
 * Returns a socket on `pif` of the family of `addr`, bound to addr:port
 * (or addr:any port if `port` is taken and `anyPort`), connected to
 * peer:peerPort; or -errno.  @syscalls socket setsockopt bind connect close
 */
function boundConnected(
  st: SpliceState, pif: number, addr: Uint8Array, port: number, anyPort: boolean, reuse: boolean,
  peer: Uint8Array, peerPort: number,
): number {
  const s = udpSocket(st, pif, addr);
  if (s < 0) return s;
  if (reuse) setsockoptInt(s, SOL_SOCKET, SO_REUSEADDR, 1);
  let r = bind(s, SA, writeSockaddrInany(SA, addr, port));
  if (r < 0 && anyPort && port !== 0) r = bind(s, SA, writeSockaddrInany(SA, addr, 0));
  if (r === 0) r = connect(s, SA, writeSockaddrInany(SA, peer, peerPort));
  if (r < 0) {
    close(s);
    return r;
  }
  return s;
}

/**
 * Returns a new flow for the peer in peerAny:peerPort of listener `id`, with
 * both sockets in the loop, or -1 (logged, rate-limited).
 * @syscalls socket setsockopt bind connect epoll_ctl close
 */
function openFlow(st: SpliceState, id: number, peerPort: number, key: string): number {
  const ctx = st.ctx;
  const pif = lisPif[id]!;
  const lisA = lisAddr.subarray(id * 16, id * 16 + 16);
  const toPort = lisToPort[id]!;
  if (!inanyIsLoopback(peerAny)) {
    st.ctx.stats.drop("udpSpliceNotLoopback");
    return -1;
  }
  const v4 = inanyIs4(peerAny);
  let otherPif: number;
  if (pif === Pif.SPLICE) {
    // Namespace -> host: the same loopback addresses, from the peer's.
    otherPif = Pif.HOST;
    targetAny.set(lisA);
    bindAny.set(peerAny);
  } else {
    otherPif = Pif.SPLICE;
    if (ctx.conf.hostLoToNsLo) targetAny.set(lisA);
    else if (v4 && ctx.ip4 !== null) inanyFrom4(ctx.ip4.addrSeen, targetAny);
    else if (!v4 && ctx.ip6 !== null) inanyFrom6(ctx.ip6.addrSeen, targetAny);
    else return -1;
    bindAny.set(v4 ? INANY_ANY4 : INANY_ANY6);
  }
  const f = flowFree.pop() ?? (flowCount < UDP_SPLICE_FLOWS ? flowCount++ : -1);
  if (f < 0) {
    warnLimited("UDP splice: too many flows");
    return -1;
  }
  const s0 = boundConnected(st, pif, lisA, lisPort[id]!, false, true, peerAny, peerPort);
  const s1 = s0 < 0 ? s0 : boundConnected(st, otherPif, bindAny, peerPort, true, false, targetAny, toPort);
  if (s0 < 0 || s1 < 0) {
    warnLimited(`UDP splice: socket for ${inanyToString(peerAny)}:${peerPort}: ${errnoName(s0 < 0 ? s0 : s1)}`);
    if (s0 >= 0) close(s0);
    flowFree.push(f);
    return -1;
  }
  flowSock[f * 2] = s0;
  flowSock[f * 2 + 1] = s1;
  if (st.loop.add(s0, EPOLLIN, EpollType.UDP_SPLICE, f * 2) < 0 ||
      st.loop.add(s1, EPOLLIN, EpollType.UDP_SPLICE, f * 2 + 1) < 0) {
    closeFlow(st, f);
    return -1;
  }
  flowKey[f] = key;
  byKey.set(key, f);
  flowSeen[f] = 0;
  flowLastMs[f] = performance.now();
  active++;
  if (log.debugEnabled) {
    log.debug(`UDP splice flow ${f}: ${inanyToString(peerAny)}:${peerPort} -> ${inanyToString(lisA)}:${lisPort[id]}` +
      ` => ${inanyToString(targetAny)}:${toPort}`);
  }
  return f;
}

/**
 * Moves a batch of datagrams from side `side` of flow `f` to the other side.
 * Never throws.  @syscalls recvmmsg sendmmsg
 */
function flowHandler(st: SpliceState, f: number, side: number, fd: number): void {
  if (flowSock[f * 2 + side] !== fd) return;
  flowBatch.prepareRecv();
  const n = recvmmsg(fd, flowBatch.hdrs, UDP_SPLICE_BATCH, MSG_DONTWAIT);
  if (n <= 0) {
    // An ICMP error (ECONNREFUSED: nobody on the target port) is consumed by reading it.
    if (n < 0 && n !== -Errno.EAGAIN && log.debugEnabled) log.debug(`UDP splice flow ${f}: recvmmsg: ${errnoName(n)}`);
    return;
  }
  flowLastMs[f] = performance.now();
  flowSeen[f]! |= 1 << side;
  let keep = 0;
  for (let i = 0; i < n; i++) {
    if (flowBatch.flags(i) & MSG_TRUNC) {
      st.ctx.stats.drop("udpSpliceTooBig");
      continue;
    }
    // Keep the batch contiguous for sendmmsg() when a datagram was dropped.
    if (keep !== i) bufs[keep]!.set(bufs[i]!.subarray(0, flowBatch.msgLen(i)));
    flowBatch.setLen(keep, flowBatch.msgLen(i));
    keep++;
  }
  const to = flowSock[f * 2 + 1 - side]!;
  let done = 0, retried = false;
  while (done < keep) {
    const hdrs = done === 0 ? flowBatch.hdrs : flowBatch.hdrs.subarray(done * MMSGHDR.SIZE);
    const r = sendmmsg(to, hdrs, keep - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r > 0) {
      done += r;
      continue;
    }
    if (r === -Errno.EINTR) continue;
    // A pending ICMP error fails one call and is cleared by it: retry once.
    if (r === -Errno.ECONNREFUSED && !retried) {
      retried = true;
      continue;
    }
    for (let i = done; i < keep; i++) st.ctx.stats.drop("udpSpliceSendFailed");
    if (r !== -Errno.EAGAIN) warnLimited(`UDP splice flow ${f}: sendmmsg: ${errnoName(r)}`);
    return;
  }
}

/** Closes both sockets of flow `f` and frees it.  @syscalls epoll_ctl close */
function closeFlow(st: SpliceState, f: number): void {
  for (let side = 0; side < 2; side++) {
    const s = flowSock[f * 2 + side]!;
    if (s < 0) continue;
    st.loop.del(s);
    close(s);
    flowSock[f * 2 + side] = -1;
  }
  const key = flowKey[f];
  if (key !== null && key !== undefined) {
    byKey.delete(key);
    flowKey[f] = null;
    active--;
  }
  flowFree.push(f);
}

/** Closes the flows idle for longer than their timeout. */
function expire(st: SpliceState, now: number): void {
  if (active === 0) return;
  for (let f = 0; f < flowCount; f++) {
    if (flowSock[f * 2]! < 0) continue;
    const timeout = flowSeen[f] === 3 ? UDP_TIMEOUT_STREAM_MS : UDP_TIMEOUT_MS;
    if (now - flowLastMs[f]! > timeout) {
      if (log.debugEnabled) log.debug(`UDP splice flow ${f}: expired`);
      closeFlow(st, f);
    }
  }
}

/** Closes every spliced UDP flow and listener (tests, shutdown). */
export function udpSpliceCloseAll(): void {
  const st = state;
  if (st === null) return;
  for (let f = 0; f < flowCount; f++) if (flowSock[f * 2]! >= 0) closeFlow(st, f);
  for (let id = 0; id < lisCount; id++) udpSpliceUnlisten(id);
}
