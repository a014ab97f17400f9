// SPDX-License-Identifier: GPL-2.0-or-later
// ctx.ts - the run-time context: configuration resolved against the host, learned guest state, counters
//
// Built once at start-up by host.ts from the Config and what rtnetlink and
// /etc/resolv.conf say about the host. Fields that change while running (what
// the guest's own addresses and MAC turn out to be, counters) are documented
// as such; everything else is fixed after start-up.

import type { Config, Mode } from "./conf.ts";

/** IPv4 side of the context; null in Ctx when IPv4 is disabled (-6) or unusable. */
export interface Ip4Ctx {
  /** Address given to the guest (DHCP): the host's, or -a. 4 bytes. */
  readonly addr: Uint8Array;
  /** Prefix length of `addr` (host's, -n or /PLEN). */
  readonly prefixLen: number;
  /** Default gateway as the guest sees it (host's, or -g); the DHCP router. 4 bytes. */
  readonly gw: Uint8Array;
  /** Address the guest last used as source (learned from its traffic); starts as `addr`. Mutable. */
  readonly addrSeen: Uint8Array;
  /** Guest-side address that means "the host's loopback" (--map-host-loopback, default gw), or null. */
  readonly mapHostLoopback: Uint8Array | null;
  /** Guest-side address that means "the guest's own address on the host" (--map-guest-addr), or null. */
  readonly mapGuestAddr: Uint8Array | null;
  /** Source address of the frames we originate (ARP answers aside): DHCP server id etc. 4 bytes. */
  readonly ourTapAddr: Uint8Array;
  /** DNS servers advertised to the guest (DHCP option 6). */
  readonly dns: readonly Uint8Array[];
  /** Guest-side DNS address whose port 53/853 traffic goes to `dnsHost` (--dns-forward), or null. */
  readonly dnsMatch: Uint8Array | null;
  /** Host-side resolver that dnsMatch traffic is sent to (--dns-host), or null. */
  readonly dnsHost: Uint8Array | null;
  /** Host interface index of the template interface, 0 if none (local mode). */
  readonly ifindex: number;
}

/** IPv6 side of the context; null in Ctx when IPv6 is disabled (-4) or unusable. */
export interface Ip6Ctx {
  /** Global address given to the guest (DHCPv6), the host's or -a. 16 bytes. */
  readonly addr: Uint8Array;
  /** Prefix length of `addr`; RA advertises /64 as upstream does. */
  readonly prefixLen: number;
  /** Default gateway as the guest sees it (usually link-local). 16 bytes. */
  readonly gw: Uint8Array;
  /** Global address the guest last used as source. Mutable. */
  readonly addrSeen: Uint8Array;
  /** Link-local address the guest last used as source. Mutable. */
  readonly addrLlSeen: Uint8Array;
  /** Link-local source address of our NDP, DHCPv6 answers (the router the guest sees). 16 bytes. */
  readonly ourTapLl: Uint8Array;
  /** See Ip4Ctx.mapHostLoopback. */
  readonly mapHostLoopback: Uint8Array | null;
  /** See Ip4Ctx.mapGuestAddr. */
  readonly mapGuestAddr: Uint8Array | null;
  /** DNS servers advertised to the guest (RDNSS, DHCPv6 option 23). */
  readonly dns: readonly Uint8Array[];
  /** See Ip4Ctx.dnsMatch. */
  readonly dnsMatch: Uint8Array | null;
  /** See Ip4Ctx.dnsHost. */
  readonly dnsHost: Uint8Array | null;
  /** Host interface index of the template interface, 0 if none. */
  readonly ifindex: number;
}

/** Counters of dropped and handled frames; incremented in place, read by logs and tests. */
export class Stats {
  framesIn = 0;
  framesOut = 0;
  /** Frames dropped because they could not be parsed or were impossible; by reason. */
  readonly drops = new Map<string, number>();

  /** Counts a dropped frame under `reason` and returns false, so handlers can `return drop(...)`. */
  drop(reason: string): false {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
    return false;
  }

  /** Returns the total number of dropped frames. */
  dropped(): number {
    let n = 0;
    for (const v of this.drops.values()) n += v;
    return n;
  }
}

/** Everything a handler needs about the configuration and the guest. */
export interface Ctx {
  readonly conf: Config;
  readonly mode: Mode;
  /** Our MAC address: source of every frame we send to the guest. 6 bytes. */
  readonly ourMac: Uint8Array;
  /** Guest's MAC address, learned from its frames; broadcast until then. Mutable, 6 bytes. */
  readonly guestMac: Uint8Array;
  readonly ip4: Ip4Ctx | null;
  readonly ip6: Ip6Ctx | null;
  /** MTU advertised to the guest (DHCP option 26, RA MTU option); 0 for none. */
  readonly mtu: number;
  /** Search domains advertised to the guest. */
  readonly search: readonly string[];
  /** DHCP hostname (-H) and FQDN (--fqdn), or null. */
  readonly hostname: string | null;
  readonly fqdn: string | null;
  readonly stats: Stats;
}
