// SPDX-License-Identifier: GPL-2.0-or-later
// tcp_listen.ts - listening sockets for -t and -T: which port goes to which target port and address
//
// Theory of operation
//
// Every TCP listening socket we own has a slot in `listeners`, registered in
// the loop as EpollType.TCP_LISTEN with the slot as its index. A slot says
// where its socket lives (`pif`):
//
// - Pif.HOST: a socket of ours for a -t rule. Connections go to the guest
//   (tcp.ts, through the tap) or, from a loopback peer in pasta, straight to
//   the namespace (tcp_splice.ts).
// - Pif.SPLICE: a socket made inside the pasta namespace (syscalls/ns.ts
//   nsSocket()) for a -T rule, bound to the namespace's 127.0.0.1 or ::1.
//   Connections are always spliced to the host's loopback (tcp_splice.ts).
//
// A rule without a listening address gets one dual-stack socket per port
// (:: with IPV6_V6ONLY off) when both IP versions are enabled, as upstream
// does: IPv4 peers then show up as IPv4-mapped addresses, which is exactly
// the inany form (inany.ts). With one IP version, the wildcard of that one.
//
// Slots are taken from a free list, so fwd_auto.ts can open and close single
// ports every second for `auto` rules and thousands at once for `all` rules.
// tcpListenInit() opens the fixed rules of -t (neither `auto` nor `all`) when
// TCP starts, for pasta and passt alike; fwd_auto.ts opens everything else.

import {
  bind, close, listen, setsockoptInt, socket, writeSockaddrIn, writeSockaddrIn6, errnoName,
  AF_INET, AF_INET6, EPOLLIN, IPPROTO_IPV6, IPV6_V6ONLY, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM,
  SOL_SOCKET, SO_REUSEADDR, Errno, arena,
} from "../../syscalls/mod.ts";
import type { Ctx } from "../ctx.ts";
import { Pif } from "../flow/table.ts";
import { bindToDevice } from "../flow/sock.ts";
import { log } from "../log.ts";
import { EpollType, type Loop } from "../loop/loop.ts";

/** Most listening sockets at once: every port, on the host and in the namespace, two families each. */
export const LISTEN_MAX = 1 << 18;
/** Backlog passed to listen(). */
const LISTEN_BACKLOG = 128;

/** Listener table: one slot per listening socket; fields of a free slot are stale. */
export const listeners = {
  /** Slots below this may be in use (a high-water mark). */
  count: 0,
  /** Listening socket, -1 while the slot is free. */
  fd: new Int32Array(LISTEN_MAX).fill(-1),
  /** Where the socket lives: Pif.HOST (-t) or Pif.SPLICE (-T, inside the namespace). */
  pif: new Uint8Array(LISTEN_MAX),
  /** Port it is bound to. */
  port: new Uint16Array(LISTEN_MAX),
  /** Port on the other side that connections to it go to. */
  toPort: new Uint16Array(LISTEN_MAX),
  /** Target address (4 or 16 bytes), null for the default (the guest's, or the host's loopback for -T). */
  toAddr: new Array<Uint8Array | null>(LISTEN_MAX).fill(null),
};

/** Free slots below `listeners.count`, as a stack. */
const freeSlots = new Int32Array(LISTEN_MAX);
let freeTop = 0;

/** Returns a new socket, or -errno: socket(2) in our namespace, or nsSocket() in pasta's. */
export type SocketMaker = (domain: number, type: number, protocol: number) => number;

/** Where and how one listening socket is opened. */
export interface ListenSpec {
  /** Pif.HOST or Pif.SPLICE. */
  readonly pif: number;
  /** Address to bind (4 or 16 bytes), or null for the wildcard of the enabled IP versions. */
  readonly addr: Uint8Array | null;
  /** Interface to bind to (SO_BINDTODEVICE), or null. */
  readonly ifname: string | null;
  readonly port: number;
  readonly toPort: number;
  readonly toAddr: Uint8Array | null;
  /** Makes the socket; default socket(2). Pif.SPLICE listeners pass nsSocket() of the agent. */
  readonly makeSocket?: SocketMaker;
}

const SA = arena(28, 8);
const ANY4 = new Uint8Array(4);
const ANY6 = new Uint8Array(16);

/**
 * Returns a listening socket for `spec`, bound and listening, or -errno of
 * the step that failed (the socket is then closed). `dualStack` turns
 * IPV6_V6ONLY off on a wildcard IPv6 socket.
 * @syscalls socket setsockopt bind listen close
 */
function openSocket(spec: ListenSpec, addr: Uint8Array, dualStack: boolean): number {
  const v6 = addr.byteLength === 16;
  const make = spec.makeSocket ?? socket;
  const s = make(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) return s;
  setsockoptInt(s, SOL_SOCKET, SO_REUSEADDR, 1);
  let r = 0;
  if (v6) r = setsockoptInt(s, IPPROTO_IPV6, IPV6_V6ONLY, dualStack ? 0 : 1);
  if (r === 0 && spec.ifname !== null) r = bindToDevice(s, spec.ifname);
  if (r === 0) r = bind(s, SA, v6 ? writeSockaddrIn6(SA, addr, spec.port) : writeSockaddrIn(SA, addr, spec.port));
  if (r === 0) r = listen(s, LISTEN_BACKLOG);
  if (r < 0) {
    close(s);
    return r;
  }
  return s;
}

/**
 * Returns the slot of a new listening socket for `spec`, registered in `loop`
 * as TCP_LISTEN, or -errno (-ENOSPC when the table is full). A null address
 * means one dual-stack socket when both IP versions are enabled (falling back
 * to IPv4 alone if IPv6 sockets are not available), else the wildcard of the
 * enabled version.
 * @syscalls socket setsockopt bind listen epoll_ctl close
 */
export function tcpListenOpen(ctx: Ctx, loop: Loop, spec: ListenSpec): number {
  let s: number;
  if (spec.addr !== null) {
    s = openSocket(spec, spec.addr, false);
  } else if (ctx.ip6 !== null) {
    s = openSocket(spec, ANY6, ctx.ip4 !== null);
    if (s === -Errno.EAFNOSUPPORT && ctx.ip4 !== null) s = openSocket(spec, ANY4, false);
  } else {
    s = openSocket(spec, ANY4, false);
  }
  if (s < 0) return s;
  let slot: number;
  if (freeTop > 0) slot = freeSlots[--freeTop]!;
  else if (listeners.count < LISTEN_MAX) slot = listeners.count++;
  else {
    close(s);
    return -Errno.ENOSPC;
  }
  const r = loop.add(s, EPOLLIN, EpollType.TCP_LISTEN, slot);
  if (r < 0) {
    close(s);
    freeSlots[freeTop++] = slot;
    return r;
  }
  listeners.fd[slot] = s;
  listeners.pif[slot] = spec.pif;
  listeners.port[slot] = spec.port;
  listeners.toPort[slot] = spec.toPort;
  listeners.toAddr[slot] = spec.toAddr;
  return slot;
}

/** Closes the listening socket in `slot` (removing it from `loop`) and frees the slot. @syscalls epoll_ctl close */
export function tcpListenCloseSlot(loop: Loop, slot: number): void {
  const s = listeners.fd[slot]!;
  if (s < 0) return;
  loop.del(s);
  close(s);
  listeners.fd[slot] = -1;
  listeners.toAddr[slot] = null;
  freeSlots[freeTop++] = slot;
}

/**
 * Opens the listeners for the fixed rules of -t (those neither `auto` nor
 * `all`; fwd_auto.ts handles those) and returns how many sockets were opened.
 * A port that cannot be bound (in use, privileged) is logged and skipped.
 * @syscalls socket setsockopt bind listen epoll_ctl close
 */
export function tcpListenInit(ctx: Ctx, loop: Loop): number {
  let opened = 0;
  for (const rule of ctx.conf.fwd.tcpIn.rules) {
    if (rule.auto || rule.all) continue;
    for (let port = rule.first; port <= rule.last; port++) {
      const toPort = rule.toFirst + (port - rule.first);
      const slot = tcpListenOpen(ctx, loop, {
        pif: Pif.HOST, addr: rule.bindAddr, ifname: rule.ifname, port, toPort, toAddr: rule.toAddr,
      });
      if (slot < 0) {
        log.warn(`TCP: can't listen on port ${port}: ${errnoName(slot)}`);
        if (slot === -Errno.ENOSPC) return opened;
        continue;
      }
      opened++;
    }
  }
  return opened;
}

/** Closes every listening socket (removing it from `loop`) and empties the table. @syscalls epoll_ctl close */
export function tcpListenClose(loop: Loop): void {
  for (let i = 0; i < listeners.count; i++) tcpListenCloseSlot(loop, i);
  listeners.count = 0;
  freeTop = 0;
}
