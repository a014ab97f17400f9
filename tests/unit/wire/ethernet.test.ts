// SPDX-License-Identifier: GPL-2.0-or-later
// ethernet.test.ts - EthernetView against frames from the upstream capture

import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { formatMac, parseMac } from "../../../src/wire/addr.ts";
import { EtherType, EthernetView, etherTypeName } from "../../../src/wire/ethernet.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url)));
const ARP_REQUEST = fixture("arp_request.bin");
const UDP6_ECHO = fixture("udp6_echo.bin");

test.each([
  ["arp_request.bin", "ff:ff:ff:ff:ff:ff", "d6:e6:58:3d:e1:d3", EtherType.ARP, 28],
  ["arp_reply.bin", "d6:e6:58:3d:e1:d3", "92:d3:de:b1:fb:1c", EtherType.ARP, 28],
  ["udp6_echo.bin", "92:d3:de:b1:fb:1c", "d6:e6:58:3d:e1:d3", EtherType.IPV6, 59],
  ["tcp_syn.bin", "92:d3:de:b1:fb:1c", "d6:e6:58:3d:e1:d3", EtherType.IPV4, 60],
  ["ipv6_mld_report.bin", "33:33:00:00:00:16", "d6:e6:58:3d:e1:d3", EtherType.IPV6, 76],
])("parse() reads the header of %s", (name, dst, src, etherType, payloadLength) => {
  const eth = EthernetView.parse(fixture(name))!;
  expect(formatMac(eth.dstMac)).toBe(dst);
  expect(formatMac(eth.srcMac)).toBe(src);
  expect(eth.etherType).toBe(etherType);
  expect(eth.payload.byteLength).toBe(payloadLength);
});

test("emit() writes the header of the ARP request fixture byte for byte", () => {
  const buf = new Uint8Array(20).fill(0xee);
  const len = EthernetView.emit(buf, 3, {
    dst: parseMac("ff:ff:ff:ff:ff:ff")!,
    src: parseMac("d6:e6:58:3d:e1:d3")!,
    etherType: EtherType.ARP,
  });
  expect(len).toBe(14);
  expect(buf.subarray(3, 17)).toEqual(ARP_REQUEST.subarray(0, 14));
  expect(buf[2]).toBe(0xee); // nothing written outside the header
  expect(buf[17]).toBe(0xee);
});

test("emit() throws RangeError when the buffer has no room", () => {
  expect(() => EthernetView.emit(new Uint8Array(13), 0, { dst: ARP_REQUEST, src: ARP_REQUEST, etherType: 0 })).toThrow(RangeError);
  expect(() => EthernetView.emit(new Uint8Array(20), 7, { dst: ARP_REQUEST, src: ARP_REQUEST, etherType: 0 })).toThrow(RangeError);
});

test.each(Array.from({ length: 14 }, (_, n) => n))("parse() rejects a frame truncated to %i bytes", (n) => {
  expect(EthernetView.parse(ARP_REQUEST.subarray(0, n))).toBeNull();
});

test("parse() accepts a bare header with an empty payload", () => {
  expect(EthernetView.parse(ARP_REQUEST.subarray(0, 14))?.payload.byteLength).toBe(0);
});

test("addresses and payload are views into the frame, and setters write in place", () => {
  const frame = UDP6_ECHO.slice();
  const eth = EthernetView.parse(frame)!;
  expect(eth.payload.buffer).toBe(frame.buffer);
  expect(eth.payload.byteOffset).toBe(14);
  eth.dstMac = eth.srcMac.slice();
  eth.srcMac = parseMac("9a:55:9a:55:9a:55")!;
  eth.etherType = EtherType.IPV4;
  expect(formatMac(frame.subarray(0, 6))).toBe("d6:e6:58:3d:e1:d3");
  expect(formatMac(frame.subarray(6, 12))).toBe("9a:55:9a:55:9a:55");
  expect([frame[12], frame[13]]).toEqual([0x08, 0x00]);
});

test("wrap() re-points the same view and leaves it unchanged on failure", () => {
  const eth = new EthernetView();
  expect(eth.wrap(ARP_REQUEST)).toBe(eth);
  expect(eth.etherType).toBe(EtherType.ARP);
  expect(eth.wrap(ARP_REQUEST.subarray(0, 10))).toBeNull();
  expect(eth.bytes).toBe(ARP_REQUEST);
  expect(eth.wrap(UDP6_ECHO)?.etherType).toBe(EtherType.IPV6);
});

test.each([
  [0x0800, "IPV4"],
  [0x86dd, "IPV6"],
  [0x0806, "ARP"],
  [0x88cc, "0x88cc"],
])("etherTypeName(%p) is %p", (value, name) => {
  expect(etherTypeName(value)).toBe(name);
});

test("srcMacIs() compares the source address in place", () => {
  const eth = EthernetView.parse(ARP_REQUEST)!;
  const mac = eth.srcMac.slice();
  expect(eth.srcMacIs(mac)).toBe(true);
  mac[5]! ^= 1;
  expect(eth.srcMacIs(mac)).toBe(false);
  expect(eth.srcMacIs(eth.dstMac)).toBe(false);
});
