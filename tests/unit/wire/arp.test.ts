// SPDX-License-Identifier: GPL-2.0-or-later
// arp.test.ts - ArpView against the request and reply of the upstream capture

import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { formatIpv4, formatMac, parseIpv4, parseMac } from "../../../src/wire/addr.ts";
import { ArpHardware, ArpOperation, ArpView, arpOperationName } from "../../../src/wire/arp.ts";
import { EtherType } from "../../../src/wire/ethernet.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url)));
const REQUEST = fixture("arp_request.bin").subarray(14);
const REPLY = fixture("arp_reply.bin").subarray(14);

test.each([
  ["request", REQUEST, ArpOperation.REQUEST, "d6:e6:58:3d:e1:d3", "198.51.100.10", "00:00:00:00:00:00", "198.51.100.20"],
  ["reply", REPLY, ArpOperation.REPLY, "92:d3:de:b1:fb:1c", "198.51.100.20", "d6:e6:58:3d:e1:d3", "198.51.100.10"],
])("parse() deconstructs the %s fixture", (_kind, bytes, operation, sha, spa, tha, tpa) => {
  const arp = ArpView.parse(bytes)!;
  expect(arp.hardwareType).toBe(ArpHardware.ETHERNET);
  expect(arp.protocolType).toBe(EtherType.IPV4);
  expect(arp.hardwareLength).toBe(6);
  expect(arp.protocolLength).toBe(4);
  expect(arp.isEthernetIpv4).toBe(true);
  expect(arp.operation).toBe(operation);
  expect(formatMac(arp.senderHardwareAddr)).toBe(sha);
  expect(formatIpv4(arp.senderProtocolAddr)).toBe(spa);
  expect(formatMac(arp.targetHardwareAddr)).toBe(tha);
  expect(formatIpv4(arp.targetProtocolAddr)).toBe(tpa);
});

test.each([
  ["request", REQUEST, ArpOperation.REQUEST, "d6:e6:58:3d:e1:d3", "198.51.100.10", "00:00:00:00:00:00", "198.51.100.20"],
  ["reply", REPLY, ArpOperation.REPLY, "92:d3:de:b1:fb:1c", "198.51.100.20", "d6:e6:58:3d:e1:d3", "198.51.100.10"],
])("emit() constructs the %s fixture byte for byte", (_kind, bytes, operation, sha, spa, tha, tpa) => {
  const buf = new Uint8Array(28);
  const len = ArpView.emit(buf, 0, {
    operation,
    senderHardwareAddr: parseMac(sha)!,
    senderProtocolAddr: parseIpv4(spa)!,
    targetHardwareAddr: parseMac(tha)!,
    targetProtocolAddr: parseIpv4(tpa)!,
  });
  expect(len).toBe(28);
  expect(buf).toEqual(bytes);
});

test("emit() throws RangeError when the buffer has no room", () => {
  const mac = new Uint8Array(6);
  const ip = new Uint8Array(4);
  const fields = { operation: 1, senderHardwareAddr: mac, senderProtocolAddr: ip, targetHardwareAddr: mac, targetProtocolAddr: ip };
  expect(() => ArpView.emit(new Uint8Array(27), 0, fields)).toThrow(RangeError);
});

test.each(Array.from({ length: 28 }, (_, n) => n))("parse() rejects the request truncated to %i bytes", (n) => {
  expect(ArpView.parse(REQUEST.subarray(0, n))).toBeNull();
});

test.each([
  ["hardware length 255", 4, 255],
  ["protocol length 16", 5, 16],
  ["hardware length 7", 4, 7],
])("parse() rejects addresses longer than the packet (%s)", (_what, offset, value) => {
  const bytes = REQUEST.slice();
  bytes[offset] = value;
  expect(ArpView.parse(bytes)).toBeNull();
});

test("parse() follows the length fields for other address sizes", () => {
  // hardware 8 bytes (0x11..), protocol 2 bytes (0x22..): 8 + 2 * 10 = 28 bytes
  const bytes = Uint8Array.from([
    0x00, 0x06, 0x12, 0x34, 8, 2, 0x00, 0x01,
    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x22, 0x22,
    0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x44, 0x44,
  ]);
  const arp = ArpView.parse(bytes)!;
  expect(arp.isEthernetIpv4).toBe(false);
  expect(arp.senderHardwareAddr).toEqual(new Uint8Array(8).fill(0x11));
  expect(arp.senderProtocolAddr).toEqual(new Uint8Array(2).fill(0x22));
  expect(arp.targetHardwareAddr).toEqual(new Uint8Array(8).fill(0x33));
  expect(arp.targetProtocolAddr).toEqual(new Uint8Array(2).fill(0x44));
});

test.each([
  ["hardware type", 0, 0x00],
  ["protocol type", 2, 0x86],
])("isEthernetIpv4 is false with another %s", (_what, offset, value) => {
  const bytes = REQUEST.slice();
  bytes[offset] = value;
  bytes[offset + 1] = value;
  expect(ArpView.parse(bytes)!.isEthernetIpv4).toBe(false);
});

test("operation can be rewritten in place and wrap() re-points the view", () => {
  const bytes = REQUEST.slice();
  const arp = new ArpView();
  expect(arp.wrap(bytes)).toBe(arp);
  arp.operation = ArpOperation.REPLY;
  expect([bytes[6], bytes[7]]).toEqual([0, 2]);
  expect(arp.wrap(REQUEST.subarray(0, 27))).toBeNull();
  expect(arp.bytes).toBe(bytes);
  expect(arp.wrap(REPLY)!.operation).toBe(ArpOperation.REPLY);
});

test.each([
  [1, "REQUEST"],
  [2, "REPLY"],
  [9, "0x0009"],
])("arpOperationName(%p) is %p", (value, name) => {
  expect(arpOperationName(value)).toBe(name);
});
