// SPDX-License-Identifier: GPL-2.0-or-later
// mod.ts - the wire layer: zero-copy header views, address text, checksums
//
// Views hold no state beyond the bytes they point at, do no I/O and never log.
// Guest input goes through each view's parse() or wrap(), which return null on
// malformed input; accessors on a view that parsed never read out of bounds.

export * from "./addr.ts";
export * from "./checksum.ts";
export * from "./ethernet.ts";
export * from "./arp.ts";
export * from "./ipv4.ts";
export * from "./ipv6.ts";
export * from "./icmp.ts";
export * from "./icmpv6.ts";
export * from "./udp.ts";
export * from "./tcp.ts";
export * from "./dhcp.ts";
export * from "./dhcpv6.ts";
export * from "./ndp.ts";
