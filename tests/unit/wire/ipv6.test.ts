// SPDX-License-Identifier: GPL-2.0-or-later
// ipv6.test.ts - Ipv6View and its extension header walk against frames of the upstream capture

import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { formatIpv6, parseIpv6 } from "../../../src/wire/addr.ts";
import { IpProtocol } from "../../../src/wire/ipv4.ts";
import { Ipv6View, MAX_EXTENSION_HEADERS } from "../../../src/wire/ipv6.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url)));
const ECHO_REQUEST = fixture("icmpv6_echo_request.bin").subarray(14);
const MLD_REPORT = fixture("ipv6_mld_report.bin").subarray(14);
const GUEST = "2001:db8::d4e6:58ff:fe3d:e1d3";

// Values as tshark -V shows them for each frame.
test.each([
  ["icmpv6_echo_request.bin", 0x9f5d9, 64, IpProtocol.ICMPV6, 255, GUEST, "2001:db8::20"],
  ["icmpv6_echo_reply.bin", 0, 64, IpProtocol.ICMPV6, 255, "2001:db8::20", GUEST],
  ["udp6_echo.bin", 0x539bf, 19, IpProtocol.UDP, 255, GUEST, "2001:db8::20"],
  ["udp6_echo_reply.bin", 0, 19, IpProtocol.UDP, 255, "2001:db8::20", GUEST],
  ["ipv6_mld_report.bin", 0, 36, IpProtocol.HOP_BY_HOP, 1, "::", "ff02::16"],
])("parse() deconstructs %s", (name, flowLabel, payloadLength, nextHeader, hopLimit, src, dst) => {
  const ip = Ipv6View.parse(fixture(name).subarray(14))!;
  expect(ip.version).toBe(6);
  expect(ip.trafficClass).toBe(0);
  expect(ip.flowLabel).toBe(flowLabel);
  expect(ip.payloadLength).toBe(payloadLength);
  expect(ip.nextHeader).toBe(nextHeader);
  expect(ip.hopLimit).toBe(hopLimit);
  expect(formatIpv6(ip.srcAddr)).toBe(src);
  expect(formatIpv6(ip.dstAddr)).toBe(dst);
  expect(ip.payload.byteLength).toBe(payloadLength);
  expect(ip.isFragment).toBe(false);
});

test("the walk steps over the MLD report's hop-by-hop header to ICMPv6 at offset 48", () => {
  const ip = Ipv6View.parse(MLD_REPORT)!;
  expect(ip.upperLayerProtocol).toBe(IpProtocol.ICMPV6);
  expect(ip.upperLayerOffset).toBe(48);
  expect(ip.upperLayerPayload.byteLength).toBe(28);
  expect(ip.upperLayerPayload[0]).toBe(143); // MLDv2 report
});

test("without extension headers the upper layer starts right after the fixed header", () => {
  const ip = Ipv6View.parse(ECHO_REQUEST)!;
  expect(ip.upperLayerProtocol).toBe(IpProtocol.ICMPV6);
  expect(ip.upperLayerOffset).toBe(40);
  expect(ip.upperLayerPayload).toEqual(ip.payload);
});

test.each([
  ["icmpv6_echo_request.bin", 0x9f5d9],
  ["udp6_echo.bin", 0x539bf],
  ["ipv6_mld_report.bin", 0],
])("emit() constructs the header of %s byte for byte", (name, flowLabel) => {
  const original = fixture(name).subarray(14);
  const parsed = Ipv6View.parse(original)!;
  const buf = new Uint8Array(44);
  const len = Ipv6View.emit(buf, 4, {
    src: parsed.srcAddr,
    dst: parsed.dstAddr,
    nextHeader: parsed.nextHeader,
    payloadLength: parsed.payloadLength,
    hopLimit: parsed.hopLimit,
    flowLabel,
  });
  expect(len).toBe(40);
  expect(buf.subarray(4)).toEqual(original.subarray(0, 40));
});

test("emit() defaults to hop limit 255 and writes the traffic class", () => {
  const buf = new Uint8Array(40);
  Ipv6View.emit(buf, 0, { src: parseIpv6("fe80::1")!, dst: parseIpv6("ff02::1")!, nextHeader: 59, payloadLength: 0, trafficClass: 0xb8 });
  const ip = Ipv6View.parse(buf)!;
  expect([ip.hopLimit, ip.trafficClass, ip.flowLabel, ip.upperLayerProtocol]).toEqual([255, 0xb8, 0, 59]);
  expect(() => Ipv6View.emit(new Uint8Array(39), 0, { src: buf, dst: buf, nextHeader: 0, payloadLength: 0 })).toThrow(RangeError);
});

test("parse() rejects every truncation of the echo request and of the MLD report", () => {
  for (const bytes of [ECHO_REQUEST, MLD_REPORT]) {
    for (let n = 0; n < bytes.byteLength; n++) expect(Ipv6View.parse(bytes.subarray(0, n))).toBeNull();
    expect(Ipv6View.parse(bytes)).not.toBeNull();
  }
});

test.each([
  ["version 4", 0, 0x40],
  ["version 0", 0, 0x00],
  ["payload length one past the buffer", 5, 65],
  ["payload length 0xff40", 4, 0xff],
])("parse() rejects an impossible header: %s", (_what, offset, value) => {
  const bytes = ECHO_REQUEST.slice();
  bytes[offset] = value;
  expect(Ipv6View.parse(bytes)).toBeNull();
});

test.each([
  ["a hop-by-hop header longer than the payload", 41, 5],
  ["a hop-by-hop header with no room for its length byte", 5, 0],
])("parse() rejects %s", (_what, offset, value) => {
  const bytes = MLD_REPORT.slice();
  bytes[offset] = value;
  expect(Ipv6View.parse(bytes.subarray(0, 40 + bytes[5]!))).toBeNull();
});

/** Returns an IPv6 packet (first Next Header `first`) carrying `headers` back to back, then 8 bytes of data. */
function withExtensions(first: number, headers: Uint8Array[]): Uint8Array {
  const payloadLength = headers.reduce((n, h) => n + h.byteLength, 0) + 8;
  const bytes = new Uint8Array(40 + payloadLength);
  Ipv6View.emit(bytes, 0, { src: parseIpv6("2001:db8::1")!, dst: parseIpv6("2001:db8::2")!, nextHeader: first, payloadLength });
  let at = 40;
  for (const h of headers) {
    bytes.set(h, at);
    at += h.byteLength;
  }
  return bytes;
}
const options = (next: number, units = 0) => {
  const h = new Uint8Array((units + 1) * 8);
  h[0] = next;
  h[1] = units;
  return h;
};
const fragment = (next: number, offsetUnits: number, more: boolean) => {
  const word = (offsetUnits << 3) | (more ? 1 : 0);
  return Uint8Array.from([next, 0, word >>> 8, word & 0xff, 0, 0, 0x12, 0x34]);
};

test.each([
  ["hop-by-hop, routing, destination options", IpProtocol.HOP_BY_HOP, [options(43), options(60, 1), options(6)], 6, 40 + 8 + 16 + 8, false],
  ["an atomic fragment (offset 0, no More Fragments)", IpProtocol.IPV6_FRAGMENT, [fragment(17, 0, false)], 17, 48, false],
  ["a first fragment", IpProtocol.IPV6_FRAGMENT, [fragment(17, 0, true)], 17, 48, true],
  ["a later fragment", IpProtocol.IPV6_FRAGMENT, [fragment(17, 3, false)], 17, 48, true],
  ["No Next Header after destination options", IpProtocol.IPV6_DESTINATION_OPTIONS, [options(59)], 59, 48, false],
  ["exactly MAX_EXTENSION_HEADERS headers", 60, Array.from({ length: MAX_EXTENSION_HEADERS }, (_, i) => options(i === MAX_EXTENSION_HEADERS - 1 ? 58 : 60)), 58, 40 + 8 * MAX_EXTENSION_HEADERS, false],
])("the walk crosses %s", (_what, first, headers, protocol, offset, isFragment) => {
  const ip = Ipv6View.parse(withExtensions(first, headers))!;
  expect(ip.upperLayerProtocol).toBe(protocol);
  expect(ip.upperLayerOffset).toBe(offset);
  expect(ip.isFragment).toBe(isFragment);
  expect(ip.upperLayerPayload.byteLength).toBe(8);
});

test("parse() refuses a chain longer than MAX_EXTENSION_HEADERS", () => {
  const chain = Array.from({ length: MAX_EXTENSION_HEADERS + 1 }, (_, i) => options(i === MAX_EXTENSION_HEADERS ? 58 : 60));
  expect(Ipv6View.parse(withExtensions(60, chain))).toBeNull();
});

test("parse() refuses a fragment header cut short by the payload length", () => {
  const bytes = withExtensions(IpProtocol.IPV6_FRAGMENT, [fragment(17, 0, false)]);
  bytes[5] = 6; // payload length 6 < 8 bytes of fragment header
  expect(Ipv6View.parse(bytes)).toBeNull();
});

test("setters rewrite fields in place and wrap() leaves the view unchanged on failure", () => {
  const bytes = ECHO_REQUEST.slice();
  const ip = new Ipv6View();
  expect(ip.wrap(bytes)).toBe(ip);
  ip.hopLimit = 64;
  ip.srcAddr = parseIpv6("2001:db8::20")!;
  ip.dstAddr = parseIpv6(GUEST)!;
  ip.nextHeader = IpProtocol.UDP;
  ip.payloadLength = 8;
  expect(bytes[7]).toBe(64);
  expect(bytes[6]).toBe(17);
  expect(formatIpv6(bytes.subarray(8, 24))).toBe("2001:db8::20");
  expect(formatIpv6(bytes.subarray(24, 40))).toBe(GUEST);
  expect(ip.wrap(MLD_REPORT.subarray(0, 60))).toBeNull();
  expect(ip.bytes).toBe(bytes);
  expect(ip.wrap(MLD_REPORT)!.upperLayerOffset).toBe(48);
});

test("copySrcAddr() and copyDstAddr() copy what srcAddr and dstAddr show, at an offset", () => {
  const ip = Ipv6View.parse(ECHO_REQUEST)!;
  const out = new Uint8Array(20).fill(0xee);
  expect(formatIpv6(ip.copySrcAddr(out, 2).subarray(2, 18))).toBe(GUEST);
  expect([out[1], out[18]]).toEqual([0xee, 0xee]);
  expect(ip.copyDstAddr(new Uint8Array(16))).toEqual(ip.dstAddr);
});
