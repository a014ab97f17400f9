// SPDX-License-Identifier: GPL-2.0-or-later
// ndp.ts - NDP: router advertisements and neighbour advertisements for the guest (ndp.c)
//
// Theory of operation
//
// We are the guest's only router and every neighbour it has, as upstream's
// ndp.c is. ICMPv6 types 133 to 136 from the guest end here (with --no-ndp
// they are swallowed); other ICMPv6 goes to the ICMP handler.
//  - Router Solicitation: answered with a Router Advertisement to the
//    solicitation's source address (unless --no-ra).
//  - Neighbor Solicitation: answered with a Neighbor Advertisement for its
//    target, whatever the target, to its source address, with Router,
//    Solicited and Override set and our MAC as the target link-layer address.
//    Solicitations from :: are duplicate address detection: no answer, so
//    the guest keeps the address it is probing.
//  - RAs and NAs from the guest are ignored.
// Neither checksum nor hop limit of the solicitation is checked: upstream does
// not check them either, and the guest is the only one on this link.
//
// The Router Advertisement (newest upstream, 2026): current hop limit 255,
// Managed flag set (addresses from DHCPv6), Other clear, router lifetime
// 65535 s (RFC 8319's maximum), reachable time and retransmission timer 0;
// options in upstream's order: prefix information (ip6.addr /64, on-link and
// autonomous, infinite lifetimes), source link-layer address (our MAC), MTU
// (when ctx.mtu is not 0), RDNSS (ip6.dns, infinite lifetime, with
// --dhcp-dns), DNSSL (the search list, with --dhcp-search, and only when
// there is an RDNSS option, as upstream). The prefix field carries the whole
// of ip6.addr, host bits included, as upstream has since 2024 (RFC 4861 says
// they should be zero; receivers ignore them).
//
// Unsolicited RAs (RFC 4861 6.2.1): ndpTimer() sends one to ff02::1 every 200
// to 600 s, a random interval each time; its first call only schedules. The
// loop calls it unless --no-ndp; it does nothing with --no-ra.
//
// Every NDP frame goes from ip6.ourTapLl and our MAC to the guest's MAC, hop
// limit 255 (RFC 4861 requires it).

import type { Ctx } from "../ctx.ts";
import { allocFrame, ipv6Frame, L4_OFFSET6, type TapSink } from "../tap/frame.ts";
import { isUnspecified } from "../wire/addr.ts";
import { IpProtocol } from "../wire/ipv4.ts";
import type { Ipv6View } from "../wire/ipv6.ts";
import {
  emitNeighborAdvertisement, emitRouterAdvertisement, fillNdpChecksum, NdpType, type NdpNaFields, type NdpRaFields,
} from "../wire/ndp.ts";

/** Router lifetime we advertise, seconds (upstream RT_LIFETIME, RFC 8319). */
export const ROUTER_LIFETIME_S = 65535;
/** Most seconds between unsolicited RAs (RFC 4861 6.2.1 MaxRtrAdvInterval default). */
export const MAX_RTR_ADV_INTERVAL_S = 600;
/** Fewest seconds between RAs (RFC 4861 section 10, MIN_DELAY_BETWEEN_RAS). */
export const MIN_DELAY_BETWEEN_RAS_S = 3;
const INFINITE = 0xffffffff;
const NS_LEN = 24;
/** Where the prefix sits in our RA: 16 bytes of RA header, 2 of option header, 14 into its value. */
const RA_PREFIX_OFFSET = 16 + 2 + 14;
/** Where the source link-layer address option goes in upstream's RA: after the 32-byte prefix option. */
const RA_SLLA_OFFSET = 16 + 32;
const SLLA_LEN = 8;

const ALL_NODES = new Uint8Array([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
/** Largest RA: header, prefix, MTU, SLLA, RDNSS of 3 servers, DNSSL of 6 names of 255 bytes. */
const RA_MAX_BYTES = 16 + 32 + 8 + 8 + (8 + 3 * 16) + (8 + 6 * 256);

const frame = allocFrame(L4_OFFSET6 + RA_MAX_BYTES);
const icmp = frame.subarray(L4_OFFSET6);
const slla = new Uint8Array(SLLA_LEN);

const naFields: NdpNaFields = { router: true, solicited: true, override: true, target: ALL_NODES };

/** RA fields for one context, built on first use. */
let raCtx: Ctx | null = null;
let raFields: NdpRaFields | null = null;

function raFieldsFor(ctx: Ctx): NdpRaFields {
  if (raFields && raCtx === ctx) return raFields;
  const c6 = ctx.ip6!;
  const f: NdpRaFields = {
    curHopLimit: 255,
    managed: true,
    other: false,
    routerLifetimeS: ROUTER_LIFETIME_S,
    reachableTimeMs: 0,
    retransTimerMs: 0,
    prefixInfo: {
      prefix: c6.addr, prefixLength: 64, onLink: true, autonomous: true,
      validLifetimeS: INFINITE, preferredLifetimeS: INFINITE,
    },
    sourceLinkAddress: ctx.ourMac,
  };
  if (ctx.mtu) f.mtu = ctx.mtu;
  if (ctx.conf.dhcpDns && c6.dns.length > 0) {
    f.rdnss = { lifetimeS: INFINITE, servers: c6.dns };
    if (ctx.conf.dhcpSearch && ctx.search.length > 0) f.dnssl = { lifetimeS: INFINITE, names: ctx.search };
  }
  raCtx = ctx;
  raFields = f;
  return f;
}

/**
 * Handles the NDP message `l4` (ICMPv6 type 133 to 136, at least 8 bytes)
 * that the guest sent inside `ip`, answering through `tap` as the header
 * says. Returns nothing; counts "ndpDisabled" with --no-ndp, "ndpMalformed"
 * for a solicitation too short to hold its target, "ndpDad" for duplicate
 * address detection, "raDisabled" with --no-ra, "ndpIgnored" for RAs and NAs.
 */
export function ndp(ctx: Ctx, tap: TapSink, ip: Ipv6View, l4: Uint8Array): void {
  const stats = ctx.stats;
  if (ctx.conf.noNdp || !ctx.ip6) {
    stats.drop("ndpDisabled");
    return;
  }
  const type = l4[0];
  if (type === NdpType.NEIGHBOR_SOLICITATION) {
    if (l4.byteLength < NS_LEN) {
      stats.drop("ndpMalformed");
      return;
    }
    const saddr = ip.srcAddr;
    if (isUnspecified(saddr)) {
      stats.drop("ndpDad");
      return;
    }
    sendNa(ctx, tap, saddr, l4.subarray(8, NS_LEN));
  } else if (type === NdpType.ROUTER_SOLICITATION) {
    if (ctx.conf.noRa) {
      stats.drop("raDisabled");
      return;
    }
    sendRa(ctx, tap, ip.srcAddr);
  } else {
    stats.drop("ndpIgnored");
  }
}

/** Sends an NA for `target` to `dst` (both 16 bytes). */
function sendNa(ctx: Ctx, tap: TapSink, dst: Uint8Array, target: Uint8Array): void {
  naFields.target = target;
  naFields.targetLinkAddress = ctx.ourMac;
  const len = emitNeighborAdvertisement(icmp, naFields);
  send(ctx, tap, dst, len);
}

/** Sends an RA to `dst`; returns false if it could not be built (search names that are not DNS names). */
function sendRa(ctx: Ctx, tap: TapSink, dst: Uint8Array): boolean {
  const len = emitRouterAdvertisement(icmp, raFieldsFor(ctx));
  if (len < 0) {
    ctx.stats.drop("raTooLong");
    return false;
  }
  // Upstream's layout: the whole address in the prefix field, and the source
  // link-layer address option right after the prefix information.
  icmp.set(ctx.ip6!.addr, RA_PREFIX_OFFSET);
  if (len > RA_SLLA_OFFSET + SLLA_LEN) {
    slla.set(icmp.subarray(len - SLLA_LEN, len));
    icmp.copyWithin(RA_SLLA_OFFSET + SLLA_LEN, RA_SLLA_OFFSET, len - SLLA_LEN);
    icmp.set(slla, RA_SLLA_OFFSET);
  }
  send(ctx, tap, dst, len);
  return true;
}

/** Fills the checksum of the `len`-byte ICMPv6 message in place and sends it from ourTapLl to `dst`. */
function send(ctx: Ctx, tap: TapSink, dst: Uint8Array, len: number): void {
  const src = ctx.ip6!.ourTapLl;
  fillNdpChecksum(icmp.subarray(0, len), src, dst);
  const total = ipv6Frame(ctx, frame, src, dst, IpProtocol.ICMPV6, len);
  tap.send(frame.subarray(0, total));
}

let raScheduled = false;
let nextRaMs = 0;

/**
 * Sends an unsolicited RA to all nodes (ff02::1) when one is due at `nowMs`
 * (a monotonic clock in milliseconds), then schedules the next one 200 to
 * 600 s later. The first call only schedules. Returns true if an RA was sent.
 * Does nothing, returning false, with --no-ndp, --no-ra or without IPv6.
 */
export function ndpTimer(ctx: Ctx, tap: TapSink, nowMs: number): boolean {
  if (ctx.conf.noNdp || ctx.conf.noRa || !ctx.ip6) return false;
  if (raScheduled && nowMs < nextRaMs) return false;
  // RFC 4861 6.2.1: MinRtrAdvInterval is a third of the maximum; neither may
  // be shorter than MIN_DELAY_BETWEEN_RAS, and the maximum stays below the
  // router lifetime so that the route never expires.
  const maxS = Math.max(Math.min(MAX_RTR_ADV_INTERVAL_S, ROUTER_LIFETIME_S - 1), MIN_DELAY_BETWEEN_RAS_S);
  const minS = Math.max(Math.floor(maxS / 3), MIN_DELAY_BETWEEN_RAS_S);
  const intervalS = minS + Math.floor(Math.random() * (maxS - minS));
  let sent = false;
  if (raScheduled) sent = sendRa(ctx, tap, ALL_NODES);
  raScheduled = true;
  nextRaMs = nowMs + intervalS * 1000;
  return sent;
}

/**
 * Sends a Neighbor Solicitation for ip6.addr, addressed to ip6.addr itself,
 * so that the guest's answer tells us its MAC (upstream ndp_send_init_req(),
 * on a new tap connection). Returns nothing; does nothing without IPv6.
 */
export function ndpSendInitReq(ctx: Ctx, tap: TapSink): void {
  const c6 = ctx.ip6;
  if (!c6) return;
  icmp.fill(0, 0, NS_LEN);
  icmp[0] = NdpType.NEIGHBOR_SOLICITATION;
  icmp.set(c6.addr, 8);
  send(ctx, tap, c6.addr, NS_LEN);
}

/**
 * Sends an unsolicited NA for `addr` (16 bytes) to all nodes, with our MAC,
 * as upstream's ndp_unsolicited_na() does when a neighbour's MAC changes.
 * Returns nothing; does nothing without IPv6.
 */
export function ndpUnsolicitedNa(ctx: Ctx, tap: TapSink, addr: Uint8Array): void {
  if (!ctx.ip6) return;
  sendNa(ctx, tap, ALL_NODES, addr);
}
