// SPDX-License-Identifier: GPL-2.0-or-later
// ndp.test.ts - NDP views, RA/NA emitters and ICMPv6 checksums against kernel and passt 2023 frames

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import {
  emitNeighborAdvertisement, emitRouterAdvertisement, fillNdpChecksum, ndpChecksum, ndpDnsLifetimeS, ndpDnsslNames,
  NdpNeighborAdvertisement, NdpNeighborSolicitation, NdpOption, NdpOptionCursor, NdpPrefixInfo, ndpRdnssAddresses,
  NdpRouterAdvertisement, NdpRouterSolicitation, NdpType, parseNdp, verifyNdpChecksum, type NdpRaFields,
} from "../../../src/wire/ndp.ts";

/** A fixture as IPv6 source, destination and ICMPv6 message: Ethernet 14, IPv6 40 (no extension headers). */
interface Icmp6 {
  src: Uint8Array;
  dst: Uint8Array;
  msg: Uint8Array;
}

function icmp6(name: string): Icmp6 {
  const frame = new Uint8Array(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url)));
  return { src: frame.subarray(22, 38), dst: frame.subarray(38, 54), msg: frame.subarray(54) };
}

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/[\s:]+/g, ""), "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

const NS_DAD = icmp6("ndp_ns_dad.bin");
const NS_DAD_GLOBAL = icmp6("ndp_ns_dad_global.bin");
const RS = icmp6("ndp_rs.bin");
const RA = icmp6("ndp_ra.bin");
const NS = icmp6("ndp_ns.bin");
const NA = icmp6("ndp_na.bin");
const GUEST_MAC = hex("d6:e6:58:3d:e1:d3");
const OUR_MAC = hex("92:d3:de:b1:fb:1c");
const TARGET = hex("20010db8000000000000000000000020");

/** Returns the option types of a message, in order. */
function types(cursor: NdpOptionCursor): number[] {
  const out: number[] = [];
  while (cursor.next()) out.push(cursor.type);
  return out;
}

describe("checksum", () => {
  test.each([
    ["ndp_ns_dad.bin", NS_DAD, 0xd2ff],
    ["ndp_rs.bin", RS, 0x5d3e],
    ["ndp_ra.bin", RA, 0xe20c],
    ["ndp_ns_dad_global.bin", NS_DAD_GLOBAL, -1],
    ["ndp_ns.bin", NS, 0xfefc],
    ["ndp_na.bin", NA, 0x5753],
  ])("%s verifies against its pseudo-header", (_name, f, expected) => {
    expect(verifyNdpChecksum(f.msg, f.src, f.dst)).toBe(true);
    if (expected >= 0) expect(ndpChecksum(f.msg, f.src, f.dst)).toBe(expected);
  });

  test("a flipped bit, or the wrong destination, fails verification", () => {
    const msg = NA.msg.slice();
    msg[10] = msg[10]! ^ 0x01;
    expect(verifyNdpChecksum(msg, NA.src, NA.dst)).toBe(false);
    expect(verifyNdpChecksum(NA.msg, NA.src, RA.dst)).toBe(false);
    expect(verifyNdpChecksum(NA.msg.subarray(0, 3), NA.src, NA.dst)).toBe(false);
  });

  test("fillNdpChecksum() writes the checksum that verifies", () => {
    const msg = RA.msg.slice();
    msg[2] = 0;
    msg[3] = 0;
    fillNdpChecksum(msg, RA.src, RA.dst);
    expect(toHex(msg)).toBe(toHex(RA.msg));
  });
});

describe("deconstruct", () => {
  test("the kernel's router solicitation carries its link-layer address", () => {
    const rs = NdpRouterSolicitation.parse(RS.msg)!;
    expect([rs.type, rs.code, rs.checksum]).toEqual([NdpType.ROUTER_SOLICITATION, 0, 0x5d3e]);
    expect(types(rs.options())).toEqual([NdpOption.SOURCE_LL_ADDR]);
    expect(rs.sourceLinkAddress).toEqual(GUEST_MAC);
    expect(rs.optionsMalformed).toBe(false);
  });

  test("passt's router advertisement: M flag, prefix, MTU and link-layer address", () => {
    const ra = NdpRouterAdvertisement.parse(RA.msg)!;
    expect(ra.curHopLimit).toBe(255);
    expect(ra.flags).toBe(0x80);
    expect(ra.managed).toBe(true);
    expect(ra.other).toBe(false);
    expect(ra.routerLifetimeS).toBe(9000);
    expect(ra.reachableTimeMs).toBe(0);
    expect(ra.retransTimerMs).toBe(0);
    expect(types(ra.options())).toEqual([NdpOption.PREFIX_INFO, NdpOption.MTU, NdpOption.SOURCE_LL_ADDR]);
    const pi = ra.prefixInfo!;
    expect(NdpPrefixInfo.prefixLength(pi)).toBe(64);
    expect(NdpPrefixInfo.onLink(pi)).toBe(true);
    expect(NdpPrefixInfo.autonomous(pi)).toBe(true);
    expect(NdpPrefixInfo.validLifetimeS(pi)).toBe(3600);
    expect(NdpPrefixInfo.preferredLifetimeS(pi)).toBe(3600);
    expect(NdpPrefixInfo.prefix(pi)).toEqual(hex("20010db8000000000000000000000000"));
    expect(ra.mtu).toBe(65520);
    expect(ra.sourceLinkAddress).toEqual(OUR_MAC);
    expect(ra.rdnss).toBeNull();
    expect(ra.dnssl).toBeNull();
  });

  test.each([
    ["duplicate address detection", NS_DAD, "fe80000000000000d4e658fffe3de1d3", [NdpOption.NONCE], null],
    ["DAD of the global address", NS_DAD_GLOBAL, "20010db800000000d4e658fffe3de1d3", [NdpOption.NONCE], null],
    ["address resolution", NS, toHex(TARGET), [NdpOption.SOURCE_LL_ADDR], GUEST_MAC],
  ])("a neighbour solicitation for %s names its target", (_what, f, target, options, mac) => {
    const ns = NdpNeighborSolicitation.parse(f.msg)!;
    expect(toHex(ns.target)).toBe(target);
    expect(types(ns.options())).toEqual(options);
    expect(ns.sourceLinkAddress).toEqual(mac);
  });

  test("the DAD solicitation's nonce option reads as its 6 bytes", () => {
    expect(NdpNeighborSolicitation.parse(NS_DAD.msg)!.findOption(NdpOption.NONCE)).toEqual(hex("7a18c0cb7031"));
  });

  test("passt's neighbour advertisement: R, S, O, target and its link-layer address", () => {
    const na = NdpNeighborAdvertisement.parse(NA.msg)!;
    expect([na.router, na.solicited, na.override]).toEqual([true, true, true]);
    expect(na.target).toEqual(TARGET);
    expect(na.targetLinkAddress).toEqual(OUR_MAC);
    expect(na.sourceLinkAddress).toBeNull();
  });

  test.each([
    [RS, NdpRouterSolicitation],
    [RA, NdpRouterAdvertisement],
    [NS, NdpNeighborSolicitation],
    [NA, NdpNeighborAdvertisement],
  ])("parseNdp() picks the view by type (%#)", (f, kind) => {
    expect(parseNdp(f.msg)).toBeInstanceOf(kind);
  });

  test("wrap() re-points a view and refuses another message type", () => {
    const ns = NdpNeighborSolicitation.parse(NS.msg)!;
    expect(ns.wrap(NS_DAD.msg)?.target[0]).toBe(0xfe);
    expect(ns.wrap(NA.msg)).toBeNull();
  });
});

describe("construct", () => {
  const passtRa: NdpRaFields = {
    curHopLimit: 255,
    managed: true,
    routerLifetimeS: 9000,
    // The guest's address: bits past /64 must come out zero.
    prefixInfo: {
      prefix: hex("20010db8000000000000000000000010"), prefixLength: 64,
      onLink: true, autonomous: true, validLifetimeS: 3600, preferredLifetimeS: 3600,
    },
    mtu: 65520,
    sourceLinkAddress: OUR_MAC,
  };

  test("emitRouterAdvertisement() writes passt's RA byte for byte, checksum included", () => {
    const out = new Uint8Array(1280).fill(0xa5);
    const len = emitRouterAdvertisement(out, passtRa);
    fillNdpChecksum(out.subarray(0, len), RA.src, RA.dst);
    expect(toHex(out.subarray(0, len))).toBe(toHex(RA.msg));
  });

  test("emitNeighborAdvertisement() writes passt's NA byte for byte, checksum included", () => {
    const out = new Uint8Array(64).fill(0xa5);
    const len = emitNeighborAdvertisement(out, {
      router: true, solicited: true, override: true, target: TARGET, targetLinkAddress: OUR_MAC,
    });
    fillNdpChecksum(out.subarray(0, len), NA.src, NA.dst);
    expect(toHex(out.subarray(0, len))).toBe(toHex(NA.msg));
  });

  test("an NA without a link-layer option is 24 bytes with no options", () => {
    const out = new Uint8Array(64);
    const len = emitNeighborAdvertisement(out, { router: false, solicited: true, override: false, target: TARGET });
    const na = NdpNeighborAdvertisement.parse(out.subarray(0, len))!;
    expect(len).toBe(24);
    expect([na.router, na.solicited, na.override]).toEqual([false, true, false]);
    expect(types(na.options())).toEqual([]);
  });

  test("RDNSS and DNSSL go between MTU and the link-layer address, and read back", () => {
    const out = new Uint8Array(1280);
    const len = emitRouterAdvertisement(out, {
      ...passtRa,
      other: true,
      reachableTimeMs: 30000,
      retransTimerMs: 1000,
      rdnss: { lifetimeS: 60, servers: [hex("20010db8000000000000000000000053"), hex("20010db8000000000000000000000054")] },
      dnssl: { lifetimeS: 60, names: ["example.org", "lab.example.org"] },
    });
    const ra = NdpRouterAdvertisement.parse(out.subarray(0, len))!;
    expect(len % 8).toBe(0);
    expect(ra.optionsMalformed).toBe(false);
    expect(types(ra.options())).toEqual([3, 5, 25, 31, 1]);
    expect([ra.managed, ra.other, ra.reachableTimeMs, ra.retransTimerMs]).toEqual([true, true, 30000, 1000]);
    expect(ndpDnsLifetimeS(ra.rdnss!)).toBe(60);
    expect(toHex(ndpRdnssAddresses(ra.rdnss!))).toBe("20010db8000000000000000000000053" + "20010db8000000000000000000000054");
    expect(ndpDnsLifetimeS(ra.dnssl!)).toBe(60);
    // 8 header bytes + 13 + 17 name bytes = 38, padded to 40: length 5.
    expect(ra.dnssl!.length).toBe(40 - 2);
    expect(ndpDnsslNames(ra.dnssl!)).toEqual(["example.org", "lab.example.org"]);
  });

  test.each([
    [48, "0xffff"],
    [56, "0xffffff"],
    [60, "0xfffffff0"],
  ])("a /%i prefix is masked when written", (prefixLength) => {
    const out = new Uint8Array(128);
    const len = emitRouterAdvertisement(out, {
      curHopLimit: 64, routerLifetimeS: 0,
      prefixInfo: { prefix: new Uint8Array(16).fill(0xff), prefixLength, onLink: false, autonomous: true, validLifetimeS: 1, preferredLifetimeS: 1 },
    });
    const pi = NdpRouterAdvertisement.parse(out.subarray(0, len))!.prefixInfo!;
    const bits = [...NdpPrefixInfo.prefix(pi)].map((b) => b.toString(2).padStart(8, "0")).join("");
    expect(bits).toBe("1".repeat(prefixLength) + "0".repeat(128 - prefixLength));
    expect(NdpPrefixInfo.onLink(pi)).toBe(false);
  });

  test.each([
    ["a buffer under the RA header", () => emitRouterAdvertisement(new Uint8Array(15), { curHopLimit: 64, routerLifetimeS: 0 })],
    ["an RA whose options do not fit", () => emitRouterAdvertisement(new Uint8Array(63), {
      curHopLimit: 255, routerLifetimeS: 9000, mtu: 1500, sourceLinkAddress: OUR_MAC,
      prefixInfo: { prefix: TARGET, prefixLength: 64, onLink: true, autonomous: true, validLifetimeS: 1, preferredLifetimeS: 1 },
    })],
    ["a prefix length over 128", () => emitRouterAdvertisement(new Uint8Array(128), {
      curHopLimit: 255, routerLifetimeS: 0,
      prefixInfo: { prefix: TARGET, prefixLength: 129, onLink: true, autonomous: true, validLifetimeS: 1, preferredLifetimeS: 1 },
    })],
    ["a DNSSL name that is not a DNS name", () => emitRouterAdvertisement(new Uint8Array(128), {
      curHopLimit: 255, routerLifetimeS: 0, dnssl: { lifetimeS: 1, names: ["a..b"] },
    })],
    ["an NA buffer under 24 bytes", () => emitNeighborAdvertisement(new Uint8Array(23), {
      router: true, solicited: true, override: true, target: TARGET,
    })],
    ["an NA with no room for its option", () => emitNeighborAdvertisement(new Uint8Array(31), {
      router: true, solicited: true, override: true, target: TARGET, targetLinkAddress: OUR_MAC,
    })],
  ])("the emitter returns -1 for %s", (_what, emit) => {
    expect(emit()).toBe(-1);
  });
});

describe("rejects", () => {
  const cuts = (f: Icmp6, min: number): [number, Uint8Array][] =>
    Array.from({ length: min }, (_, n) => [n, f.msg.subarray(0, n)]);

  test.each(cuts(RS, 8))("an RS cut to %i bytes is refused", (_n, bytes) => {
    expect(NdpRouterSolicitation.parse(bytes)).toBeNull();
    expect(parseNdp(bytes)).toBeNull();
  });
  test.each(cuts(RA, 16))("an RA cut to %i bytes is refused", (_n, bytes) => {
    expect(NdpRouterAdvertisement.parse(bytes)).toBeNull();
    expect(parseNdp(bytes)).toBeNull();
  });
  test.each(cuts(NS, 24))("an NS cut to %i bytes is refused", (_n, bytes) => {
    expect(NdpNeighborSolicitation.parse(bytes)).toBeNull();
    expect(parseNdp(bytes)).toBeNull();
  });
  test.each(cuts(NA, 24))("an NA cut to %i bytes is refused", (_n, bytes) => {
    expect(NdpNeighborAdvertisement.parse(bytes)).toBeNull();
    expect(parseNdp(bytes)).toBeNull();
  });

  test.each(Array.from({ length: RA.msg.length - 17 }, (_, i) => i + 17))(
    "an RA cut to %i bytes parses, and its options walk reports the cut",
    (n) => {
      const ra = NdpRouterAdvertisement.parse(RA.msg.subarray(0, n))!;
      // Option boundaries: 16 (prefix), 48 (MTU), 56 (source LL) to 64.
      expect(ra.optionsMalformed).toBe(![48, 56].includes(n));
    },
  );

  test.each([
    ["a nonzero code", NS, 1, 1],
    ["another ICMPv6 type", NS, 0, 128],
  ])("an NS with %s is refused", (_what, f, offset, value) => {
    const msg = f.msg.slice();
    msg[offset] = value;
    expect(NdpNeighborSolicitation.parse(msg)).toBeNull();
  });

  test("parseNdp() refuses a redirect and other ICMPv6 types", () => {
    const msg = NA.msg.slice();
    msg[0] = NdpType.REDIRECT;
    expect(parseNdp(msg)).toBeNull();
    msg[0] = 128;
    expect(parseNdp(msg)).toBeNull();
  });

  test("an option of length 0 is malformed and stops the walk", () => {
    const msg = Uint8Array.from([...RS.msg.subarray(0, 8), ...hex("0e00 000000000000"), ...hex("0101 d6e6583de1d3")]);
    const rs = NdpRouterSolicitation.parse(msg)!;
    expect(rs.optionsMalformed).toBe(true);
    expect(types(rs.options())).toEqual([]);
    expect(rs.sourceLinkAddress).toBeNull();
  });

  test("an option running past the end is malformed; options before it still read", () => {
    const msg = Uint8Array.from([...NS.msg, ...hex("0e02 0000000000")]);
    const ns = NdpNeighborSolicitation.parse(msg)!;
    expect(ns.optionsMalformed).toBe(true);
    expect(ns.sourceLinkAddress).toEqual(GUEST_MAC);
  });

  test.each([
    ["a prefix information option of 8 bytes", "0301 400000000000", "prefixInfo"],
    ["an RDNSS option with no address", "1901 000000000000", "rdnss"],
    ["a DNSSL option with no name", "1f01 000000000000", "dnssl"],
  ] as const)("%s reads as null", (_what, option, getter) => {
    const msg = Uint8Array.from([...RA.msg.subarray(0, 16), ...hex(option)]);
    const ra = NdpRouterAdvertisement.parse(msg)!;
    expect(ra.optionsMalformed).toBe(false);
    expect(ra[getter]).toBeNull();
  });

  test("DNSSL names that are malformed read as null", () => {
    expect(ndpDnsslNames(hex("0000 0000003c 05 6162 00 0000"))).toBeNull();
    expect(ndpDnsslNames(hex("0000 0000"))).toBeNull();
  });
});
