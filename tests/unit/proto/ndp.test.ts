// SPDX-License-Identifier: GPL-2.0-or-later
// ndp.test.ts - router and neighbour advertisements end to end through tapInput(), against the 2023 capture

import { describe, expect, test } from "bun:test";
import { ndpSendInitReq, ndpTimer, ndpUnsolicitedNa, ROUTER_LIFETIME_S } from "../../../src/proto/ndp.ts";
import { formatIpv6, parseIpv6 } from "../../../src/wire/addr.ts";
import { Icmpv6Type } from "../../../src/wire/icmpv6.ts";
import { IpProtocol } from "../../../src/wire/ipv4.ts";
import {
  NdpNeighborAdvertisement, NdpNeighborSolicitation, NdpOption, NdpPrefixInfo, NdpRouterAdvertisement, ndpDnsLifetimeS,
  ndpDnsslNames, ndpRdnssAddresses,
} from "../../../src/wire/ndp.ts";
import { expectFrame, FakeTap, fixture } from "../../harness/fake_tap.ts";
import { HOST, testCtx, UPSTREAM_2023_MAC } from "../../harness/ctx.ts";

const GUEST_MAC = "d6:e6:58:3d:e1:d3";
const GUEST_LL = "fe80::d4e6:58ff:fe3d:e1d3";
const GUEST_GLOBAL = "2001:db8::d4e6:58ff:fe3d:e1d3";
const OUR_MAC = "9a:55:9a:55:9a:55";
/** Our link-local address in 2023: the host's, fe80::90d3:deff:feb1:fb1c. */
const UPSTREAM_2023_LL = "fe80::90d3:deff:feb1:fb1c";
const ICMP = 14 + 40;
const INFINITE = 0xffffffff;

/** Returns the option types of an RA, in order. */
function optionTypes(ra: NdpRouterAdvertisement): number[] {
  const types: number[] = [];
  const c = ra.options();
  while (c.next()) types.push(c.type);
  return types;
}

/** Checks the headers of the one frame in `out`, an RA to `dst`, and returns its view. */
function routerAdvertisement(out: Uint8Array[], dst: string, dstMac = GUEST_MAC): NdpRouterAdvertisement {
  expect(out).toHaveLength(1);
  const msg = expectFrame(out[0])
    .ether({ src: OUR_MAC, dst: dstMac })
    .ipv6({ src: HOST.gw6, dst, nextHeader: IpProtocol.ICMPV6, hopLimit: 255 })
    .icmpv6({ type: Icmpv6Type.ROUTER_ADVERTISEMENT, code: 0 })
    .payload();
  const ra = NdpRouterAdvertisement.parse(msg);
  expect(ra).not.toBeNull();
  expect(ra!.optionsMalformed).toBe(false);
  return ra!;
}

describe("ndp() router advertisements", () => {
  test("ndp() answers the captured RS with an RA for the host's /64, from our link-local address", () => {
    const ctx = testCtx();
    const tap = new FakeTap(ctx);
    const out = tap.input(fixture("ndp_rs.bin"));
    tap.check("ndp_ra", () => {
      const ra = routerAdvertisement(out, GUEST_LL);
      expect(ra.curHopLimit).toBe(255);
      expect(ra.managed).toBe(true);
      expect(ra.other).toBe(false);
      expect(ra.routerLifetimeS).toBe(ROUTER_LIFETIME_S);
      expect(ra.reachableTimeMs).toBe(0);
      expect(ra.retransTimerMs).toBe(0);
      const pi = ra.prefixInfo!;
      expect(NdpPrefixInfo.prefixLength(pi)).toBe(64);
      expect(NdpPrefixInfo.onLink(pi)).toBe(true);
      expect(NdpPrefixInfo.autonomous(pi)).toBe(true);
      expect(NdpPrefixInfo.validLifetimeS(pi)).toBe(INFINITE);
      expect(NdpPrefixInfo.preferredLifetimeS(pi)).toBe(INFINITE);
      // Upstream puts the whole address in the prefix field (since 2024-11).
      expect(formatIpv6(NdpPrefixInfo.prefix(pi))).toBe(HOST.addr6);
      expect(ra.mtu).toBe(HOST.mtu);
      expect(ra.sourceLinkAddress).toEqual(Uint8Array.of(0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55));
      // pasta: no DNS options unless --dhcp-dns.
      expect(optionTypes(ra)).toEqual([NdpOption.PREFIX_INFO, NdpOption.SOURCE_LL_ADDR, NdpOption.MTU]);
    });
  });

  test("ndp() advertises what the 2023 capture did, with the newest lifetimes and option order", () => {
    // Differences from the capture (newest upstream): router lifetime 65535 s
    // (was 9000), prefix lifetimes infinite (were 3600 s), the source
    // link-layer option right after the prefix (was last), and the prefix
    // field holding the whole address (was only the /64).
    const ctx = testCtx({ ourMac: UPSTREAM_2023_MAC, ip6: { ourTapLl: UPSTREAM_2023_LL } });
    const tap = new FakeTap(ctx);
    const out = tap.input(fixture("ndp_rs.bin"));
    const upstream = fixture("ndp_ra.bin");
    const theirs = NdpRouterAdvertisement.parse(upstream.subarray(ICMP))!;
    expect(out[0]!.subarray(0, ICMP)).toEqual(upstream.subarray(0, ICMP));
    const ours = NdpRouterAdvertisement.parse(out[0]!.subarray(ICMP))!;
    expect(ours.curHopLimit).toBe(theirs.curHopLimit);
    expect(ours.flags).toBe(theirs.flags);
    expect(theirs.routerLifetimeS).toBe(9000);
    expect(ours.mtu).toBe(theirs.mtu);
    expect(ours.sourceLinkAddress).toEqual(theirs.sourceLinkAddress);
    expect(NdpPrefixInfo.prefix(ours.prefixInfo!).subarray(0, 8)).toEqual(NdpPrefixInfo.prefix(theirs.prefixInfo!).subarray(0, 8));
    expect(NdpPrefixInfo.validLifetimeS(theirs.prefixInfo!)).toBe(3600);
    expect(optionTypes(ours).sort()).toEqual(optionTypes(theirs).sort());
  });

  test("ndp() adds RDNSS and DNSSL with --dhcp-dns and --dhcp-search", () => {
    const ctx = testCtx({ argv: ["--dhcp-dns", "--dhcp-search"] });
    const ra = routerAdvertisement(new FakeTap(ctx).input(fixture("ndp_rs.bin")), GUEST_LL);
    expect(formatIpv6(ndpRdnssAddresses(ra.rdnss!))).toBe(HOST.dns6);
    expect(ndpDnsLifetimeS(ra.rdnss!)).toBe(INFINITE);
    expect(ndpDnsslNames(ra.dnssl!)).toEqual(["example.org"]);
    expect(ndpDnsLifetimeS(ra.dnssl!)).toBe(INFINITE);
  });

  test("ndp() sends no DNSSL without IPv6 DNS servers, as upstream", () => {
    const ctx = testCtx({ argv: ["--dhcp-dns", "--dhcp-search"], ip6: { dns: [] } });
    const ra = routerAdvertisement(new FakeTap(ctx).input(fixture("ndp_rs.bin")), GUEST_LL);
    expect(ra.rdnss).toBeNull();
    expect(ra.dnssl).toBeNull();
  });

  test("ndp() sends no MTU option when the MTU is 0", () => {
    const ra = routerAdvertisement(new FakeTap(testCtx({ mtu: 0 })).input(fixture("ndp_rs.bin")), GUEST_LL);
    expect(ra.mtu).toBeNull();
  });

  test("ndp() answers no RS with --no-ra, but still answers NS", () => {
    const ctx = testCtx({ argv: ["--no-ra"] });
    const tap = new FakeTap(ctx);
    expect(tap.input(fixture("ndp_rs.bin"))).toHaveLength(0);
    expect(ctx.stats.drops.get("raDisabled")).toBe(1);
    expect(tap.input(fixture("ndp_ns.bin"))).toHaveLength(1);
  });
});

describe("ndp() neighbour advertisements", () => {
  test("ndp() answers the captured NS exactly as the 2023 capture did, given its MAC and address", () => {
    const ctx = testCtx({ ourMac: UPSTREAM_2023_MAC, ip6: { ourTapLl: UPSTREAM_2023_LL } });
    const tap = new FakeTap(ctx);
    const out = tap.input(fixture("ndp_ns.bin"));
    tap.check("ndp_na_2023", () => {
      expect(out).toHaveLength(1);
      expect(out[0]).toEqual(fixture("ndp_na.bin"));
    });
  });

  test("ndp() answers an NS for any target with our MAC, router, solicited and override set", () => {
    const ctx = testCtx();
    const ns = fixture("ndp_ns.bin");
    ns.set(parseIpv6("2001:db8::77")!, ICMP + 8); // checksums are not checked, as upstream
    const out = new FakeTap(ctx).input(ns);
    expect(out).toHaveLength(1);
    const msg = expectFrame(out[0])
      .ether({ src: OUR_MAC, dst: GUEST_MAC })
      .ipv6({ src: HOST.gw6, dst: GUEST_GLOBAL, hopLimit: 255 })
      .icmpv6({ type: Icmpv6Type.NEIGHBOR_ADVERTISEMENT })
      .payload();
    const na = NdpNeighborAdvertisement.parse(msg)!;
    expect([na.router, na.solicited, na.override]).toEqual([true, true, true]);
    expect(formatIpv6(na.target)).toBe("2001:db8::77");
    expect(na.targetLinkAddress).toEqual(Uint8Array.of(0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55));
  });

  test.each([
    ["link-local", "ndp_ns_dad.bin"],
    ["global", "ndp_ns_dad_global.bin"],
  ])("ndp() does not answer duplicate address detection for the guest's %s address", (_kind, name) => {
    const ctx = testCtx();
    const tap = new FakeTap(ctx);
    expect(tap.input(fixture(name))).toHaveLength(0);
    expect(ctx.stats.drops.get("ndpDad")).toBe(1);
  });

  test("ndp() ignores RAs and NAs from the guest", () => {
    const ctx = testCtx();
    const tap = new FakeTap(ctx);
    expect(tap.input(fixture("ndp_na.bin"))).toHaveLength(0);
    expect(tap.input(fixture("ndp_ra.bin"))).toHaveLength(0);
    expect(ctx.stats.drops.get("ndpIgnored")).toBe(2);
  });

  test("ndp() drops an NS too short to hold its target", () => {
    const ctx = testCtx();
    const ns = fixture("ndp_ns.bin").subarray(0, ICMP + 16);
    ns[14 + 5] = 16; // payload length
    expect(new FakeTap(ctx).input(ns)).toHaveLength(0);
    expect(ctx.stats.drops.get("ndpMalformed")).toBe(1);
  });

  test("ndp() answers nothing with --no-ndp", () => {
    const ctx = testCtx({ argv: ["--no-ndp"] });
    const tap = new FakeTap(ctx);
    expect(tap.input(fixture("ndp_rs.bin"))).toHaveLength(0);
    expect(tap.input(fixture("ndp_ns.bin"))).toHaveLength(0);
    expect(ctx.stats.drops.get("ndpDisabled")).toBe(2);
  });
});

describe("ndpTimer() and solicitations of our own", () => {
  test("ndpTimer() schedules on its first call, then sends an RA to all nodes within 200 to 600 s", () => {
    const ctx = testCtx();
    const tap = new FakeTap(ctx);
    const t0 = 1_000_000;
    expect(ndpTimer(ctx, tap, t0)).toBe(false);
    expect(ndpTimer(ctx, tap, t0 + 199_000)).toBe(false);
    expect(tap.sent).toHaveLength(0);
    expect(ndpTimer(ctx, tap, t0 + 600_000)).toBe(true);
    // No frame from the guest yet: its MAC is unknown, so the RA is broadcast.
    const ra = routerAdvertisement(tap.sent, "ff02::1", "ff:ff:ff:ff:ff:ff");
    expect(ra.routerLifetimeS).toBe(ROUTER_LIFETIME_S);
    // The next one is again at least 200 s away.
    expect(ndpTimer(ctx, tap, t0 + 600_000 + 199_000)).toBe(false);
    expect(ndpTimer(ctx, tap, t0 + 600_000 + 600_000)).toBe(true);
  });

  test("ndpTimer() sends nothing with --no-ra", () => {
    const ctx = testCtx({ argv: ["--no-ra"] });
    const tap = new FakeTap(ctx);
    for (let s = 0; s <= 2000; s += 100) expect(ndpTimer(ctx, tap, 5_000_000 + s * 1000)).toBe(false);
    expect(tap.sent).toHaveLength(0);
  });

  test("ndpSendInitReq() solicits the guest's address at that address", () => {
    const ctx = testCtx();
    const tap = new FakeTap(ctx);
    ndpSendInitReq(ctx, tap);
    const msg = expectFrame(tap.sent[0])
      .ipv6({ src: HOST.gw6, dst: HOST.addr6, hopLimit: 255 })
      .icmpv6({ type: Icmpv6Type.NEIGHBOR_SOLICITATION, code: 0 })
      .payload();
    expect(formatIpv6(NdpNeighborSolicitation.parse(msg)!.target)).toBe(HOST.addr6);
  });

  test("ndpUnsolicitedNa() advertises an address with our MAC to all nodes", () => {
    const ctx = testCtx();
    const tap = new FakeTap(ctx);
    ndpUnsolicitedNa(ctx, tap, parseIpv6("2001:db8::1")!);
    const msg = expectFrame(tap.sent[0])
      .ipv6({ src: HOST.gw6, dst: "ff02::1" })
      .icmpv6({ type: Icmpv6Type.NEIGHBOR_ADVERTISEMENT })
      .payload();
    expect(formatIpv6(NdpNeighborAdvertisement.parse(msg)!.target)).toBe("2001:db8::1");
  });
});
