// SPDX-License-Identifier: GPL-2.0-or-later
// robustness.test.ts - every wire parser against truncated and randomly mutated fixtures
//
// Parsers see the bytes through a proxy that throws on any index read or write
// outside the array, so a read past the end, which a plain typed array would
// turn silently into undefined, fails the test instead.

import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { ArpView } from "../../../src/wire/arp.ts";
import { EtherType, EthernetView } from "../../../src/wire/ethernet.ts";
import { IcmpView } from "../../../src/wire/icmp.ts";
import { Icmpv6View } from "../../../src/wire/icmpv6.ts";
import { IpProtocol, Ipv4View } from "../../../src/wire/ipv4.ts";
import { Ipv6View } from "../../../src/wire/ipv6.ts";
import { TcpOptions, TcpView } from "../../../src/wire/tcp.ts";
import { UdpView } from "../../../src/wire/udp.ts";
import { TEST_SEED } from "../../harness/setup.ts";

const FIXTURE_DIR = new URL("../../fixtures/", import.meta.url);
const FIXTURES = readdirSync(FIXTURE_DIR)
  .filter((name) => name.endsWith(".bin"))
  .sort()
  .map((name) => ({ name, bytes: new Uint8Array(readFileSync(new URL(name, FIXTURE_DIR))) }));

/** Returns `bytes` behind a proxy that throws RangeError on an out-of-range index. */
function strict(bytes: Uint8Array): Uint8Array {
  const inRange = (prop: string | symbol) => {
    if (typeof prop !== "string") return true;
    const index = Number(prop);
    if (!Number.isInteger(index) || String(index) !== prop) return true; // not an index
    if (index < 0 || index >= bytes.byteLength) throw new RangeError(`index ${index} outside ${bytes.byteLength} bytes`);
    return true;
  };
  return new Proxy(bytes, {
    get(target, prop) {
      inRange(prop);
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
    set(target, prop, value) {
      inRange(prop);
      return Reflect.set(target, prop, value, target);
    },
  });
}

/** Calls every getter of `view`'s class, so an accessor that throws fails the test. */
function touchGetters(view: object): void {
  const proto = Object.getPrototypeOf(view) as object;
  for (const [name, desc] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
    if (desc.get) Reflect.get(view, name);
  }
}

/**
 * Throws unless a view's subarray has the length its header claims: subarray()
 * clamps silently, so a view that parsed must never need it to.
 */
function exact(what: string, view: Uint8Array, claimed: number): void {
  if (view.byteLength !== claimed) throw new RangeError(`${what} is ${view.byteLength} bytes, header says ${claimed}`);
}

/** Successful parses per view, to show the fuzzing reaches every layer. */
const reached: Record<string, number> = {};
const count = (name: string) => (reached[name] = (reached[name] ?? 0) + 1);

function transport(protocol: number, bytes: Uint8Array, src: Uint8Array, dst: Uint8Array): void {
  // Every transport parser sees the bytes, whatever the protocol field says.
  const tcp = TcpView.parse(strict(bytes));
  if (tcp) {
    count(protocol === IpProtocol.TCP ? "tcp" : "tcp (other protocol)");
    touchGetters(tcp);
    exact("TCP options", tcp.options, tcp.headerLength - TcpView.MIN_HEADER_LEN);
    tcp.readOptions(new TcpOptions());
    tcp.verifyChecksum(src, dst);
    tcp.fillChecksum(src, dst);
  }
  const udp = UdpView.parse(strict(bytes));
  if (udp) {
    count(protocol === IpProtocol.UDP ? "udp" : "udp (other protocol)");
    touchGetters(udp);
    exact("UDP payload", udp.payload, udp.length - UdpView.HEADER_LEN);
    udp.verifyChecksum(src, dst);
    udp.fillChecksum(src, dst);
  }
  const icmp = IcmpView.parse(strict(bytes));
  if (icmp) {
    count("icmp");
    touchGetters(icmp);
    icmp.verifyChecksum();
  }
  const icmpv6 = Icmpv6View.parse(strict(bytes));
  if (icmpv6) {
    count("icmpv6");
    touchGetters(icmpv6);
    icmpv6.verifyChecksum(src, dst);
  }
}

/** Parses `frame` layer by layer with every parser that could apply, touching every accessor. */
function dissect(frame: Uint8Array): void {
  const eth = EthernetView.parse(strict(frame));
  if (!eth) return;
  count("ethernet");
  touchGetters(eth);
  const l3 = frame.subarray(EthernetView.HEADER_LEN);
  const arp = ArpView.parse(strict(l3));
  if (arp) {
    count("arp");
    touchGetters(arp);
    exact("ARP sender hardware address", arp.senderHardwareAddr, arp.hardwareLength);
    exact("ARP target hardware address", arp.targetHardwareAddr, arp.hardwareLength);
    exact("ARP sender protocol address", arp.senderProtocolAddr, arp.protocolLength);
    exact("ARP target protocol address", arp.targetProtocolAddr, arp.protocolLength);
  }
  const ip4 = Ipv4View.parse(strict(l3));
  if (ip4) {
    count("ipv4");
    touchGetters(ip4);
    exact("IPv4 options", ip4.options, ip4.headerLength - Ipv4View.MIN_HEADER_LEN);
    exact("IPv4 payload", ip4.payload, ip4.totalLength - ip4.headerLength);
    ip4.verifyChecksum();
    transport(ip4.protocol, ip4.payload, ip4.srcAddr, ip4.dstAddr);
  }
  const ip6 = Ipv6View.parse(strict(l3));
  if (ip6) {
    count("ipv6");
    touchGetters(ip6);
    exact("IPv6 payload", ip6.payload, ip6.payloadLength);
    exact("IPv6 upper layer", ip6.upperLayerPayload, Ipv6View.HEADER_LEN + ip6.payloadLength - ip6.upperLayerOffset);
    transport(ip6.upperLayerProtocol, ip6.upperLayerPayload, ip6.srcAddr, ip6.dstAddr);
  }
  if (eth.etherType !== EtherType.IPV4 && eth.etherType !== EtherType.IPV6) count("other ethertype");
}

test("the strict proxy catches a read past the end", () => {
  expect(() => strict(new Uint8Array(2))[2]).toThrow(RangeError);
  expect(strict(new Uint8Array(2)).subarray(1).byteLength).toBe(1);
});

test.each(FIXTURES.map((f) => [f.name, f.bytes] as const))("no parser throws on %s truncated at any length", (_name, bytes) => {
  for (let n = 0; n <= bytes.byteLength; n++) {
    const cut = bytes.slice(0, n);
    expect(() => dissect(cut)).not.toThrow();
    // Parsers also start at every offset, so each sees headers it was not meant for.
    expect(() => dissect(concatHeader(bytes.subarray(n)))).not.toThrow();
  }
});

/** Returns `tail` behind a copy of an IPv4 Ethernet header, so that layer-3 parsers see it. */
function concatHeader(tail: Uint8Array): Uint8Array {
  const frame = new Uint8Array(EthernetView.HEADER_LEN + tail.byteLength);
  frame[12] = 0x08;
  frame.set(tail, EthernetView.HEADER_LEN);
  return frame;
}

test(`no parser throws on 10,000 mutated fixtures (seed ${TEST_SEED})`, () => {
  for (const key in reached) delete reached[key];
  let state = TEST_SEED >>> 0;
  // xorshift32: small, fast and the same sequence on every run
  const random = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>>= 0);
  };
  for (let round = 0; round < 10_000; round++) {
    const fixture = FIXTURES[random() % FIXTURES.length]!;
    // Half the rounds also cut the frame short, which most length checks refuse.
    const length = random() & 1 ? fixture.bytes.byteLength : 1 + (random() % fixture.bytes.byteLength);
    const frame = fixture.bytes.slice(0, length);
    const mutations = 1 + (random() % 4);
    for (let m = 0; m < mutations; m++) {
      // Aim half the mutations at the first 80 bytes, where the headers are.
      const span = random() & 1 ? Math.min(80, frame.byteLength) : frame.byteLength;
      frame[random() % span] = random() & 0xff;
    }
    try {
      dissect(frame);
    } catch (error) {
      throw new Error(`round ${round} (${fixture.name}, ${frame.byteLength} bytes ${Buffer.from(frame).toString("hex")}): ${error}`);
    }
  }
  for (const layer of ["ethernet", "arp", "ipv4", "ipv6", "tcp", "udp", "icmp", "icmpv6"]) {
    expect(reached[layer] ?? 0).toBeGreaterThan(100);
  }
});
