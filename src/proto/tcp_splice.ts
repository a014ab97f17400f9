// SPDX-License-Identifier: GPL-2.0-or-later
// tcp_splice.ts - TCP between the host's and the namespace's loopback, socket to socket through pipes (passt tcp_splice.c)
//
// Theory of operation
//
// pasta only. A connection that starts and ends on a loopback needs no
// frames and no TCP translation: we hold one socket on each side and move
// the bytes with two splice() calls per direction, socket -> pipe -> socket,
// so they never enter our memory.
//
// - Host to namespace: a connection accepted on a -t listener (Pif.HOST)
//   from a loopback peer, unless --no-splice or the rule names a target
//   address. The second socket is made inside the namespace (nsSocket) and
//   connects to the namespace's own external address (the one it was last
//   seen using), so services that listen only on the namespace's loopback
//   are not exposed, as newest upstream does; with --host-lo-to-ns-lo, to
//   the loopback address the host client used. The kernel picks the source.
// - Namespace to host: a connection accepted on a -T listener (Pif.SPLICE,
//   inside the namespace on 127.0.0.1 or ::1). Both of its addresses must be
//   loopback; the host socket binds the peer's loopback address and connects
//   to the same loopback address the namespace client used.
//
// A connection is a flow of type TCP_SPLICE: INISIDE is the accepted socket
// (side 0), TGTSIDE the one we connect (side 1). Both are in the loop as
// EpollType.TCP_SPLICE with the side index (flow * 2 + side) as reference,
// edge-triggered: every handler reads until EAGAIN or until the pipe it
// fills cannot be drained, so no readiness is lost, and a socket that is
// half shut down (EPOLLHUP stays set) or whose pipe is full does not wake us
// again and again, as level-triggered events would. Each direction has its
// own pipe, taken from a pool of pre-opened ones at connect time.
//
// Who does the kernel's work: on loopback, the TCP transmit of a segment and
// its receive processing at the peer run in the context of whoever makes the
// segment go out. That is the writer when the receiver's window is open, and
// the receiver (its read opens the window, its ACK releases what waited)
// when it is not. So a direction moves:
// - Write side: TCP_NOTSENT_LOWAT (NOTSENT_LOWAT_BYTES) on both sockets. The
//   socket we write keeps at most about that much not yet sent; the rest
//   waits in the pipe and in the source socket, and we are woken (EPOLLOUT)
//   once less than half of it is left. Without it, a socket whose peer
//   application falls behind fills its send buffer (4 MiB) with unsent data,
//   and the peer application transmits all of it for us, at its own expense,
//   as it reads: measured with iperf3 through the -t port, the receiving
//   iperf3 then spent 0.34-0.42 CPU s/GB instead of 0.20-0.25, and being the
//   bottleneck, set the rate.
// - Read side: the pipe is emptied first, and the source is read only into
//   an empty pipe, so each read takes all the source holds, up to a pipe's
//   worth. Reading into a part-full pipe at every wakeup (as before) makes
//   many small reads, each opening the sender's window a little: the sending
//   application then transmits its own data as it writes, instead of our
//   read sending it out of its queue (measured: the sending iperf3 at 0.46-
//   0.64 s/GB instead of 0.24-0.34 when its segments are 32 KiB).
//
// Events of a connection (bits), and what they allow:
//   CONNECT         side 1 is connecting: wait for EPOLLOUT on it, ignore side 0.
//   ESTABLISHED     both sides connected: data may flow; side i is read
//                   (EPOLLIN | EPOLLRDHUP) unless FIN_SENT(!i) or OUT_WAIT(!i).
//   OUT_WAIT(i)     the pipe towards side i holds data side i did not take:
//                   wait for EPOLLOUT on side i, stop reading side !i.
//   FIN_RCVD(i)     read end of file on side i.
//   FIN_SENT(i)     shutdown(SHUT_WR) done on side i: only once FIN_RCVD(!i)
//                   and the pipe towards i is empty (half-close travels
//                   after the data).
// Both FIN_SENT: the connection is closed cleanly. EPOLLERR, a failed
// splice(), EPOLLHUP on a side we did not shut down, or a failed connect():
// reset, that is close both sockets with SO_LINGER 0 so each peer sees RST.
// Sockets and pipes are closed, and the flow freed, after the loop's batch
// (loop.onTurn), so no later event of the same batch meets a reused flow.
//
// Pipes: size probed at start as upstream does, from MAX_PIPE_SIZE_BYTES
// halving until PIPE_POOL_SIZE pipes of that size can be made (an
// unprivileged user is capped by /proc/sys/fs/pipe-max-size, 1 MiB by
// default). The pool is refilled after each batch. Pipes of a closed
// connection are closed, not reused: they may still hold data.
//
// Both sockets get TCP_NODELAY (we never build segments; the peers' own
// segmentation is kept) and TCP_QUICKACK. No timers: the kernel keeps both
// connections alive, and a peer that goes away resets or closes its side.
//
// Limits: a connection reads as long as both sides keep up, without a cap
// per wakeup (as upstream).

import {
  bind, close, connect, fcntl, getsockname, pipe2, setsockopt, setsockoptInt, shutdown, socket, splice, arena,
  errnoName, Errno, AF_INET, AF_INET6, EPOLLERR, EPOLLET, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP, F_GETPIPE_SZ, F_SETPIPE_SZ,
  O_CLOEXEC, O_NONBLOCK, SHUT_WR, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM, SOL_SOCKET, SOL_TCP, SO_LINGER,
  SPLICE_F_MORE, SPLICE_F_MOVE, SPLICE_F_NONBLOCK, TCP_NODELAY, TCP_NOTSENT_LOWAT, TCP_QUICKACK, SOCKADDR_IN, SOCKADDR_IN6,
} from "../../syscalls/mod.ts";
import { type NsAgent, nsSocket } from "../../syscalls/ns.ts";
import type { Ctx } from "../ctx.ts";
import { flows, FlowType, INISIDE, Pif, sidxOf, TGTSIDE } from "../flow/table.ts";
import { writeSockaddrInany } from "../flow/sock.ts";
import {
  INANY_ANY4, INANY_ANY6, inanyFrom4, inanyFrom6, inanyIs4, inanyIsLoopback, inanyToString,
} from "../inany.ts";
import { log, rateLimited } from "../log.ts";
import { EpollType, type Loop } from "../loop/loop.ts";
import { listeners } from "./tcp_listen.ts";

/** Largest pipe size tried (upstream MAX_PIPE_SIZE). */
export const MAX_PIPE_SIZE_BYTES = 8 * 1024 * 1024;
/** Pipes kept open for new connections (upstream TCP_SPLICE_PIPE_POOL_SIZE). */
export const PIPE_POOL_SIZE = 32;
/**
 * TCP_NOTSENT_LOWAT of both sockets: bytes a socket may hold not yet sent
 * before a write to it stops (see the theory of operation). 256 KiB and more
 * left the receiving application with most of the transmit work; 32 KiB
 * woke us more often for no gain.
 */
export const NOTSENT_LOWAT_BYTES = 65536;
/** A read shorter than this is a message, likely to be answered: the loop polls for it. */
const SMALL_MESSAGE_BYTES = 16384;

// Connection events (see the theory of operation) ------------------------------------

const CONNECT = 1 << 0;
const ESTABLISHED = 1 << 1;
/** OUT_WAIT(i) = OUT_WAIT_0 << i */
const OUT_WAIT_0 = 1 << 2;
/** FIN_RCVD(i) = FIN_RCVD_0 << i */
const FIN_RCVD_0 = 1 << 4;
/** FIN_SENT(i) = FIN_SENT_0 << i */
const FIN_SENT_0 = 1 << 6;
/** Being closed: no more events are handled; freed after the batch. */
const CLOSING = 1 << 8;

const EVENT_NAMES = ["CONNECT", "ESTABLISHED", "OUT_WAIT_0", "OUT_WAIT_1", "FIN_RCVD_0", "FIN_RCVD_1", "FIN_SENT_0", "FIN_SENT_1", "CLOSING"];

/** Returns the names of the event bits in `ev`, for logs. */
function eventsName(ev: number): string {
  return EVENT_NAMES.filter((_n, i) => ev & (1 << i)).join("|") || "none";
}

// Per-connection state, by flow index or side index ------------------------------------

/** Socket of each side (index: sidx), -1 when none. */
const sock = new Int32Array(flows.max * 2).fill(-1);
/** Read and write ends of the pipe carrying data FROM each side (index: sidx), -1 when none. */
const pipeR = new Int32Array(flows.max * 2).fill(-1);
const pipeW = new Int32Array(flows.max * 2).fill(-1);
/** Capacity in bytes of the pipe carrying data from each side (index: sidx). */
const pipeBytes = new Int32Array(flows.max * 2);
/** Bytes in the pipe from each side not yet written to the other (index: sidx). */
const pending = new Int32Array(flows.max * 2);
/** epoll mask last set for each side's socket (index: sidx). */
const mask = new Uint32Array(flows.max * 2);
/** Event bits per flow. */
const events = new Uint16Array(flows.max);

// Module state ----------------------------------------------------------------------

interface SpliceState {
  readonly ctx: Ctx;
  readonly loop: Loop;
  readonly agent: NsAgent;
  /** Size every pipe is set to (probed). */
  readonly pipeSize: number;
}

let state: SpliceState | null = null;
/** Pre-opened pipes: read end at 2k, write end at 2k + 1; -1 when taken. */
const pool = new Int32Array(PIPE_POOL_SIZE * 2).fill(-1);
/** Capacity in bytes of pool pipe k. */
const poolBytes = new Int32Array(PIPE_POOL_SIZE);
let poolTaken = 0;
/** Flows marked CLOSING in this batch, closed after it. */
const closing: number[] = [];
let active = 0;

const warnLimited = rateLimited("warn");
const pipeFds = new Int32Array(2);
const lingerZero = arena(8, 4);
new DataView(lingerZero.buffer, lingerZero.byteOffset, 8).setInt32(0, 1, true); // l_onoff = 1, l_linger = 0
const SA = arena(SOCKADDR_IN6.SIZE, 8);
const peerAny = new Uint8Array(16);
const localAny = new Uint8Array(16);
const targetAny = new Uint8Array(16);
const bindAny = new Uint8Array(16);

/**
 * Returns the largest pipe size, from MAX_PIPE_SIZE_BYTES halving, at which
 * PIPE_POOL_SIZE pipes can be made (upstream tcp_set_pipe_size()), or 0 if
 * F_SETPIPE_SZ fails even for one page: then pipes keep their default size.
 * @syscalls pipe2 fcntl close
 */
export function probePipeSize(): number {
  const fds: number[] = [];
  try {
    for (let size = MAX_PIPE_SIZE_BYTES; size >= 4096; size /= 2) {
      let ok = true;
      for (let i = 0; i < PIPE_POOL_SIZE && ok; i++) {
        if (pipe2(pipeFds, O_CLOEXEC) < 0) return size;
        fds.push(pipeFds[0]!, pipeFds[1]!);
        ok = fcntl(pipeFds[0]!, F_SETPIPE_SZ, size) >= 0;
      }
      for (const fd of fds) close(fd);
      fds.length = 0;
      if (ok) return size;
    }
    return 0;
  } finally {
    for (const fd of fds) close(fd);
  }
}

/**
 * Returns the capacity in bytes of a new non-blocking pipe, now in pipeFds,
 * set to the probed size if the kernel lets us, or -errno.
 * @syscalls pipe2 fcntl
 */
function newPipe(s: SpliceState): number {
  const r = pipe2(pipeFds, O_NONBLOCK | O_CLOEXEC);
  if (r < 0) return r;
  if (s.pipeSize > 0) {
    const set = fcntl(pipeFds[0]!, F_SETPIPE_SZ, s.pipeSize);
    if (set > 0) return set;
    if (log.traceEnabled) log.trace(`TCP splice: can't set a pipe to ${s.pipeSize} bytes`);
  }
  // Over the user's pipe-user-pages-soft, a new pipe has 2 buffers, not 16.
  return Math.max(fcntl(pipeFds[0]!, F_GETPIPE_SZ), 0);
}

/** Refills the pipe pool. @syscalls pipe2 fcntl */
function poolRefill(s: SpliceState): void {
  for (let k = 0; k < PIPE_POOL_SIZE && poolTaken > 0; k++) {
    if (pool[2 * k]! >= 0) continue;
    const bytes = newPipe(s);
    if (bytes < 0) return;
    poolBytes[k] = bytes;
    pool[2 * k] = pipeFds[0]!;
    pool[2 * k + 1] = pipeFds[1]!;
    poolTaken--;
  }
}

/** Gives side index `sidx` a pipe (from the pool, else a new one); returns false if none could be made. */
function takePipe(s: SpliceState, sidx: number): boolean {
  for (let k = 0; k < PIPE_POOL_SIZE; k++) {
    if (pool[2 * k]! < 0) continue;
    pipeR[sidx] = pool[2 * k]!;
    pipeW[sidx] = pool[2 * k + 1]!;
    pipeBytes[sidx] = poolBytes[k]!;
    pool[2 * k] = pool[2 * k + 1] = -1;
    poolTaken++;
    return true;
  }
  const r = newPipe(s);
  if (r < 0) {
    warnLimited(`TCP splice: can't create a pipe: ${errnoName(r)}`);
    return false;
  }
  pipeBytes[sidx] = r;
  pipeR[sidx] = pipeFds[0]!;
  pipeW[sidx] = pipeFds[1]!;
  return true;
}

/**
 * Starts splicing for pasta: probes the pipe size, fills the pipe pool and
 * registers the TCP_SPLICE handler and the after-batch cleanup in `loop`.
 * From then on tcpSpliceAccept() takes loopback connections. Returns the
 * pipe size chosen (0: the kernel default).
 * @syscalls pipe2 fcntl close
 */
export function tcpSpliceInit(ctx: Ctx, loop: Loop, agent: NsAgent): number {
  const pipeSize = probePipeSize();
  const s: SpliceState = { ctx, loop, agent, pipeSize };
  state = s;
  poolTaken = PIPE_POOL_SIZE;
  pool.fill(-1);
  poolRefill(s);
  log.debug(`TCP splice: pipe size ${pipeSize || "default"}`);
  loop.on(EpollType.TCP_SPLICE, (sidx, ev, fd) => sockHandler(s, sidx, ev, fd));
  loop.onTurn(() => {
    if (closing.length > 0) closeDeferred(s);
    if (poolTaken > 0) poolRefill(s);
  });
  return pipeSize;
}

/** Returns the number of spliced connections open (tests, statistics). */
export function tcpSpliceActive(): number {
  return active;
}

/** Reads the address in the sockaddr at `sa` into `out` (inany) and returns its port. */
function readSockaddrInany(sa: Uint8Array, out: Uint8Array): number {
  const family = sa[0]! | (sa[1]! << 8);
  if (family === AF_INET) inanyFrom4(sa.subarray(SOCKADDR_IN.ADDR, SOCKADDR_IN.ADDR + 4), out);
  else inanyFrom6(sa.subarray(SOCKADDR_IN6.ADDR, SOCKADDR_IN6.ADDR + 16), out);
  return (sa[2]! << 8) | sa[3]!;
}

/** Closes `s` with a reset (SO_LINGER 0). @syscalls setsockopt close */
function rstClose(s: number): void {
  setsockopt(s, SOL_SOCKET, SO_LINGER, lingerZero, 8);
  close(s);
}

/**
 * Takes over socket `s`, just accepted on TCP listener `slot` from the peer
 * in the sockaddr `peerSa`, if it is to be spliced: returns true when it did
 * (spliced, or refused and closed), false when the caller should carry it
 * through the tap. Always false before tcpSpliceInit() (passt, tests).
 * @syscalls getsockname socket setsockopt bind connect epoll_ctl close
 */
export function tcpSpliceAccept(slot: number, s: number, peerSa: Uint8Array): boolean {
  const st = state;
  if (st === null) return false;
  const conf = st.ctx.conf;
  const peerPort = readSockaddrInany(peerSa, peerAny);
  const fromNs = listeners.pif[slot] === Pif.SPLICE;
  if (!fromNs && (conf.noSplice || listeners.toAddr[slot] !== null || !inanyIsLoopback(peerAny))) {
    if (!conf.spliceOnly) return false;
    if (log.debugEnabled) log.debug(`TCP splice: --splice-only, refusing ${inanyToString(peerAny)}:${peerPort}`);
    rstClose(s);
    return true;
  }
  const nl = getsockname(s, SA);
  const localPort = nl > 0 ? readSockaddrInany(SA, localAny) : 0;
  if (nl <= 0) localAny.set(inanyIs4(peerAny) ? INANY_ANY4 : INANY_ANY6);
  const toPort = listeners.toPort[slot]!;

  if (fromNs) {
    // Namespace loopback to host loopback: same addresses on the other side.
    if (!inanyIsLoopback(peerAny) || !inanyIsLoopback(localAny)) {
      if (log.debugEnabled) log.debug(`TCP splice: non-loopback ${inanyToString(peerAny)} -> ${inanyToString(localAny)} from the namespace`);
      rstClose(s);
      return true;
    }
    targetAny.set(localAny);
    bindAny.set(peerAny);
    start(st, s, Pif.SPLICE, peerPort, localPort, Pif.HOST, toPort, true);
    return true;
  }

  // Host loopback to the namespace: its external address, or its loopback with --host-lo-to-ns-lo.
  const v4 = inanyIs4(peerAny);
  if (conf.hostLoToNsLo && inanyIsLoopback(localAny)) {
    targetAny.set(localAny);
  } else if (v4) {
    if (st.ctx.ip4 === null) return refuse(s);
    inanyFrom4(st.ctx.ip4.addrSeen, targetAny);
  } else {
    if (st.ctx.ip6 === null) return refuse(s);
    inanyFrom6(st.ctx.ip6.addrSeen, targetAny);
  }
  bindAny.set(v4 ? INANY_ANY4 : INANY_ANY6);
  start(st, s, Pif.HOST, peerPort, localPort, Pif.SPLICE, toPort, false);
  return true;
}

function refuse(s: number): true {
  rstClose(s);
  return true;
}

/**
 * Creates the flow for accepted socket `s0` (peerAny:peerPort -> localAny:localPort
 * on `iniPif`) and connects its other side to targetAny:toPort on `tgtPif`,
 * binding bindAny first if `bindFirst`. On failure `s0` is reset.
 * @syscalls socket setsockopt bind connect epoll_ctl close
 */
function start(
  st: SpliceState, s0: number, iniPif: number, peerPort: number, localPort: number,
  tgtPif: number, toPort: number, bindFirst: boolean,
): void {
  const f = flows.alloc();
  if (f < 0) {
    warnLimited("TCP splice: flow table full");
    rstClose(s0);
    return;
  }
  flows.setSide(f, INISIDE, iniPif, peerAny, peerPort, localAny, localPort);
  flows.setSide(f, TGTSIDE, tgtPif, targetAny, toPort, bindAny, 0);
  flows.setType(f, FlowType.TCP_SPLICE);
  const s0idx = sidxOf(f, INISIDE), s1idx = sidxOf(f, TGTSIDE);
  sock[s0idx] = s0;
  sock[s1idx] = -1;
  pipeR[s0idx] = pipeW[s0idx] = pipeR[s1idx] = pipeW[s1idx] = -1;
  pending[s0idx] = pending[s1idx] = 0;
  mask[s0idx] = mask[s1idx] = 0;
  events[f] = 0;
  active++;
  flows.activate(f);

  const family = inanyIs4(targetAny) ? AF_INET : AF_INET6;
  const type = SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
  const s1 = tgtPif === Pif.SPLICE ? nsSocket(st.agent, family, type, 0) : socket(family, type, 0);
  if (s1 < 0) {
    warnLimited(`TCP splice: socket: ${errnoName(s1)}`);
    return reset(st, f);
  }
  sock[s1idx] = s1;
  setsockoptInt(s0, SOL_TCP, TCP_NODELAY, 1);
  setsockoptInt(s1, SOL_TCP, TCP_NODELAY, 1);
  setsockoptInt(s0, SOL_TCP, TCP_QUICKACK, 1);
  setsockoptInt(s1, SOL_TCP, TCP_QUICKACK, 1);
  setsockoptInt(s0, SOL_TCP, TCP_NOTSENT_LOWAT, NOTSENT_LOWAT_BYTES);
  setsockoptInt(s1, SOL_TCP, TCP_NOTSENT_LOWAT, NOTSENT_LOWAT_BYTES);
  if (bindFirst) {
    const r = bind(s1, SA, writeSockaddrInany(SA, bindAny, 0));
    if (r < 0) {
      warnLimited(`TCP splice: bind ${inanyToString(bindAny)}: ${errnoName(r)}`);
      return reset(st, f);
    }
  }
  if (st.loop.add(s0, EPOLLET, EpollType.TCP_SPLICE, s0idx) < 0 ||
      st.loop.add(s1, EPOLLET, EpollType.TCP_SPLICE, s1idx) < 0) {
    return reset(st, f);
  }
  mask[s0idx] = mask[s1idx] = EPOLLET;
  if (log.debugEnabled) {
    log.debug(`TCP splice flow ${f}: ${inanyToString(peerAny)}:${peerPort} -> ${inanyToString(localAny)}:${localPort}` +
      ` => ${inanyToString(targetAny)}:${toPort}`);
  }
  setEvent(st, f, CONNECT);
  const r = connect(s1, SA, writeSockaddrInany(SA, targetAny, toPort));
  if (r === 0) {
    if (!connected(st, f)) reset(st, f);
  } else if (r !== -Errno.EINPROGRESS) {
    if (log.debugEnabled) log.debug(`TCP splice flow ${f}: connect: ${errnoName(r)}`);
    reset(st, f);
  }
}

/** Returns the epoll mask side `side` needs under events `ev`. */
function maskOf(ev: number, side: number): number {
  let e = 0;
  if (ev & ESTABLISHED) {
    if (!(ev & (FIN_SENT_0 << (1 - side)))) e = EPOLLIN | EPOLLRDHUP;
  } else if (side === 1 && ev & CONNECT) {
    e = EPOLLOUT;
  }
  if (ev & (OUT_WAIT_0 << side)) e |= EPOLLOUT;
  if (ev & (OUT_WAIT_0 << (1 - side))) e &= ~(EPOLLIN | EPOLLRDHUP);
  return (e | EPOLLET) >>> 0;
}

/** Brings the epoll masks of flow `f` in line with its events; false if epoll_ctl failed. @syscalls epoll_ctl */
function updateMasks(st: SpliceState, f: number): boolean {
  const ev = events[f]!;
  for (let side = 0; side < 2; side++) {
    const sidx = 2 * f + side;
    const m = maskOf(ev, side);
    if (m === mask[sidx] || sock[sidx]! < 0) continue;
    if (st.loop.mod(sock[sidx]!, m, EpollType.TCP_SPLICE, sidx) < 0) return false;
    mask[sidx] = m;
  }
  return true;
}

/** Sets event bits `bits` of flow `f` and updates its epoll masks (reset on failure). */
function setEvent(st: SpliceState, f: number, bits: number): void {
  if ((events[f]! & bits) === bits) return;
  events[f]! |= bits;
  if (log.traceEnabled) log.trace(`TCP splice flow ${f}: ${eventsName(events[f]!)}`);
  if (!updateMasks(st, f)) reset(st, f);
}

/** Clears event bits `bits` of flow `f` and updates its epoll masks (reset on failure). */
function clearEvent(st: SpliceState, f: number, bits: number): void {
  if ((events[f]! & bits) === 0) return;
  events[f]! &= ~bits;
  if (!updateMasks(st, f)) reset(st, f);
}

/** Finishes the connect of side 1: pipes for both directions, ESTABLISHED; false on failure. */
function connected(st: SpliceState, f: number): boolean {
  for (let side = 0; side < 2; side++) {
    if (pipeR[2 * f + side]! < 0 && !takePipe(st, 2 * f + side)) return false;
  }
  setEvent(st, f, ESTABLISHED);
  if (events[f]! & CLOSING) return false;
  // Edge-triggered: what arrived before we were ready must be read now.
  if (forward(st, f, 0, false) < 0 || forward(st, f, 1, false) < 0) return false;
  return true;
}

/** Largest page size of the architectures Bun runs on (x86-64: always 4 KiB; arm64: up to 64 KiB). */
const PAGE_BYTES_MAX = process.arch === "x64" ? 4096 : 65536;

/**
 * Moves data from side `from` of flow `f` to the other side: what the pipe
 * holds first, then, each time the pipe is empty, one read of up to a pipe's
 * worth from the source, until the source has nothing more (EAGAIN) or the
 * destination takes no more (EAGAIN: OUT_WAIT). Then sends FIN onwards once
 * the source ended and its pipe is empty. Returns 0, or -1 if the flow must
 * be reset (a splice or shutdown failed).
 *
 * `edgeIn`: called for an EPOLLIN edge without EPOLLRDHUP. Then a read
 * shorter than the pipe's number of buffers (each holds at least one byte)
 * cannot have been cut short by a full pipe: it took all the socket held, and
 * once it is written we stop without the read that would return EAGAIN (one
 * syscall in four for request-response traffic). Data arriving later raises
 * a new edge. With EPOLLRDHUP, a FIN may wait behind the data: read to the end.
 * @syscalls splice shutdown
 */
function forward(st: SpliceState, f: number, from: number, edgeIn: boolean): number {
  const src = 2 * f + from, dst = 2 * f + 1 - from;
  const sFrom = sock[src]!, sTo = sock[dst]!, pr = pipeR[src]!, pw = pipeW[src]!;
  const size = pipeBytes[src]! > 0 ? pipeBytes[src]! : 65536;
  const fewBytes = edgeIn ? size / PAGE_BYTES_MAX : 0;
  let more = 0, lastRead = fewBytes;
  for (;;) {
    if (pending[src]! > 0) {
      let written: number;
      do written = splice(pr, sTo, size, SPLICE_F_MOVE | SPLICE_F_NONBLOCK | more);
      while (written === -Errno.EINTR);
      // 0: the pipe is empty after all (it cannot be, pending says otherwise); do not spin on it.
      if (written === -Errno.EAGAIN || written === 0) break;
      if (written < 0) {
        if (log.debugEnabled) log.debug(`TCP splice flow ${f}: splice to side ${1 - from}: ${errnoName(written)}`);
        return -1;
      }
      pending[src]! -= written;
      if (pending[src] === 0 && lastRead < fewBytes) break;
      // After a short write, the next one tells whether the socket is full.
      continue;
    }
    if (events[f]! & (FIN_RCVD_0 << from)) break;
    let readlen: number;
    do readlen = splice(sFrom, pw, size, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (readlen === -Errno.EINTR);
    if (readlen === -Errno.EAGAIN) break;
    if (readlen < 0) {
      if (log.debugEnabled) log.debug(`TCP splice flow ${f}: splice from side ${from}: ${errnoName(readlen)}`);
      return -1;
    }
    if (readlen === 0) {
      events[f]! |= FIN_RCVD_0 << from;
      break;
    }
    pending[src]! += readlen;
    lastRead = readlen;
    // A short message: its answer is likely to follow (see loop.ts).
    if (readlen < SMALL_MESSAGE_BYTES) st.loop.pollSoon();
    // A nearly full pipe: more is likely queued behind it (upstream's 90%).
    more = readlen >= size * 0.9 ? SPLICE_F_MORE : 0;
  }
  const toSide = 1 - from;
  if (pending[src]! > 0) setEvent(st, f, OUT_WAIT_0 << toSide);
  else clearEvent(st, f, OUT_WAIT_0 << toSide);
  const ev = events[f]!;
  if (ev & CLOSING) return 0;
  if (ev & (FIN_RCVD_0 << from) && !(ev & (FIN_SENT_0 << toSide)) && pending[src] === 0) {
    const r = shutdown(sTo, SHUT_WR);
    if (r < 0 && r !== -Errno.ENOTCONN) {
      if (log.debugEnabled) log.debug(`TCP splice flow ${f}: shutdown side ${toSide}: ${errnoName(r)}`);
      return -1;
    }
    setEvent(st, f, FIN_SENT_0 << toSide);
  }
  return 0;
}

/**
 * epoll handler for spliced sockets (EpollType.TCP_SPLICE, index = side
 * index). Never throws.
 */
function sockHandler(st: SpliceState, sidx: number, ev: number, fd: number): void {
  const f = sidx >>> 1, side = sidx & 1;
  if (flows.type[f] !== FlowType.TCP_SPLICE || sock[sidx] !== fd) return;
  if (events[f]! & CLOSING) return;
  if (ev & EPOLLERR) {
    if (log.debugEnabled) log.debug(`TCP splice flow ${f}: error on side ${side}`);
    return reset(st, f);
  }
  if (!(events[f]! & ESTABLISHED)) {
    // Only side 1 is polled (for EPOLLOUT) while connecting.
    if (side !== 1 || !(ev & EPOLLOUT)) return reset(st, f);
    if (!connected(st, f)) return reset(st, f);
  } else {
    if (ev & EPOLLOUT && forward(st, f, 1 - side, false) < 0) return reset(st, f);
    if (ev & (EPOLLIN | EPOLLRDHUP) && forward(st, f, side, (ev & (EPOLLIN | EPOLLRDHUP)) === EPOLLIN) < 0) return reset(st, f);
  }
  const e = events[f]!;
  if (e & CLOSING) return;
  if ((e & (FIN_SENT_0 | (FIN_SENT_0 << 1))) === (FIN_SENT_0 | (FIN_SENT_0 << 1))) return closeFlow(st, f, false);
  // A hang-up we did not cause by shutting this side down: the peer reset.
  if (ev & EPOLLHUP && !(e & (FIN_SENT_0 << side))) {
    if (log.debugEnabled) log.debug(`TCP splice flow ${f}: hang-up on side ${side}`);
    reset(st, f);
  }
}

/** Resets flow `f`: both peers see RST. */
function reset(st: SpliceState, f: number): void {
  closeFlow(st, f, true);
}

/**
 * Marks flow `f` CLOSING and takes its sockets out of the loop; they are
 * closed (with SO_LINGER 0 if `abort`) after the batch.
 * @syscalls epoll_ctl setsockopt
 */
function closeFlow(st: SpliceState, f: number, abort: boolean): void {
  if (events[f]! & CLOSING) return;
  if (log.debugEnabled) log.debug(`TCP splice flow ${f}: ${abort ? "reset" : "closed"} (${eventsName(events[f]!)})`);
  events[f]! |= CLOSING;
  for (let side = 0; side < 2; side++) {
    const s = sock[2 * f + side]!;
    if (s < 0) continue;
    if (mask[2 * f + side]! !== 0) st.loop.del(s);
    if (abort) setsockopt(s, SOL_SOCKET, SO_LINGER, lingerZero, 8);
  }
  closing.push(f);
}

/** Closes the sockets and pipes of the flows marked CLOSING, and frees them. @syscalls close */
function closeDeferred(_st: SpliceState): void {
  for (const f of closing) {
    for (let side = 0; side < 2; side++) {
      const sidx = 2 * f + side;
      if (sock[sidx]! >= 0) close(sock[sidx]!);
      if (pipeR[sidx]! >= 0) close(pipeR[sidx]!);
      if (pipeW[sidx]! >= 0) close(pipeW[sidx]!);
      sock[sidx] = pipeR[sidx] = pipeW[sidx] = -1;
      pending[sidx] = 0;
      mask[sidx] = 0;
    }
    events[f] = 0;
    active--;
    flows.free(f);
  }
  closing.length = 0;
}

/** Resets every spliced connection and closes them at once (shutdown, tests). */
export function tcpSpliceCloseAll(): void {
  const st = state;
  if (st === null) return;
  for (let f = 0; f < flows.max; f++) {
    if (flows.type[f] === FlowType.TCP_SPLICE && flows.inUse(f) && !(events[f]! & CLOSING)) reset(st, f);
  }
  closeDeferred(st);
}
