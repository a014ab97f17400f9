// SPDX-License-Identifier: GPL-2.0-or-later
// loop.ts - the epoll loop that owns the process: registration and dispatch by EpollType
//
// Theory of operation
//
// Goal: one thread, one epoll set, as in passt.c. Every descriptor the process
// waits on (tap, sockets, listeners, timerfds, the signal pipe, child pidfds,
// netlink) is registered with a reference packed into epoll_event.data:
//
//   data (u64) = fd:32 | index:24 | type:8     (type in the low byte)
//
// `type` selects a handler from a table of at most 256 entries; `index` (below
// 2^24) is the handler's own key, typically a flow or listener slot; `fd` is
// handed back so handlers need no lookup. Dispatch reads three u32 from the
// event array (an arena: the kernel writes it) and calls
// `handlers[type](index, events, fd)`: no object, closure or BigInt is created
// per event.
//
// run() blocks in epoll_wait (BUN-FFI.md pitfall 5: Bun's own event loop,
// setTimeout, promises and Bun.spawn's exit callbacks, does not run while it
// blocks). So timers are timerfds (timer.ts), signals come through a pipe
// written by a C signal handler (signal.ts), and child exit through a pidfd
// (child.ts), all in this same set. run() returns when a handler calls
// stop(code), after that handler returns; the rest of that batch is not
// dispatched (its descriptors stay ready, level-triggered, for a later run()).
//
// Signals, as measured on Bun 1.4.5 (tests/integration/loop_signal.test.ts):
// Bun has 5-6 threads that do not block signals, and pthread_sigmask only
// covers the calling thread. With SIGTERM blocked on the main thread and a
// signalfd in the set, `kill -TERM` killed the process (status 143) and
// `kill -HUP` too (129): the kernel delivered them to another thread, where
// the default action applies. SIGCHLD never showed on the signalfd (discarded
// on another thread). SIGINT reached it only because the shell had set it to
// ignored. So signalfd is not used: signal.ts installs a process-wide handler
// that writes to a pipe, which any thread may run; SIGTERM, SIGINT and SIGHUP
// then end the loop cleanly. Child exit uses pidfd_open + waitid(P_PIDFD).
//
// Garbage collection: JavaScriptCore schedules its collections from timers on
// Bun's event loop, which does not run while we block here. Measured: without
// help, pasta's RSS grew by 12-50 MB per second of traffic and never came back
// (the short-lived views and subarrays per frame pile up). So run() itself asks
// for a (non-blocking, generational) collection every GC_INTERVAL_MS; with it,
// RSS stayed flat under the same traffic. Those collections free the objects
// but JavaScriptCore keeps their blocks: once traffic stops (an interval with
// fewer than GC_BUSY_EVENTS events after one with more), one full collection
// gives them back (measured: about 20 MiB of RSS after a transfer).
//
// Polling before sleeping: after a batch in which a handler passed on a small
// message (pollSoon(): a sub-MSS TCP segment or a short splice, whose answer is
// likely on its way), run() polls (epoll_wait with a zero timeout) for up to
// spinUs before it blocks (a sched_yield() between polls, so that a runnable
// thread of the same CPU goes first, cost 10% of TCP_RR: 18.1k -> 16.1k). Request-response traffic otherwise sleeps twice per transaction, and
// on this VM the wakeup from a blocking epoll_wait is the largest part of the
// round trip: measured with TCP_RR (perf/ab.ts, 5 interleaved runs) over the
// tap, 12.6k transactions/s without, 18.1k with 50 us (100 and 200 us: no
// better), and through the splice path 14.3k -> 20.5k; bulk TCP did not change.
// Polling after every batch, without the hint, made UDP at 1 Gbit/s lose more
// (0.72 -> 0.68 Gbit/s received, 17% more CPU per GB): a datagram every 11 us
// keeps polling hits coming, and the poller holds a CPU the receiving
// application needed. With the hint, 3 s of that UDP made 41 hints in all. The poll also adapts, as the kernel's halt-polling does: a
// poll that found nothing, followed by an event soon after (within
// SPIN_CHEAP_FACTOR windows), would cost a large share of a CPU at that event
// rate, so polling stops; it starts again once a blocking wait ends within one
// window, where polling would have caught the event.
//
// Invariants: index < 2^24, type < 256, each fd registered at most once (the
// kernel enforces this: EEXIST). Handlers must not throw for expected OS
// outcomes; an exception escapes run() and ends the loop (a bug, STYLE.md 2.3).

import {
  arena, epoll_create1, epoll_ctl, epoll_wait, close, writeEpollEvent, viewOf, errnoName,
  EPOLL_CLOEXEC, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD, EPOLL_EVENT, Errno,
} from "../../syscalls/mod.ts";

/**
 * What a registered descriptor is, selecting its handler (passt's
 * `enum epoll_type`). Values are stable and below 256.
 */
export const EpollType = {
  NONE: 0,
  TAP_PASTA: 1,
  TAP_PASST: 2,
  TAP_LISTEN: 3,
  TCP: 4,
  TCP_SPLICE: 5,
  TCP_LISTEN: 6,
  TCP_TIMER: 7,
  UDP_LISTEN: 8,
  UDP: 9,
  PING: 10,
  NSQUIT_INOTIFY: 11,
  NSQUIT_TIMER: 12,
  TIMER: 13,
  SIGNAL: 14,
  CHILD: 15,
  NETLINK: 16,
  NL_NEIGH: 17,
  VHOST_CMD: 18,
  VHOST_KICK: 19,
  REPAIR: 20,
  REPAIR_LISTEN: 21,
  /** The once-a-second port scan of automatic forwarding (fwd_auto.ts). */
  FWD_SCAN: 22,
  /** Spliced UDP between the loopbacks: listeners and flow sockets (udp_splice.ts). */
  UDP_SPLICE: 23,
  /** The delayed-ACK timer shared by all TCP connections (tcp.ts). */
  TCP_DELACK: 24,
} as const;
export type EpollType = (typeof EpollType)[keyof typeof EpollType];

const TYPE_NAMES: string[] = [];
for (const [name, value] of Object.entries(EpollType)) TYPE_NAMES[value] = name;

/** Returns the name of an epoll type for logs ("TCP"), or "type N" if unknown. */
export function epollTypeName(type: number): string {
  return TYPE_NAMES[type] ?? `type ${type}`;
}

/** Largest index an epoll reference can carry. */
export const MAX_INDEX = 0xffffff;
/** Events read per epoll_wait call. */
export const MAX_EVENTS = 128;
/** How often run() collects garbage itself (see Theory of operation). */
export const GC_INTERVAL_MS = 1000;
/** Events in one GC interval from which the process counts as busy (see Theory of operation). */
export const GC_BUSY_EVENTS = 256;
/** How long run() polls before it sleeps, microseconds (see Theory of operation). */
export const SPIN_US = 50;
/** Polling that missed stops if the event came within this many windows. */
export const SPIN_CHEAP_FACTOR = 10;

/** Called for each ready descriptor: the registration's index, the ready events (EPOLL*), its fd. */
export type Handler = (index: number, events: number, fd: number) => void;
/** Called once per loop turn, after the batch is dispatched, with how many events it had. */
export type TurnHook = (nevents: number) => void;

/** Packs a reference's low 32 bits: type in the low byte, index above it. */
function refLo(type: number, index: number): number {
  return ((index << 8) | (type & 0xff)) >>> 0;
}

/** Throws on arguments only a bug could produce (STYLE.md 2.3, tier 3). */
function checkRef(type: number, index: number): void {
  if (!Number.isInteger(type) || type < 0 || type > 0xff) throw new RangeError(`epoll type out of range: ${type}`);
  if (!Number.isInteger(index) || index < 0 || index > MAX_INDEX) throw new RangeError(`epoll index out of range: ${index}`);
}

/** Event-array stride and data-field position in u32 units for this architecture. */
const STRIDE_U32 = EPOLL_EVENT.SIZE / 4;
const DATA_U32 = EPOLL_EVENT.DATA / 4;

/**
 * One epoll set and its dispatch table. Create one per process (or per
 * Worker), register descriptors, set handlers, then run().
 * @example
 * const loop = new Loop();
 * loop.on(EpollType.UDP, (index, events, fd) => udpSockHandler(index, events, fd));
 * loop.add(fd, EPOLLIN, EpollType.UDP, slot);
 * const code = loop.run();
 */
export class Loop {
  /** The epoll descriptor. */
  readonly epfd: number;
  private readonly handlers: (Handler | null)[] = new Array<Handler | null>(256).fill(null);
  private readonly events: Uint8Array;
  private readonly eventsU32: Uint32Array;
  private readonly eventsI32: Int32Array;
  private readonly ctl: Uint8Array;
  private readonly ctlView: DataView;
  private readonly turnHooks: TurnHook[] = [];
  private stopped = false;
  private lastGcMs = performance.now();
  /** Events dispatched since the last collection. */
  private eventsSinceGc = 0;
  /** Whether the last GC interval was busy. */
  private wasBusy = false;
  /** Full collections run() made when traffic stopped (for tests and statistics). */
  fullCollections = 0;
  /** Poll window before sleeping, microseconds; 0 disables polling. */
  spinUs = SPIN_US;
  /** Whether polling is on (adaptive, see Theory of operation). */
  private spinning = true;
  /** Whether a handler of the current batch called pollSoon(). */
  private pollHint = false;
  /** Calls of pollSoon() (tests, statistics). */
  pollHints = 0;
  /** Times run() polled before sleeping, and how many of those found events (tests, statistics). */
  spinWindows = 0;
  spinHits = 0;
  private code = 0;

  /** Creates the epoll set; throws if epoll_create1 fails (start-up only).  @syscalls epoll_create1 */
  constructor() {
    const fd = epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) throw new Error(`epoll_create1: ${errnoName(fd)}`);
    this.epfd = fd;
    this.events = arena(MAX_EVENTS * EPOLL_EVENT.SIZE, 16);
    this.eventsU32 = new Uint32Array(this.events.buffer, this.events.byteOffset, this.events.byteLength / 4);
    this.eventsI32 = new Int32Array(this.events.buffer, this.events.byteOffset, this.events.byteLength / 4);
    this.ctl = arena(16, 16);
    this.ctlView = viewOf(this.ctl);
  }

  /** Sets the handler for every descriptor registered with `type` (replacing any). */
  on(type: number, handler: Handler): void {
    checkRef(type, 0);
    this.handlers[type] = handler;
  }

  /**
   * Adds a hook run after each dispatched batch and after each timeout (passt's
   * post-handlers), in the order added; null removes every hook.
   */
  onTurn(hook: TurnHook | null): void {
    if (hook === null) this.turnHooks.length = 0;
    else this.turnHooks.push(hook);
  }

  /**
   * Returns 0 after registering `fd` for `events` (EPOLLIN | ...) with the
   * reference (type, index), or -errno (-EEXIST if already registered).
   * @syscalls epoll_ctl
   */
  add(fd: number, events: number, type: number, index: number): number {
    return this.ctlOp(EPOLL_CTL_ADD, fd, events, type, index);
  }

  /** Returns 0 after changing the events and reference of registered `fd`, or -errno.  @syscalls epoll_ctl */
  mod(fd: number, events: number, type: number, index: number): number {
    return this.ctlOp(EPOLL_CTL_MOD, fd, events, type, index);
  }

  /** Returns 0 after removing `fd` from the set, or -errno (-ENOENT if not registered).  @syscalls epoll_ctl */
  del(fd: number): number {
    return epoll_ctl(this.epfd, EPOLL_CTL_DEL, fd, null);
  }

  private ctlOp(op: number, fd: number, events: number, type: number, index: number): number {
    checkRef(type, index);
    writeEpollEvent(this.ctlView, 0, events, refLo(type, index), fd);
    return epoll_ctl(this.epfd, op, fd, this.ctl);
  }

  /**
   * Makes run() return `code` once the current handler returns (or at once
   * when run() is next called, if it is not running).
   */
  stop(code = 0): void {
    this.stopped = true;
    this.code = code;
  }

  /** Returns whether a stop() is pending. */
  get stopping(): boolean {
    return this.stopped;
  }

  /**
   * Dispatches events until a handler calls stop(code), and returns that
   * code. Waits at most `timeoutMs` per epoll_wait (-1: no limit); the turn
   * hook runs after each wait. Throws if a ready descriptor has a type
   * without a handler, or if epoll_wait fails other than with EINTR (bugs).
   * @syscalls epoll_wait
   */
  run(timeoutMs = 1000): number {
    const u32 = this.eventsU32;
    const i32 = this.eventsI32;
    const handlers = this.handlers;
    while (!this.stopped) {
      const n = this.wait(timeoutMs);
      if (n < 0) {
        if (n === -Errno.EINTR) continue;
        throw new Error(`epoll_wait: ${errnoName(n)}`);
      }
      for (let i = 0; i < n; i++) {
        const base = i * STRIDE_U32;
        const events = u32[base]!;
        const lo = u32[base + DATA_U32]!;
        const fd = i32[base + DATA_U32 + 1]!;
        const type = lo & 0xff;
        const handler = handlers[type];
        if (handler === null || handler === undefined) {
          throw new Error(`epoll: no handler for ${epollTypeName(type)} (fd ${fd}, index ${lo >>> 8})`);
        }
        handler(lo >>> 8, events, fd);
        if (this.stopped) break;
      }
      this.eventsSinceGc += n;
      const now = performance.now();
      if (now - this.lastGcMs >= GC_INTERVAL_MS) {
        this.lastGcMs = now;
        const busy = this.eventsSinceGc >= GC_BUSY_EVENTS;
        if (this.wasBusy && !busy) {
          this.fullCollections++;
          Bun.gc(true);
        } else {
          Bun.gc(false);
        }
        this.wasBusy = busy;
        this.eventsSinceGc = 0;
      }
      const hooks = this.turnHooks;
      for (let h = 0; h < hooks.length && !this.stopped; h++) hooks[h]!(n);
    }
    this.stopped = false;
    return this.code;
  }

  /**
   * Waits for events, polling up to spinUs first if polling is on, and
   * adapts that (see Theory of operation); returns epoll_wait's result.
   * @syscalls epoll_wait
   */
  private wait(timeoutMs: number): number {
    const windowMs = this.spinUs / 1000;
    const hinted = this.pollHint;
    this.pollHint = false;
    if (windowMs <= 0 || !hinted) return epoll_wait(this.epfd, this.events, MAX_EVENTS, timeoutMs);
    const t0 = performance.now();
    let n = 0;
    const polled = this.spinning;
    if (polled) {
      this.spinWindows++;
      const end = t0 + windowMs;
      do n = epoll_wait(this.epfd, this.events, MAX_EVENTS, 0);
      while (n === 0 && performance.now() < end);
      if (n !== 0) {
        this.spinHits++;
        return n;
      }
    }
    const t1 = performance.now();
    n = epoll_wait(this.epfd, this.events, MAX_EVENTS, timeoutMs);
    if (n <= 0) return n;
    const t2 = performance.now();
    if (!polled) this.spinning = t2 - t1 <= windowMs;
    else if (t2 - t0 < windowMs * SPIN_CHEAP_FACTOR) this.spinning = false;
    return n;
  }

  /**
   * Asks run() to poll before it next sleeps (see Theory of operation): for a
   * handler that just passed on a small message whose answer is likely to follow.
   */
  pollSoon(): void {
    this.pollHint = true;
    this.pollHints++;
  }

  /** Returns 0 after closing the epoll descriptor, or -errno. Registered descriptors stay open.  @syscalls close */
  close(): number {
    return close(this.epfd);
  }
}
