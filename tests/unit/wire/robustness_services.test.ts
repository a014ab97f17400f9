// SPDX-License-Identifier: GPL-2.0-or-later
// robustness_services.test.ts - DHCP, DHCPv6, NDP and DNS-name parsers never throw on cut or mutated input
//
// Every fixture's L4 payload is cut at every length and mutated 10,000 times
// with a fixed-seed PRNG (seed 42, as gVisor's tests use); every parser, every
// accessor and every option walk runs on each input. A throw fails the test,
// and so does an accessor reading outside its view (undefined leaking out as
// NaN in a number field).

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { TEST_SEED } from "../../harness/setup.ts";
import { decodeName, decodeNameList } from "../../../src/wire/dnsname.ts";
import { DhcpOption, DhcpView } from "../../../src/wire/dhcp.ts";
import {
  Dhcpv6IaAddressView, Dhcpv6IaNaView, Dhcpv6Option, Dhcpv6View, statusCode, statusMessage,
} from "../../../src/wire/dhcpv6.ts";
import {
  ndpDnsLifetimeS, ndpDnsslNames, NdpPrefixInfo, ndpRdnssAddresses, NdpRouterAdvertisement, parseNdp,
  verifyNdpChecksum, NdpNeighborAdvertisement, NdpNeighborSolicitation,
} from "../../../src/wire/ndp.ts";

const MUTATIONS = 10_000;

/** Returns a PRNG of 32-bit unsigned integers (mulberry32) seeded with `seed`. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Throws if `n` is not a finite integer: an accessor read past its bytes. */
function num(n: number): number {
  if (!Number.isInteger(n)) throw new Error(`accessor returned ${n}`);
  return n;
}

/** Returns 1 if `bytes` parse as DHCP; runs every accessor and option walk. */
function exerciseDhcp(bytes: Uint8Array): number {
  const v = DhcpView.parse(bytes);
  if (!v) return 0;
  num(v.op + v.htype + v.hlen + v.hops + v.xid + v.secs + v.flags);
  num(v.ciaddr.length + v.yiaddr.length + v.siaddr.length + v.giaddr.length + v.chaddr.length);
  void [v.broadcast, v.sname, v.file, v.optionsMalformed];
  void [v.messageType, v.maxMessageSize, v.requestedAddress, v.serverId, v.parameterRequestList];
  void [v.clientId, v.hostname];
  const fqdn = v.fqdn;
  if (fqdn) decodeName(fqdn, 3, { compression: false });
  const search = v.findOption(DhcpOption.DOMAIN_SEARCH);
  if (search) decodeNameList(search, { compression: true });
  const c = v.options();
  while (c.next()) num(c.code + c.valueOffset + c.valueLength + c.value.length);
  return 1;
}

/** Returns 1 if `bytes` parse as DHCPv6; runs every accessor and nested option walk. */
function exerciseDhcpv6(bytes: Uint8Array): number {
  const v = Dhcpv6View.parse(bytes);
  if (!v) return 0;
  num(v.messageType + v.xid);
  void [v.clientId, v.serverId, v.oro, v.elapsedTime, v.rapidCommit, v.dnsServers, v.optionsMalformed];
  v.requestsOption(Dhcpv6Option.DNS_SERVERS);
  const status = v.status;
  if (status) {
    num(statusCode(status));
    statusMessage(status);
  }
  const domains = v.domainList;
  if (domains) decodeNameList(domains);
  const fqdn = v.fqdn;
  if (fqdn) decodeName(fqdn, 1);
  const iaValue = v.iaNa;
  if (iaValue) {
    const ia = Dhcpv6IaNaView.parse(iaValue)!;
    num(ia.iaid + ia.t1S + ia.t2S);
    const c = ia.options();
    while (c.next()) {
      const addr = c.code === Dhcpv6Option.IA_ADDRESS ? Dhcpv6IaAddressView.parse(c.value) : null;
      if (addr) {
        num(addr.address.length + addr.preferredLifetimeS + addr.validLifetimeS);
        addr.findOption(Dhcpv6Option.STATUS_CODE);
      }
    }
    void ia.firstAddress;
  }
  const c = v.options();
  while (c.next()) num(c.code + c.valueOffset + c.valueLength + c.value.length);
  return 1;
}

const SRC = new Uint8Array(16).fill(0xfe);
const DST = new Uint8Array(16).fill(0x20);

/** Returns 1 if `bytes` parse as an NDP message; runs every accessor and option walk. */
function exerciseNdp(bytes: Uint8Array): number {
  verifyNdpChecksum(bytes, SRC, DST);
  const v = parseNdp(bytes);
  if (!v) return 0;
  num(v.type + v.code + v.checksum);
  void [v.sourceLinkAddress, v.targetLinkAddress, v.optionsMalformed];
  if (v instanceof NdpRouterAdvertisement) {
    num(v.curHopLimit + v.flags + v.routerLifetimeS + v.reachableTimeMs + v.retransTimerMs);
    void [v.managed, v.other, v.mtu];
    const pi = v.prefixInfo;
    if (pi) {
      num(NdpPrefixInfo.prefixLength(pi) + NdpPrefixInfo.validLifetimeS(pi) + NdpPrefixInfo.preferredLifetimeS(pi));
      void [NdpPrefixInfo.onLink(pi), NdpPrefixInfo.autonomous(pi), NdpPrefixInfo.prefix(pi)];
    }
    const rdnss = v.rdnss;
    if (rdnss) num(ndpDnsLifetimeS(rdnss) + ndpRdnssAddresses(rdnss).length);
    const dnssl = v.dnssl;
    if (dnssl) {
      num(ndpDnsLifetimeS(dnssl));
      ndpDnsslNames(dnssl);
    }
  } else if (v instanceof NdpNeighborSolicitation) {
    num(v.target.length);
  } else if (v instanceof NdpNeighborAdvertisement) {
    void [v.router, v.solicited, v.override, v.target];
  }
  const c = v.options();
  while (c.next()) num(c.type + c.valueOffset + c.valueLength + c.value.length);
  return 1;
}

/** Runs the DNS-name decoders over the whole input, from every offset, as untrusted lists. */
function exerciseNames(bytes: Uint8Array): void {
  decodeNameList(bytes, { compression: true });
  decodeNameList(bytes, { padding: true });
  for (let i = 0; i < bytes.length; i += 7) decodeName(bytes, i, { compression: true });
}

type Exercise = (bytes: Uint8Array) => number;

/** [fixture, offset of the L4 payload in the frame, the parser it belongs to]. */
const FIXTURES: ReadonlyArray<readonly [string, number, Exercise]> = [
  ["dhcp_discover.bin", 42, exerciseDhcp],
  ["dhcp_offer.bin", 42, exerciseDhcp],
  ["dhcp_request.bin", 42, exerciseDhcp],
  ["dhcp_ack.bin", 42, exerciseDhcp],
  ["dhcpv6_solicit.bin", 62, exerciseDhcpv6],
  ["dhcpv6_advertise.bin", 62, exerciseDhcpv6],
  ["dhcpv6_request.bin", 62, exerciseDhcpv6],
  ["dhcpv6_reply.bin", 62, exerciseDhcpv6],
  ["ndp_ns_dad.bin", 54, exerciseNdp],
  ["ndp_rs.bin", 54, exerciseNdp],
  ["ndp_ra.bin", 54, exerciseNdp],
  ["ndp_ns_dad_global.bin", 54, exerciseNdp],
  ["ndp_ns.bin", 54, exerciseNdp],
  ["ndp_na.bin", 54, exerciseNdp],
];

function payload(name: string, offset: number): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url))).subarray(offset);
}

describe("robustness", () => {
  test.each(FIXTURES)("%s: no parser throws on any truncation", (name, offset, own) => {
    const bytes = payload(name, offset);
    let parsed = 0;
    for (let n = 0; n <= bytes.length; n++) {
      const cut = bytes.subarray(0, n);
      parsed += own(cut);
      exerciseNames(cut);
    }
    // The whole message parses, so at least one length does: the loop did run the accessors.
    expect(own(bytes)).toBe(1);
    expect(parsed).toBeGreaterThan(0);
  });

  test.each(FIXTURES)("%s: no parser throws on 10,000 seeded mutations", (name, offset, own) => {
    const original = payload(name, offset);
    const next = prng(TEST_SEED);
    const bytes = new Uint8Array(original.length);
    let parsed = 0;
    for (let i = 0; i < MUTATIONS; i++) {
      bytes.set(original);
      const flips = 1 + (next() % 4);
      for (let f = 0; f < flips; f++) {
        // Half the flips hit length-bearing small values, where walks go wrong.
        const r = next();
        bytes[r % bytes.length] = r & 0x100000 ? (r >>> 24) & 0x0f : r >>> 24;
      }
      const len = next() % 4 === 0 ? next() % (bytes.length + 1) : bytes.length;
      const input = bytes.subarray(0, len);
      parsed += own(input);
      // Cross-protocol: every parser meets every input.
      exerciseDhcp(input);
      exerciseDhcpv6(input);
      exerciseNdp(input);
      if (i % 16 === 0) exerciseNames(input);
    }
    expect(parsed).toBeGreaterThan(MUTATIONS / 4);
  });
});
