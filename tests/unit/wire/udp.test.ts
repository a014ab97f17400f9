// SPDX-License-Identifier: GPL-2.0-or-later
// udp.test.ts - UdpView against the UDP echo over IPv6 of the upstream capture

import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { parseIpv4, parseIpv6 } from "../../../src/wire/addr.ts";
import { fold, pseudoSum4, pseudoSum6 } from "../../../src/wire/checksum.ts";
import { UdpView } from "../../../src/wire/udp.ts";
import { completeChecksum } from "../../../src/wire/virtio_net.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url)));
const GUEST = parseIpv6("2001:db8::d4e6:58ff:fe3d:e1d3")!;
const PEER = parseIpv6("2001:db8::20")!;
// Ethernet (14) and IPv6 (40) headers come first.
const ECHO = fixture("udp6_echo.bin").subarray(54);
const ECHO_REPLY = fixture("udp6_echo_reply.bin").subarray(54);
const V4_SRC = parseIpv4("198.51.100.10")!;
const V4_DST = parseIpv4("203.0.113.5")!;

test.each([
  ["echo", ECHO, 52241, 7002, GUEST, PEER],
  ["echo reply", ECHO_REPLY, 7002, 52241, PEER, GUEST],
])("parse() deconstructs the %s", (_kind, bytes, srcPort, dstPort, src, dst) => {
  const udp = UdpView.parse(bytes)!;
  expect(udp.srcPort).toBe(srcPort);
  expect(udp.dstPort).toBe(dstPort);
  expect(udp.length).toBe(19);
  expect(udp.checksum).toBe(0x0ffd);
  expect(new TextDecoder().decode(udp.payload)).toBe("udp fixture");
  expect(udp.verifyChecksum(src, dst)).toBe(true);
});

test.each([
  ["echo", ECHO, 52241, 7002, GUEST, PEER],
  ["echo reply", ECHO_REPLY, 7002, 52241, PEER, GUEST],
])("emit() constructs the %s byte for byte, checksum included", (_kind, bytes, srcPort, dstPort, src, dst) => {
  const buf = new Uint8Array(19 + 3);
  buf.set(new TextEncoder().encode("udp fixture"), 3 + 8);
  const len = UdpView.emit(buf, 3, { srcPort, dstPort, payloadLength: 11, src, dst });
  expect(len).toBe(8);
  expect(buf.subarray(3)).toEqual(bytes);
});

test("emit() without addresses leaves the checksum zero, and fillChecksum() then matches", () => {
  const buf = new Uint8Array(19);
  buf.set(ECHO.subarray(8), 8);
  UdpView.emit(buf, 0, { srcPort: 52241, dstPort: 7002, payloadLength: 11 });
  const udp = UdpView.parse(buf)!;
  expect(udp.checksum).toBe(0);
  udp.fillChecksum(GUEST, PEER);
  expect(buf).toEqual(ECHO);
  expect(() => UdpView.emit(new Uint8Array(10), 0, { srcPort: 1, dstPort: 2, payloadLength: 3 })).toThrow(RangeError);
});

test.each(Array.from({ length: 19 }, (_, n) => n))("parse() rejects the echo truncated to %i bytes", (n) => {
  expect(UdpView.parse(ECHO.subarray(0, n))).toBeNull();
});

test.each(Array.from({ length: 8 }, (_, n) => n))("parse() rejects a length field of %i, shorter than the header", (n) => {
  const bytes = ECHO.slice();
  bytes[4] = 0;
  bytes[5] = n;
  expect(UdpView.parse(bytes)).toBeNull();
});

test("parse() rejects a length field beyond the buffer and accepts trailing padding", () => {
  const bytes = ECHO.slice();
  bytes[5] = 20;
  expect(UdpView.parse(bytes)).toBeNull();
  const padded = new Uint8Array(30);
  padded.set(ECHO);
  const udp = UdpView.parse(padded)!;
  expect(udp.payload.byteLength).toBe(11);
  expect(udp.verifyChecksum(GUEST, PEER)).toBe(true);
});

test("a zero checksum means none over IPv4 and is refused over IPv6", () => {
  const bytes = ECHO.slice();
  const udp = UdpView.parse(bytes)!;
  udp.checksum = 0;
  expect(udp.verifyChecksum(V4_SRC, V4_DST)).toBe(true);
  expect(udp.verifyChecksum(GUEST, PEER)).toBe(false);
});

test.each([
  ["IPv4", V4_SRC, V4_DST],
  ["IPv6", GUEST, PEER],
])("a computed zero checksum is sent as 0xffff and verifies (%s)", (_family, src, dst) => {
  // Find the payload word that makes the sum come out as zero: the checksum
  // computed with that word zero is the one's complement needed.
  const bytes = new Uint8Array(12);
  UdpView.emit(bytes, 0, { srcPort: 4000, dstPort: 5000, payloadLength: 4, src, dst });
  const udp = UdpView.parse(bytes)!;
  const needed = udp.checksum;
  bytes[10] = needed >>> 8;
  bytes[11] = needed & 0xff;
  udp.fillChecksum(src, dst);
  expect(udp.checksum).toBe(0xffff);
  expect(udp.verifyChecksum(src, dst)).toBe(true);
});

test("checksums over IPv4 fill and verify, and fail for other addresses", () => {
  const bytes = new Uint8Array(8 + 5);
  bytes.set(new TextEncoder().encode("hello"), 8);
  UdpView.emit(bytes, 0, { srcPort: 53, dstPort: 33000, payloadLength: 5, src: V4_SRC, dst: V4_DST });
  const udp = UdpView.parse(bytes)!;
  expect(udp.checksum).not.toBe(0);
  expect(udp.verifyChecksum(V4_SRC, V4_DST)).toBe(true);
  expect(udp.verifyChecksum(V4_DST, parseIpv4("203.0.113.6")!)).toBe(false);
});

test("verifyChecksum() detects a change of any single byte", () => {
  for (let i = 0; i < ECHO.byteLength; i++) {
    if (i === 4 || i === 5) continue; // length bytes change what parse() accepts
    const bytes = ECHO.slice();
    bytes[i]! ^= 0x04;
    expect(UdpView.parse(bytes)!.verifyChecksum(GUEST, PEER)).toBe(false);
  }
});

test("setters write in place and wrap() leaves the view unchanged on failure", () => {
  const bytes = ECHO.slice();
  const udp = new UdpView();
  expect(udp.wrap(bytes)).toBe(udp);
  udp.srcPort = 53;
  udp.dstPort = 0xffff;
  udp.length = 10;
  expect(Array.from(bytes.subarray(0, 6))).toEqual([0, 53, 0xff, 0xff, 0, 10]);
  expect(udp.payload.byteLength).toBe(2);
  expect(udp.wrap(ECHO.subarray(0, 18))).toBeNull();
  expect(udp.bytes).toBe(bytes);
});

test("emit() with partial leaves the folded pseudo-header sum, which completing over the datagram turns into the checksum", () => {
  const full = new Uint8Array(19);
  full.set(ECHO.subarray(8), 8);
  UdpView.emit(full, 0, { srcPort: 52241, dstPort: 7002, payloadLength: 11, src: GUEST, dst: PEER });
  const partial = full.slice();
  UdpView.emit(partial, 0, { srcPort: 52241, dstPort: 7002, payloadLength: 11, src: GUEST, dst: PEER, partial: true });
  // The pseudo-header of the echo: both addresses, next header 17, length 19.
  expect(new UdpView().wrap(partial)!.checksum).toBe(fold(pseudoSum6(GUEST, PEER, 17, 19)));
  expect(completeChecksum(partial, 0, 6)).toBe(true);
  expect(partial).toEqual(ECHO);
});

test("emit() with partial needs room for the header only: the payload may be elsewhere, and the length covers it", () => {
  const head = new Uint8Array(8);
  UdpView.emit(head, 0, { srcPort: 1, dstPort: 2, payloadLength: 65000, src: V4_SRC, dst: V4_DST, partial: true });
  expect((head[4]! << 8) | head[5]!).toBe(65008);
  expect((head[6]! << 8) | head[7]!).toBe(fold(pseudoSum4(V4_SRC, V4_DST, 17, 65008)));
  expect(() => UdpView.emit(head, 0, { srcPort: 1, dstPort: 2, payloadLength: 65000, src: V4_SRC, dst: V4_DST })).toThrow(RangeError);
  expect(() => UdpView.emit(head, 0, { srcPort: 1, dstPort: 2, payloadLength: 65528, partial: true })).toThrow(RangeError);
});
