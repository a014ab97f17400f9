// SPDX-License-Identifier: GPL-2.0-or-later
// icmpv6.test.ts - Icmpv6View against echo and MLD frames of the upstream capture

import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { parseIpv6 } from "../../../src/wire/addr.ts";
import { Icmpv6Type, Icmpv6View, icmpv6TypeName } from "../../../src/wire/icmpv6.ts";
import { Ipv6View } from "../../../src/wire/ipv6.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url)));
const GUEST = parseIpv6("2001:db8::d4e6:58ff:fe3d:e1d3")!;
const PEER = parseIpv6("2001:db8::20")!;
// Ethernet (14) and IPv6 (40) headers come first.
const REQUEST = fixture("icmpv6_echo_request.bin").subarray(54);
const REPLY = fixture("icmpv6_echo_reply.bin").subarray(54);

test.each([
  ["request", REQUEST, Icmpv6Type.ECHO_REQUEST, 0x828b, GUEST, PEER],
  ["reply", REPLY, Icmpv6Type.ECHO_REPLY, 0x818b, PEER, GUEST],
])("parse() deconstructs the echo %s", (_kind, bytes, type, sum, src, dst) => {
  const icmp = Icmpv6View.parse(bytes)!;
  expect(icmp.type).toBe(type);
  expect(icmp.code).toBe(0);
  expect(icmp.checksum).toBe(sum);
  expect(icmp.identifier).toBe(0x0010);
  expect(icmp.sequenceNumber).toBe(0);
  expect(icmp.isEcho).toBe(true);
  expect(icmp.payload.byteLength).toBe(56);
  expect(icmp.verifyChecksum(src, dst)).toBe(true);
  expect(icmp.verifyChecksum(dst, PEER.map((b, i) => (i === 15 ? b + 1 : b)))).toBe(false);
});

test("the MLDv2 report behind a hop-by-hop header has a correct checksum", () => {
  const ip = Ipv6View.parse(fixture("ipv6_mld_report.bin").subarray(14))!;
  const icmp = Icmpv6View.parse(ip.upperLayerPayload)!;
  expect(icmp.type).toBe(Icmpv6Type.MLDV2_REPORT);
  expect(icmp.checksum).toBe(0x8d79);
  expect(icmp.isEcho).toBe(false);
  expect(icmp.verifyChecksum(ip.srcAddr, ip.dstAddr)).toBe(true);
});

test.each([
  ["request", REQUEST, Icmpv6Type.ECHO_REQUEST, GUEST, PEER],
  ["reply", REPLY, Icmpv6Type.ECHO_REPLY, PEER, GUEST],
])("emitEcho() constructs the echo %s byte for byte, checksum included", (_kind, bytes, type, src, dst) => {
  const buf = new Uint8Array(bytes.byteLength + 1);
  buf.set(bytes.subarray(8), 9);
  const len = Icmpv6View.emitEcho(buf, 1, { type, identifier: 0x0010, sequenceNumber: 0, src, dst, payloadLength: 56 });
  expect(len).toBe(8);
  expect(buf.subarray(1)).toEqual(bytes);
});

test("emitEcho() throws RangeError when the payload does not fit", () => {
  const fields = { type: 128, identifier: 1, sequenceNumber: 1, src: GUEST, dst: PEER, payloadLength: 100 };
  expect(() => Icmpv6View.emitEcho(new Uint8Array(64), 0, fields)).toThrow(RangeError);
});

test("turning the request into a reply in place gives the reply fixture", () => {
  const bytes = REQUEST.slice();
  const icmp = Icmpv6View.parse(bytes)!;
  icmp.type = Icmpv6Type.ECHO_REPLY;
  icmp.fillChecksum(PEER, GUEST);
  expect(bytes).toEqual(REPLY);
  expect(icmp.verifyChecksum(PEER, GUEST)).toBe(true);
});

test.each(Array.from({ length: 8 }, (_, n) => n))("parse() rejects a message truncated to %i bytes", (n) => {
  expect(Icmpv6View.parse(REQUEST.subarray(0, n))).toBeNull();
});

test("verifyChecksum() detects a change of any single byte, and of the pseudo-header length", () => {
  for (let i = 0; i < REQUEST.byteLength; i++) {
    const bytes = REQUEST.slice();
    bytes[i]! ^= 0x80 >>> (i % 8);
    expect(Icmpv6View.parse(bytes)!.verifyChecksum(GUEST, PEER)).toBe(false);
  }
  const longer = new Uint8Array(REQUEST.byteLength + 2);
  longer.set(REQUEST);
  expect(Icmpv6View.parse(longer)!.verifyChecksum(GUEST, PEER)).toBe(false);
});

test("setters write in place and wrap() leaves the view unchanged on failure", () => {
  const bytes = REQUEST.slice();
  const icmp = new Icmpv6View();
  expect(icmp.wrap(bytes)).toBe(icmp);
  icmp.identifier = 0xbeef;
  icmp.sequenceNumber = 7;
  icmp.code = 1;
  icmp.checksum = 0;
  expect(Array.from(bytes.subarray(0, 8))).toEqual([128, 1, 0, 0, 0xbe, 0xef, 0, 7]);
  expect(icmp.restOfHeader).toEqual(Uint8Array.from([0xbe, 0xef, 0, 7]));
  expect(icmp.wrap(new Uint8Array(3))).toBeNull();
  expect(icmp.bytes).toBe(bytes);
});

test.each([
  [128, "ECHO_REQUEST"],
  [135, "NEIGHBOR_SOLICITATION"],
  [143, "MLDV2_REPORT"],
  [200, "0xc8"],
])("icmpv6TypeName(%p) is %p", (value, name) => {
  expect(icmpv6TypeName(value)).toBe(name);
});
