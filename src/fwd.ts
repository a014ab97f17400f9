// SPDX-License-Identifier: GPL-2.0-or-later
// fwd.ts - address translation between the guest's view and the host's (passt fwd.c NAT rules)
//
// The guest sees the host's network almost untranslated (REFERENCE.md §2):
// destinations it sends to stay as they are, except three configured
// addresses that stand for something on the host:
//   map-host-loopback (default: the gateway, none with --no-map-gw)
//       -> the host's 127.0.0.1 / ::1
//   map-guest-addr (--map-guest-addr, none by default)
//       -> the host's own address (which the guest shares)
//   dns-forward (--dns-forward), on TCP/UDP ports 53 and 853 only
//       -> the host's resolver (--dns-host or resolv.conf)
// and the same rules backwards for traffic from the host towards the guest:
// a source of exactly 127.0.0.1 / ::1 appears as map-host-loopback, the
// host's (guest's) own address as map-guest-addr, and sources the guest
// could not talk back to (loopback, unspecified, its own address) are
// replaced by our tap address (the gateway fallback), or refused.
//
// All addresses are 16-byte inany (inany.ts). Nothing here allocates.

import type { Ctx } from "./ctx.ts";
import {
  INANY_LOOPBACK4, INANY_LOOPBACK6, inanyEqual, inanyEquals4, inanyEquals6, inanyFrom4, inanyFrom6,
  inanyIs4, inanyIsLinkLocal6, inanyIsLoopback, inanyIsUnspecified,
} from "./inany.ts";
import { IpProtocol } from "./wire/ipv4.ts";

/** Returns whether (proto, port) is DNS traffic subject to --dns-forward: TCP or UDP to port 53 or 853. */
export function isDnsFlow(proto: number, dport: number): boolean {
  return (proto === IpProtocol.UDP || proto === IpProtocol.TCP) && (dport === 53 || dport === 853);
}

/**
 * Writes into `out` the host-side address that traffic from the guest to
 * `dst` (inany) port `dport` must be sent to, and returns true; returns
 * false, leaving `out` undefined, if it cannot go anywhere: `dst` is
 * unspecified, or its IP version is disabled. The port is never changed.
 * Rules, first match wins (upstream fwd_nat_from_tap): --dns-forward address
 * on 53/853 with a known resolver -> that resolver; map-host-loopback ->
 * 127.0.0.1 / ::1; map-guest-addr -> the host's address; anything else as is.
 */
export function natFromTap(ctx: Ctx, proto: number, dst: Uint8Array, dport: number, out: Uint8Array): boolean {
  if (inanyIsUnspecified(dst)) return false;
  const ip4 = ctx.ip4, ip6 = ctx.ip6;
  if (inanyIs4(dst)) {
    if (ip4 === null) return false;
    if (isDnsFlow(proto, dport) && ip4.dnsHost !== null && inanyEquals4(dst, ip4.dnsMatch)) {
      inanyFrom4(ip4.dnsHost, out);
    } else if (inanyEquals4(dst, ip4.mapHostLoopback)) {
      out.set(INANY_LOOPBACK4);
    } else if (inanyEquals4(dst, ip4.mapGuestAddr)) {
      inanyFrom4(ip4.addr, out);
    } else {
      out.set(dst.subarray(0, 16));
    }
    return true;
  }
  if (ip6 === null) return false;
  if (isDnsFlow(proto, dport) && ip6.dnsHost !== null && inanyEquals6(dst, ip6.dnsMatch)) {
    inanyFrom6(ip6.dnsHost, out);
  } else if (inanyEquals6(dst, ip6.mapHostLoopback)) {
    out.set(INANY_LOOPBACK6);
  } else if (inanyEquals6(dst, ip6.mapGuestAddr)) {
    inanyFrom6(ip6.addr, out);
  } else {
    out.set(dst.subarray(0, 16));
  }
  return true;
}

/**
 * Writes into `out` the address host sockets for guest traffic bind to on
 * the IP version of `like` (inany): -o / --outbound (conf.outbound4/6), or
 * unspecified so the kernel picks. Returns true if an address was
 * configured, false if unspecified was written.
 */
export function hostBindAddr(ctx: Ctx, like: Uint8Array, out: Uint8Array): boolean {
  if (inanyIs4(like)) {
    const a = ctx.conf.outbound4;
    inanyFrom4(a ?? ZERO4, out);
    return a !== null;
  }
  const a = ctx.conf.outbound6;
  inanyFrom6(a ?? ZERO16, out);
  return a !== null;
}

const ZERO4 = new Uint8Array(4);
const ZERO16 = new Uint8Array(16);

/**
 * Returns whether the guest can reach `addr` (inany) as itself, that is,
 * whether `addr` may appear untranslated as a source towards the guest: not
 * loopback, not unspecified, not the guest's own address (upstream
 * fwd_guest_accessible).
 */
export function guestAccessible(ctx: Ctx, addr: Uint8Array): boolean {
  if (inanyIsLoopback(addr) || inanyIsUnspecified(addr)) return false;
  if (inanyIs4(addr)) {
    const ip4 = ctx.ip4;
    return ip4 === null || !(inanyEquals4(addr, ip4.addr) || inanyEquals4(addr, ip4.addrSeen));
  }
  const ip6 = ctx.ip6;
  if (ip6 === null) return true;
  if (inanyEquals6(addr, ip6.addr)) return false;
  if (!isZero(ip6.addrSeen) && inanyEquals6(addr, ip6.addrSeen)) return false;
  return true;
}

function isZero(a: Uint8Array): boolean {
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== 0) return false;
  return true;
}

/**
 * Writes into `out` the source address the guest sees for traffic from host
 * address `src` (inany), and returns true; returns false if there is none
 * (the IP version is disabled, or an IPv4 source needs the fallback and we
 * have no tap address). Rules (upstream nat_inbound, then the fallback of
 * fwd_nat_from_host): exactly 127.0.0.1 / ::1 -> map-host-loopback if set;
 * the host's own address -> map-guest-addr if set; any other address the
 * guest can talk back to -> itself; otherwise (other loopback, unspecified,
 * the guest's address without map-guest-addr, loopback without
 * map-host-loopback) -> our tap address (IPv4) or our link-local (IPv6).
 */
export function natToTap(ctx: Ctx, src: Uint8Array, out: Uint8Array): boolean {
  const ip4 = ctx.ip4, ip6 = ctx.ip6;
  if (inanyIs4(src)) {
    if (ip4 === null) return false;
    if (ip4.mapHostLoopback !== null && inanyEqual(src, INANY_LOOPBACK4)) {
      inanyFrom4(ip4.mapHostLoopback, out);
    } else if (ip4.mapGuestAddr !== null && inanyEquals4(src, ip4.addr)) {
      inanyFrom4(ip4.mapGuestAddr, out);
    } else if (guestAccessible(ctx, src)) {
      out.set(src.subarray(0, 16));
    } else {
      if (isZero(ip4.ourTapAddr)) return false;
      inanyFrom4(ip4.ourTapAddr, out);
    }
    return true;
  }
  if (ip6 === null) return false;
  if (ip6.mapHostLoopback !== null && inanyEqual(src, INANY_LOOPBACK6)) {
    inanyFrom6(ip6.mapHostLoopback, out);
  } else if (ip6.mapGuestAddr !== null && inanyEquals6(src, ip6.addr)) {
    inanyFrom6(ip6.mapGuestAddr, out);
  } else if (guestAccessible(ctx, src)) {
    out.set(src.subarray(0, 16));
  } else {
    inanyFrom6(ip6.ourTapLl, out);
  }
  return true;
}

/**
 * Writes into `out` the guest address inbound traffic goes to when no rule
 * names one: the address the guest was last seen using, of the version and
 * scope of `tapSrc` (the source we present, inany): ip4.addrSeen, or
 * ip6.addrLlSeen for a link-local source, else ip6.addrSeen (upstream
 * fwd_default_guest_addr). Returns false if that version is disabled or
 * the address is still unknown (unspecified).
 */
export function guestDst(ctx: Ctx, tapSrc: Uint8Array, out: Uint8Array): boolean {
  if (inanyIs4(tapSrc)) {
    if (ctx.ip4 === null) return false;
    inanyFrom4(ctx.ip4.addrSeen, out);
  } else {
    if (ctx.ip6 === null) return false;
    inanyFrom6(inanyIsLinkLocal6(tapSrc) ? ctx.ip6.addrLlSeen : ctx.ip6.addrSeen, out);
  }
  return !inanyIsUnspecified(out);
}
