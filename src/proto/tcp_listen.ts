// SPDX-License-Identifier: GPL-2.0-or-later
// tcp_listen.ts - listening sockets for -t rules: which host port goes to which guest address and port
//
// Each rule of ctx.conf.fwd.tcpIn gives host ports first..last; port first+k
// is forwarded to guest port toFirst+k. For a rule without a bind address we
// open two sockets per port, IPv4 0.0.0.0 and IPv6 :: with IPV6_V6ONLY (as
// upstream does, so that each address family maps to the guest's same family);
// with a bind address, one socket of its family. Every socket is registered as
// EpollType.TCP_LISTEN with its slot in the arrays below as the index.
//
// Limits: `auto` rules (forward what is bound on the guest side, rescanned
// every second) and `all` rules (every unbound port) are not expanded yet:
// they are skipped with a warning. Ports in a rule's exclude list are skipped.

import {
  bind, close, listen, setsockoptInt, socket, writeSockaddrIn, writeSockaddrIn6, errnoName,
  AF_INET, AF_INET6, EPOLLIN, IPPROTO_IPV6, IPV6_V6ONLY, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM,
  SOL_SOCKET, SO_REUSEADDR, arena,
} from "../../syscalls/mod.ts";
import type { Ctx } from "../ctx.ts";
import { log } from "../log.ts";
import { EpollType, type Loop } from "../loop/loop.ts";

/** Most listening sockets we open. */
export const LISTEN_MAX = 4096;
/** Backlog passed to listen(). */
const LISTEN_BACKLOG = 128;

/** Listener table: one slot per listening socket. */
export const listeners = {
  /** Number of slots in use (slots 0..count-1). */
  count: 0,
  /** Listening socket, -1 once closed. */
  fd: new Int32Array(LISTEN_MAX).fill(-1),
  /** Host port it is bound to. */
  port: new Uint16Array(LISTEN_MAX),
  /** Guest port connections to it go to. */
  toPort: new Uint16Array(LISTEN_MAX),
  /** Guest address connections go to (4 or 16 bytes), null for the guest's observed address. */
  toAddr: new Array<Uint8Array | null>(LISTEN_MAX).fill(null),
};

const SA = arena(28, 8);
const ANY4 = new Uint8Array(4);
const ANY6 = new Uint8Array(16);

/**
 * Returns the listening socket bound to `addr` (4 or 16 bytes) port `port`,
 * registered in `loop` as TCP_LISTEN slot `slot`, or -errno.
 * @syscalls socket setsockopt bind listen epoll_ctl close
 */
function listenOne(loop: Loop, addr: Uint8Array, port: number, slot: number): number {
  const v6 = addr.byteLength === 16;
  const s = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) return s;
  setsockoptInt(s, SOL_SOCKET, SO_REUSEADDR, 1);
  if (v6) setsockoptInt(s, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  const len = v6 ? writeSockaddrIn6(SA, addr, port) : writeSockaddrIn(SA, addr, port);
  let r = bind(s, SA, len);
  if (r === 0) r = listen(s, LISTEN_BACKLOG);
  if (r === 0) r = loop.add(s, EPOLLIN, EpollType.TCP_LISTEN, slot);
  if (r < 0) {
    close(s);
    return r;
  }
  return s;
}

/**
 * Opens the listeners for every port of every -t rule and returns how many
 * sockets were opened. A port that cannot be bound (in use, privileged) is
 * logged and skipped, as upstream does for ranges; `auto` and `all` rules
 * are skipped with a warning (not implemented yet).
 */
export function tcpListenInit(ctx: Ctx, loop: Loop): number {
  let opened = 0;
  for (const rule of ctx.conf.fwd.tcpIn.rules) {
    if (rule.auto || rule.all) {
      log.warn(`TCP: skipping -t ${rule.first}-${rule.last}: 'auto' and 'all' forwarding are not implemented yet`);
      continue;
    }
    for (let port = rule.first; port <= rule.last; port++) {
      if (rule.exclude.some((x) => port >= x.first && port <= x.last)) continue;
      const toPort = rule.toFirst + (port - rule.first);
      const addrs: Uint8Array[] = [];
      if (rule.bindAddr !== null) addrs.push(rule.bindAddr);
      else {
        if (ctx.ip4 !== null) addrs.push(ANY4);
        if (ctx.ip6 !== null) addrs.push(ANY6);
      }
      for (const addr of addrs) {
        const slot = listeners.count;
        if (slot >= LISTEN_MAX) {
          log.warn(`TCP: more than ${LISTEN_MAX} listening sockets, stopping at port ${port}`);
          return opened;
        }
        const s = listenOne(loop, addr, port, slot);
        if (s < 0) {
          log.warn(`TCP: can't listen on port ${port} (${addr.byteLength === 4 ? "IPv4" : "IPv6"}): ${errnoName(s)}`);
          continue;
        }
        listeners.fd[slot] = s;
        listeners.port[slot] = port;
        listeners.toPort[slot] = toPort;
        listeners.toAddr[slot] = rule.toAddr;
        listeners.count++;
        opened++;
      }
    }
  }
  return opened;
}

/** Closes every listening socket (removing it from `loop`) and empties the table. @syscalls epoll_ctl close */
export function tcpListenClose(loop: Loop): void {
  for (let i = 0; i < listeners.count; i++) {
    const s = listeners.fd[i]!;
    if (s < 0) continue;
    loop.del(s);
    close(s);
    listeners.fd[i] = -1;
    listeners.toAddr[i] = null;
  }
  listeners.count = 0;
}
