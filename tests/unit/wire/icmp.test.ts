// SPDX-License-Identifier: GPL-2.0-or-later
// icmp.test.ts - IcmpView against the echo request and reply of the upstream capture

import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { IcmpType, IcmpView, icmpTypeName } from "../../../src/wire/icmp.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url)));
// Ethernet (14) and IPv4 (20) headers come first; ICMP runs to the end of the frame.
const REQUEST = fixture("icmp_echo_request.bin").subarray(34);
const REPLY = fixture("icmp_echo_reply.bin").subarray(34);

test.each([
  ["request", REQUEST, IcmpType.ECHO_REQUEST, 0x63a6],
  ["reply", REPLY, IcmpType.ECHO_REPLY, 0x6ba6],
])("parse() deconstructs the echo %s", (_kind, bytes, type, sum) => {
  const icmp = IcmpView.parse(bytes)!;
  expect(icmp.type).toBe(type);
  expect(icmp.code).toBe(0);
  expect(icmp.checksum).toBe(sum);
  expect(icmp.identifier).toBe(0x000f);
  expect(icmp.sequenceNumber).toBe(0);
  expect(icmp.isEcho).toBe(true);
  expect(icmp.restOfHeader).toEqual(Uint8Array.from([0x00, 0x0f, 0x00, 0x00]));
  expect(icmp.payload.byteLength).toBe(56);
  expect(icmp.verifyChecksum()).toBe(true);
});

test.each([
  ["request", REQUEST, IcmpType.ECHO_REQUEST],
  ["reply", REPLY, IcmpType.ECHO_REPLY],
])("emitEcho() constructs the echo %s byte for byte, checksum included", (_kind, bytes, type) => {
  const buf = new Uint8Array(bytes.byteLength + 2);
  buf.set(bytes.subarray(8), 10); // the payload goes in first: the checksum covers it
  const len = IcmpView.emitEcho(buf, 2, { type, identifier: 0x000f, sequenceNumber: 0, payloadLength: 56 });
  expect(len).toBe(8);
  expect(buf.subarray(2)).toEqual(bytes);
});

test("emitEcho() throws RangeError when the payload does not fit", () => {
  expect(() => IcmpView.emitEcho(new Uint8Array(16), 0, { type: 8, identifier: 1, sequenceNumber: 1, payloadLength: 9 })).toThrow(RangeError);
});

test("turning the request into a reply in place gives the reply fixture", () => {
  const bytes = REQUEST.slice();
  const icmp = IcmpView.parse(bytes)!;
  icmp.type = IcmpType.ECHO_REPLY;
  expect(icmp.verifyChecksum()).toBe(false);
  icmp.fillChecksum();
  expect(bytes).toEqual(REPLY);
});

test.each(Array.from({ length: 8 }, (_, n) => n))("parse() rejects a message truncated to %i bytes", (n) => {
  expect(IcmpView.parse(REQUEST.subarray(0, n))).toBeNull();
});

test("parse() accepts any length from the 8-byte header up, and the payload follows it", () => {
  for (let n = 8; n <= REQUEST.byteLength; n++) expect(IcmpView.parse(REQUEST.subarray(0, n))?.payload.byteLength).toBe(n - 8);
});

test("verifyChecksum() detects a change of any single byte", () => {
  for (let i = 0; i < REQUEST.byteLength; i++) {
    const bytes = REQUEST.slice();
    bytes[i]! ^= 0x01 << (i % 8);
    expect(IcmpView.parse(bytes)!.verifyChecksum()).toBe(false);
  }
});

test("setters write in place and wrap() leaves the view unchanged on failure", () => {
  const bytes = REQUEST.slice();
  const icmp = new IcmpView();
  expect(icmp.wrap(bytes)).toBe(icmp);
  icmp.identifier = 0x1234;
  icmp.sequenceNumber = 0xfffe;
  icmp.code = 3;
  icmp.checksum = 0xabcd;
  expect(Array.from(bytes.subarray(0, 8))).toEqual([8, 3, 0xab, 0xcd, 0x12, 0x34, 0xff, 0xfe]);
  expect(icmp.wrap(bytes.subarray(0, 7))).toBeNull();
  expect(icmp.bytes).toBe(bytes);
  icmp.type = IcmpType.DESTINATION_UNREACHABLE;
  expect(icmp.isEcho).toBe(false);
});

test.each([
  [8, "ECHO_REQUEST"],
  [0, "ECHO_REPLY"],
  [3, "DESTINATION_UNREACHABLE"],
  [42, "0x2a"],
])("icmpTypeName(%p) is %p", (value, name) => {
  expect(icmpTypeName(value)).toBe(name);
});
