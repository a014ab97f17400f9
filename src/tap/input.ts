// SPDX-License-Identifier: GPL-2.0-or-later
// input.ts - guest frames in: parse Ethernet and IP, learn the guest's MAC and addresses, dispatch
//
// Theory of operation
//
// Every frame the guest sends goes through tapInput(), one at a time, in the
// order the tap layer read them; the tap layer calls tapInputBatchEnd() once
// after each batch so that the L4 handlers can flush what they gathered
// (upstream tap.c pools frames per L4 tuple; our handlers batch themselves).
//
// Goals: never throw on guest input, allocate nothing per frame (one view per
// layer lives at module level and is re-pointed with wrap()), and count every
// frame that goes nowhere in ctx.stats under a reason:
//
//   ethTruncated   shorter than an Ethernet header
//   etherType      not ARP, IPv4 or IPv6 (VLAN tags included: upstream drops them too)
//   ipv4Disabled   ARP or IPv4 with no IPv4 context; ipv6Disabled likewise
//   ipv4Malformed  header length, total length or version impossible
//   ipv4Fragment   MF set or a fragment offset: upstream does not reassemble
//   ipv6Malformed  payload length not matching the frame, bad extension header chain
//   ipv6Fragment   a fragment header with an offset or MF; ipv6NoNextHeader: chain ends in 59
//   loopback       127/8 or ::1 as source or destination (upstream tap.c drops them)
//   l4Truncated    TCP or UDP shorter than 8 bytes; ICMPv6 shorter than 8 bytes
//   tcpDisabled udpDisabled icmpDisabled   --no-tcp, --no-udp, --no-icmp
//   ipv4Protocol ipv6Protocol              other upper-layer protocols (IGMP, SCTP...)
//   mld            MLD queries and reports: ignored quietly, no multicast here
//   noHandler      no L4 handler was registered with setL4Handlers()
//
// The local services (arp, dhcp, ndp, dhcpv6) count their own drops.
//
// Learning, as upstream's tap.c does it:
//  - the guest's MAC is the source address of its last frame, whatever it
//    carries (ctx.guestMac is updated in place);
//  - an IPv4 source other than 0.0.0.0 becomes ip4.addrSeen, unless the
//    address was given with -a (upstream's addr_fixed, since 2026-06);
//  - an IPv6 link-local source becomes ip6.addrLlSeen (always), and also
//    ip6.addrSeen if none was seen yet (and -a was not given), and ip6.addr
//    if it is still unspecified (local mode learns its address this way);
//    any other specified source becomes ip6.addrSeen unless -a was given.
// Learning happens after the loopback check and before dispatch.

import type { Ctx } from "../ctx.ts";
import { arp } from "../proto/arp.ts";
import { dhcp } from "../proto/dhcp.ts";
import { dhcpv6 } from "../proto/dhcpv6.ts";
import { ndp } from "../proto/ndp.ts";
import { getU16 } from "../wire/_bytes.ts";
import { addrEqual, isLinkLocal6, isLoopback4, isLoopback6, isUnspecified } from "../wire/addr.ts";
import { EthernetView, EtherType } from "../wire/ethernet.ts";
import { Icmpv6Type } from "../wire/icmpv6.ts";
import { IpProtocol, Ipv4View } from "../wire/ipv4.ts";
import { Ipv6View } from "../wire/ipv6.ts";
import type { TapSink } from "./frame.ts";

/** UDP port of the DHCP server (RFC 2131). */
const DHCP_SERVER_PORT = 67;
/** UDP port of DHCPv6 servers and relays (RFC 8415 section 7.2). */
const DHCPV6_SERVER_PORT = 547;
/** Bytes of an L4 header that dispatch reads: the two ports of TCP and UDP. */
const L4_MIN_BYTES = 8;
/** Smallest ICMPv6 message passed on: type, code, checksum and 4 bytes (upstream's icmp6hdr). */
const ICMPV6_MIN_BYTES = 8;

/**
 * Where guest TCP, UDP and ICMP go once the local services have had their
 * look. Views are module-level and re-pointed at the next frame: a handler that
 * keeps data past its return must copy it (the frame itself stays valid until
 * the end of the batch, see tap.ts).
 */
export interface L4Handlers {
  /** TCP over IPv4; `l4` is the TCP header and payload, within the IP total length. */
  tcp4(ip: Ipv4View, l4: Uint8Array): void;
  /** TCP over IPv6; `l4` is the TCP header and payload, after any extension headers. */
  tcp6(ip: Ipv6View, l4: Uint8Array): void;
  /** UDP over IPv4 not consumed by DHCP (destination port 67). */
  udp4(ip: Ipv4View, l4: Uint8Array): void;
  /** UDP over IPv6 not consumed by DHCPv6 (destination port 547). */
  udp6(ip: Ipv6View, l4: Uint8Array): void;
  /** ICMP over IPv4. */
  icmp4(ip: Ipv4View, l4: Uint8Array): void;
  /** ICMPv6 that is neither NDP (133-136) nor MLD. */
  icmp6(ip: Ipv6View, l4: Uint8Array): void;
  /** Called after each batch of guest frames. */
  batchEnd(): void;
}

// The context of the frame being dispatched, for the default handlers' counters.
let current: Ctx | null = null;

/**
 * What the tap layer knows about the frame being dispatched, beyond its bytes.
 * `l4ChecksumOk`: the guest's kernel vouches for the TCP or UDP checksum: it
 * left it for us to fill (virtio-net NEEDS_CSUM, a locally generated segment,
 * possibly a TSO super-frame), or checked it already (DATA_VALID). The L4
 * handlers then skip their own check, which would fail on a partial checksum.
 * `udpGsoSize`: nonzero for a UDP frame that carries several datagrams
 * (virtio-net gso_type UDP_L4, USO): its payload is to be cut into datagrams of
 * this many bytes, the last one possibly shorter. Set by the tap layer before
 * each tapInput() call; false and 0 for sinks without the virtio-net header
 * (passt's stream, tests).
 */
export const tapFrameMeta = { l4ChecksumOk: false, udpGsoSize: 0 };

function noHandler(): void {
  current?.stats.drop("noHandler");
}

const defaultHandlers: L4Handlers = {
  tcp4: noHandler,
  tcp6: noHandler,
  udp4: noHandler,
  udp6: noHandler,
  icmp4: noHandler,
  icmp6: noHandler,
  batchEnd: () => {},
};

let handlers: L4Handlers = defaultHandlers;

/**
 * Registers the L4 handlers, replacing any registered before; a handler left
 * out of `h` counts its frames as dropped ("noHandler"), batchEnd does nothing.
 * @example setL4Handlers({ tcp4: tcpTapHandler4, tcp6: tcpTapHandler6, batchEnd: tcpFlush });
 */
export function setL4Handlers(h: Partial<L4Handlers>): void {
  handlers = { ...defaultHandlers, ...h };
}

/** Calls the registered batchEnd(): the tap layer does this after each batch of frames. */
export function tapInputBatchEnd(): void {
  handlers.batchEnd();
}

const eth = new EthernetView();
const ip4 = new Ipv4View();
const ip6 = new Ipv6View();
/** The addresses of the packet being dispatched, copied (learning copies them on). */
const src4 = new Uint8Array(4);
const dst4 = new Uint8Array(4);
const src6 = new Uint8Array(16);
const dst6 = new Uint8Array(16);

/**
 * Takes one Ethernet frame from the guest: learns its MAC and addresses,
 * answers ARP, DHCP, NDP and DHCPv6 itself through `tap`, and hands TCP, UDP
 * and ICMP to the registered L4 handlers. Returns nothing; never throws on any
 * content of `frame`, and counts in ctx.stats every frame it drops.
 */
export function tapInput(ctx: Ctx, tap: TapSink, frame: Uint8Array): void {
  current = ctx;
  const stats = ctx.stats;
  if (!eth.wrap(frame)) {
    stats.drop("ethTruncated");
    return;
  }
  if (!eth.srcMacIs(ctx.guestMac)) ctx.guestMac.set(eth.srcMac);

  switch (eth.etherType) {
    case EtherType.ARP:
      if (!ctx.ip4) stats.drop("ipv4Disabled");
      else arp(ctx, tap, eth);
      return;
    case EtherType.IPV4:
      if (!ctx.ip4) stats.drop("ipv4Disabled");
      else input4(ctx, tap);
      return;
    case EtherType.IPV6:
      if (!ctx.ip6) stats.drop("ipv6Disabled");
      else input6(ctx, tap);
      return;
    default:
      stats.drop("etherType");
  }
}

/** Dispatches the IPv4 packet in `eth`; ctx.ip4 is known to be set. */
function input4(ctx: Ctx, tap: TapSink): void {
  const stats = ctx.stats;
  const ip = ip4.wrap(eth.payload);
  if (!ip) {
    stats.drop("ipv4Malformed");
    return;
  }
  if (ip.isFragment) {
    stats.drop("ipv4Fragment");
    return;
  }
  // Copies, not views: a view costs more than these checks (see copySrcAddr()).
  const saddr = ip.copySrcAddr(src4);
  if (isLoopback4(saddr) || isLoopback4(ip.copyDstAddr(dst4))) {
    stats.drop("loopback");
    return;
  }
  const seen = ctx.ip4!.addrSeen;
  if (ctx.conf.addr4 === null && !isUnspecified(saddr) && !addrEqual(seen, saddr)) seen.set(saddr);

  // Link-layer padding (short frames) is trimmed here: payload stops at the total length.
  const l4 = ip.payload;
  const protocol = ip.protocol;
  if (protocol === IpProtocol.ICMP) {
    if (ctx.conf.noIcmp) stats.drop("icmpDisabled");
    else handlers.icmp4(ip, l4);
    return;
  }
  if (l4.byteLength < L4_MIN_BYTES) {
    stats.drop("l4Truncated");
    return;
  }
  if (protocol === IpProtocol.UDP) {
    if (getU16(l4, 2) === DHCP_SERVER_PORT) dhcp(ctx, tap, ip, l4);
    else if (ctx.conf.noUdp) stats.drop("udpDisabled");
    else handlers.udp4(ip, l4);
  } else if (protocol === IpProtocol.TCP) {
    if (ctx.conf.noTcp) stats.drop("tcpDisabled");
    else handlers.tcp4(ip, l4);
  } else {
    stats.drop("ipv4Protocol");
  }
}

/** Dispatches the IPv6 packet in `eth`; ctx.ip6 is known to be set. */
function input6(ctx: Ctx, tap: TapSink): void {
  const stats = ctx.stats;
  const l3 = eth.payload;
  const ip = ip6.wrap(l3);
  // Upstream wants the payload length to match the frame exactly: an IPv6
  // packet never needs Ethernet padding unless it is too short to be useful.
  if (!ip || Ipv6View.HEADER_LEN + ip.payloadLength !== l3.byteLength) {
    stats.drop("ipv6Malformed");
    return;
  }
  if (ip.isFragment) {
    stats.drop("ipv6Fragment");
    return;
  }
  const protocol = ip.upperLayerProtocol;
  if (protocol === IpProtocol.IPV6_NO_NEXT_HEADER) {
    stats.drop("ipv6NoNextHeader");
    return;
  }
  const saddr = ip.copySrcAddr(src6);
  if (isLoopback6(saddr) || isLoopback6(ip.copyDstAddr(dst6))) {
    stats.drop("loopback");
    return;
  }
  learn6(ctx, saddr);

  const l4 = ip.upperLayerPayload;
  if (protocol === IpProtocol.ICMPV6) {
    if (ctx.conf.noIcmp) {
      stats.drop("icmpDisabled");
      return;
    }
    if (l4.byteLength < ICMPV6_MIN_BYTES) {
      stats.drop("l4Truncated");
      return;
    }
    const type = l4[0]!;
    if (type >= Icmpv6Type.ROUTER_SOLICITATION && type <= Icmpv6Type.NEIGHBOR_ADVERTISEMENT) {
      ndp(ctx, tap, ip, l4);
    } else if (
      type === Icmpv6Type.MLD_QUERY || type === Icmpv6Type.MLD_REPORT ||
      type === Icmpv6Type.MLD_DONE || type === Icmpv6Type.MLDV2_REPORT
    ) {
      stats.drop("mld");
    } else {
      handlers.icmp6(ip, l4);
    }
    return;
  }
  if (protocol !== IpProtocol.UDP && protocol !== IpProtocol.TCP) {
    stats.drop("ipv6Protocol");
    return;
  }
  if (l4.byteLength < L4_MIN_BYTES) {
    stats.drop("l4Truncated");
    return;
  }
  if (protocol === IpProtocol.UDP) {
    if (getU16(l4, 2) === DHCPV6_SERVER_PORT) dhcpv6(ctx, tap, ip, l4);
    else if (ctx.conf.noUdp) stats.drop("udpDisabled");
    else handlers.udp6(ip, l4);
  } else if (ctx.conf.noTcp) {
    stats.drop("tcpDisabled");
  } else {
    handlers.tcp6(ip, l4);
  }
}

/** Updates the IPv6 addresses learned from a guest source address (see the header). */
function learn6(ctx: Ctx, saddr: Uint8Array): void {
  const c6 = ctx.ip6!;
  const fixed = ctx.conf.addr6 !== null;
  if (isLinkLocal6(saddr)) {
    c6.addrLlSeen.set(saddr);
    if (!fixed && isUnspecified(c6.addrSeen)) c6.addrSeen.set(saddr);
    if (isUnspecified(c6.addr)) c6.addr.set(saddr);
  } else if (!fixed && !isUnspecified(saddr)) {
    if (!addrEqual(c6.addrSeen, saddr)) c6.addrSeen.set(saddr);
  }
}
