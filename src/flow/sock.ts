// SPDX-License-Identifier: GPL-2.0-or-later
// sock.ts - opening the host socket of one flow side: socket, options, bind, connect
//
// The host-side socket of a flow (upstream flowside_sock_l4) is bound to our
// address and port on that side (oaddr:oport; unspecified lets the kernel
// choose) and, for UDP, connected to the endpoint (eaddr:eport), so the
// kernel filters replies for us. Addresses are inany; sockaddrs are built in
// one scratch buffer, so nothing here allocates after start-up.

import type { Ctx } from "../ctx.ts";
import { inanyIs4 } from "../inany.ts";
import {
  arena, bind, close, connect, cstr, setsockopt, setsockoptInt, socket,
  AF_INET, AF_INET6, IPPROTO_IPV6, IPV6_V6ONLY, SOCK_CLOEXEC, SOCK_NONBLOCK,
  SOL_SOCKET, SO_BINDTODEVICE, SO_REUSEADDR, SOCKADDR_IN, SOCKADDR_IN6,
} from "../../syscalls/mod.ts";

/** Scratch sockaddr storage for bind/connect/sendto (single-threaded use). */
export const SA_SCRATCH: Uint8Array = arena(128, 8);

/**
 * Writes a sockaddr_in (IPv4-mapped `addr`) or sockaddr_in6 for the inany at
 * `addr[off]` and `port` into `buf`, and returns its length (16 or 28).
 * Never fails for a buffer of at least 28 bytes.
 */
export function writeSockaddrInany(buf: Uint8Array, addr: Uint8Array, port: number, off = 0): number {
  if (inanyIs4(addr, off)) {
    buf.fill(0, 0, SOCKADDR_IN.SIZE);
    buf[0] = AF_INET;
    buf[2] = port >> 8;
    buf[3] = port & 0xff;
    for (let i = 0; i < 4; i++) buf[SOCKADDR_IN.ADDR + i] = addr[off + 12 + i]!;
    return SOCKADDR_IN.SIZE;
  }
  buf.fill(0, 0, SOCKADDR_IN6.SIZE);
  buf[0] = AF_INET6;
  buf[2] = port >> 8;
  buf[3] = port & 0xff;
  for (let i = 0; i < 16; i++) buf[SOCKADDR_IN6.ADDR + i] = addr[off + i]!;
  return SOCKADDR_IN6.SIZE;
}

/** Interface names for SO_BINDTODEVICE, NUL-terminated, encoded once. */
const ifnameBytes = new Map<string, Uint8Array>();

/**
 * Returns 0 after binding `fd` to --outbound-if4/6 (SO_BINDTODEVICE) for
 * the IP version `v4`, or when none is configured; -errno if it fails.
 * @syscalls setsockopt
 */
export function bindOutboundIf(ctx: Ctx, fd: number, v4: boolean): number {
  const name = v4 ? ctx.conf.outboundIf4 : ctx.conf.outboundIf6;
  return name === null ? 0 : bindToDevice(fd, name);
}

/**
 * Returns 0 after binding `fd` to interface `name` (SO_BINDTODEVICE), or
 * -errno. The name is encoded once and cached.  @syscalls setsockopt
 */
export function bindToDevice(fd: number, name: string): number {
  let b = ifnameBytes.get(name);
  if (b === undefined) {
    b = cstr(name);
    ifnameBytes.set(name, b);
  }
  return setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, b, b.byteLength);
}

/** What flowSock() should do besides bind. */
export interface FlowSockOptions {
  /** SO_REUSEADDR before bind (UDP sockets sharing a port with a listener). */
  reuseAddr: boolean;
  /** Apply --outbound-if4/6 (sockets towards the outside). */
  outboundIf: boolean;
}

/**
 * Returns a new non-blocking socket of `type` and `proto`, of the family of
 * `bindAddr` (inany at `bindOff`), bound to bindAddr:bindPort and, if
 * `peer` is not null, connected to peer:peerPort (inany at `peerOff`); or
 * -errno of the first step that failed (the socket is then closed). IPv6
 * sockets are IPV6_V6ONLY.
 * @syscalls socket setsockopt bind connect close
 */
export function flowSock(
  ctx: Ctx, type: number, proto: number,
  bindAddr: Uint8Array, bindPort: number,
  peer: Uint8Array | null, peerPort: number,
  opts: FlowSockOptions, bindOff = 0, peerOff = 0,
): number {
  const v4 = inanyIs4(bindAddr, bindOff);
  const fd = socket(v4 ? AF_INET : AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (fd < 0) return fd;
  let r = 0;
  if (!v4) r = setsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  if (r >= 0 && opts.reuseAddr) r = setsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (r >= 0 && opts.outboundIf) r = bindOutboundIf(ctx, fd, v4);
  if (r >= 0) r = bind(fd, SA_SCRATCH, writeSockaddrInany(SA_SCRATCH, bindAddr, bindPort, bindOff));
  if (r >= 0 && peer !== null) r = connect(fd, SA_SCRATCH, writeSockaddrInany(SA_SCRATCH, peer, peerPort, peerOff));
  if (r < 0) {
    close(fd);
    return r;
  }
  return fd;
}
