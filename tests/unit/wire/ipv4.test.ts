// SPDX-License-Identifier: GPL-2.0-or-later
// ipv4.test.ts - Ipv4View against ICMP and TCP frames of the upstream capture

import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { formatIpv4, parseIpv4 } from "../../../src/wire/addr.ts";
import { IpProtocol, Ipv4View, ipProtocolName } from "../../../src/wire/ipv4.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url)));
const ECHO_REQUEST = fixture("icmp_echo_request.bin").subarray(14);

// Values as tshark -V shows them for each frame.
test.each([
  ["icmp_echo_request.bin", 84, 0xe3bd, true, 64, IpProtocol.ICMP, 0x0266, "198.51.100.10", "198.51.100.20"],
  ["icmp_echo_reply.bin", 84, 0x0000, false, 255, IpProtocol.ICMP, 0x6723, "198.51.100.20", "198.51.100.10"],
  ["tcp_syn.bin", 60, 0x1326, true, 64, IpProtocol.TCP, 0xd323, "198.51.100.10", "198.51.100.1"],
  ["tcp_synack.bin", 48, 0x0000, false, 255, IpProtocol.TCP, 0x6755, "198.51.100.1", "198.51.100.10"],
  ["tcp_data.bin", 1440, 0x1328, true, 64, IpProtocol.TCP, 0xcdbd, "198.51.100.10", "198.51.100.1"],
  ["tcp_fin.bin", 40, 0x1329, true, 64, IpProtocol.TCP, 0xd334, "198.51.100.10", "198.51.100.1"],
  ["tcp_rst.bin", 40, 0x133a, true, 64, IpProtocol.TCP, 0xd323, "198.51.100.10", "198.51.100.1"],
] as const)("parse() deconstructs %s", (name, totalLength, id, df, ttl, protocol, sum, src, dst) => {
  const ip = Ipv4View.parse(fixture(name).subarray(14))!;
  expect(ip.version).toBe(4);
  expect(ip.headerLength).toBe(20);
  expect(ip.dscp).toBe(0);
  expect(ip.ecn).toBe(0);
  expect(ip.totalLength).toBe(totalLength);
  expect(ip.identification).toBe(id);
  expect(ip.dontFragment).toBe(df);
  expect(ip.moreFragments).toBe(false);
  expect(ip.fragmentOffsetBytes).toBe(0);
  expect(ip.isFragment).toBe(false);
  expect(ip.ttl).toBe(ttl);
  expect(ip.protocol).toBe(protocol);
  expect(ip.headerChecksum).toBe(sum);
  expect(formatIpv4(ip.srcAddr)).toBe(src);
  expect(formatIpv4(ip.dstAddr)).toBe(dst);
  expect(ip.options.byteLength).toBe(0);
  expect(ip.payload.byteLength).toBe(totalLength - 20);
  expect(ip.verifyChecksum()).toBe(true);
});

test.each([
  ["icmp_echo_request.bin", 0xe3bd, true, 64, IpProtocol.ICMP],
  ["icmp_echo_reply.bin", 0, false, 255, IpProtocol.ICMP],
  ["tcp_syn.bin", 0x1326, true, 64, IpProtocol.TCP],
  ["tcp_synack.bin", 0, false, 255, IpProtocol.TCP],
  ["tcp_data.bin", 0x1328, true, 64, IpProtocol.TCP],
])("emit() constructs the header of %s byte for byte, checksum included", (name, identification, dontFragment, ttl, protocol) => {
  const original = fixture(name).subarray(14);
  const parsed = Ipv4View.parse(original)!;
  const buf = new Uint8Array(24);
  const len = Ipv4View.emit(buf, 2, {
    src: parsed.srcAddr,
    dst: parsed.dstAddr,
    protocol,
    payloadLength: parsed.totalLength - 20,
    ttl,
    identification,
    dontFragment,
  });
  expect(len).toBe(20);
  expect(buf.subarray(2, 22)).toEqual(original.subarray(0, 20));
});

test("emit() defaults to TTL 64, Don't Fragment, identification 0 and TOS 0", () => {
  const buf = new Uint8Array(20);
  Ipv4View.emit(buf, 0, { src: parseIpv4("203.0.113.1")!, dst: parseIpv4("203.0.113.2")!, protocol: 17, payloadLength: 8 });
  const ip = Ipv4View.parse(Uint8Array.from([...buf, ...new Uint8Array(8)]))!;
  expect([ip.ttl, ip.dontFragment, ip.identification, ip.dscp, ip.totalLength]).toEqual([64, true, 0, 0, 28]);
  expect(ip.verifyChecksum()).toBe(true);
  expect(() => Ipv4View.emit(new Uint8Array(19), 0, { src: buf, dst: buf, protocol: 0, payloadLength: 0 })).toThrow(RangeError);
});

test.each(Array.from({ length: 20 }, (_, n) => n))("parse() rejects a packet truncated to %i bytes", (n) => {
  expect(Ipv4View.parse(ECHO_REQUEST.subarray(0, n))).toBeNull();
});

test("parse() rejects every truncation below the total length", () => {
  for (let n = 0; n < 84; n++) expect(Ipv4View.parse(ECHO_REQUEST.subarray(0, n))).toBeNull();
  expect(Ipv4View.parse(ECHO_REQUEST.subarray(0, 84))).not.toBeNull();
});

test.each([
  ["version 6", 0, 0x65],
  ["version 0", 0, 0x05],
  ["IHL 0", 0, 0x40],
  ["IHL 4", 0, 0x44],
  ["IHL 15 with 84 bytes but total length 20", 2, -1],
  ["total length 85 in an 84-byte buffer", 3, 85],
  ["total length 19, below the header", 3, 19],
  ["total length 0", 3, 0],
])("parse() rejects an impossible header: %s", (_what, offset, value) => {
  const bytes = ECHO_REQUEST.slice();
  if (value === -1) {
    bytes[0] = 0x4f;
    bytes[2] = 0;
    bytes[3] = 20;
  } else {
    bytes[offset] = value;
  }
  expect(Ipv4View.parse(bytes)).toBeNull();
});

test("payload stops at the total length, leaving link-layer padding out", () => {
  const padded = new Uint8Array(84 + 10);
  padded.set(ECHO_REQUEST);
  const ip = Ipv4View.parse(padded)!;
  expect(ip.payload.byteLength).toBe(64);
  expect(ip.payload.byteOffset).toBe(20);
});

test("options lie between the fixed header and the payload", () => {
  // 24-byte header: one NOP option word (RFC 791 option type 1)
  const bytes = new Uint8Array(28);
  Ipv4View.emit(bytes, 0, { src: parseIpv4("198.51.100.1")!, dst: parseIpv4("198.51.100.2")!, protocol: 17, payloadLength: 8 });
  bytes[0] = 0x46;
  bytes.fill(1, 20, 24);
  const ip = Ipv4View.parse(bytes)!;
  expect(ip.verifyChecksum()).toBe(false);
  ip.fillChecksum();
  expect(ip.verifyChecksum()).toBe(true);
  expect(ip.headerLength).toBe(24);
  expect(ip.options).toEqual(Uint8Array.from([1, 1, 1, 1]));
  expect(ip.payload.byteLength).toBe(4);
});

test.each([
  ["More Fragments", 0x20, 0x00, true, true, 0],
  ["offset 5 (40 bytes)", 0x00, 0x05, false, true, 40],
  ["Don't Fragment only", 0x40, 0x00, false, false, 0],
  ["largest offset", 0x1f, 0xff, false, true, 8191 * 8],
])("fragment fields read %s", (_what, hi, lo, more, isFragment, offsetBytes) => {
  const bytes = ECHO_REQUEST.slice();
  bytes[6] = hi;
  bytes[7] = lo;
  const ip = Ipv4View.parse(bytes)!;
  expect(ip.moreFragments).toBe(more);
  expect(ip.isFragment).toBe(isFragment);
  expect(ip.fragmentOffsetBytes).toBe(offsetBytes);
});

test("verifyChecksum() detects a change of any single header byte", () => {
  for (let i = 0; i < 20; i++) {
    for (const flip of [0x01, 0x80, 0xff]) {
      const bytes = ECHO_REQUEST.slice();
      bytes[i]! ^= flip;
      const ip = Ipv4View.parse(bytes);
      if (ip) expect(ip.verifyChecksum()).toBe(false);
    }
  }
});

test("setters rewrite fields in place and fillChecksum() makes the header valid again", () => {
  const bytes = ECHO_REQUEST.slice();
  const ip = Ipv4View.parse(bytes)!;
  ip.ttl = 255;
  ip.srcAddr = parseIpv4("198.51.100.20")!;
  ip.dstAddr = parseIpv4("198.51.100.10")!;
  ip.identification = 0;
  expect(ip.verifyChecksum()).toBe(false);
  ip.fillChecksum();
  expect(ip.verifyChecksum()).toBe(true);
  expect(formatIpv4(bytes.subarray(12, 16))).toBe("198.51.100.20");
  ip.protocol = IpProtocol.UDP;
  ip.totalLength = 28;
  expect([bytes[9], bytes[2], bytes[3]]).toEqual([17, 0, 28]);
  ip.headerChecksum = 0xbeef;
  expect([bytes[10], bytes[11]]).toEqual([0xbe, 0xef]);
});

test("wrap() re-points the view and leaves it unchanged on failure", () => {
  const ip = new Ipv4View();
  expect(ip.wrap(ECHO_REQUEST)).toBe(ip);
  expect(ip.wrap(ECHO_REQUEST.subarray(0, 30))).toBeNull();
  expect(ip.totalLength).toBe(84);
  expect(ip.wrap(fixture("tcp_fin.bin").subarray(14))!.protocol).toBe(IpProtocol.TCP);
});

test.each([
  [6, "TCP"],
  [17, "UDP"],
  [58, "ICMPV6"],
  [0, "HOP_BY_HOP"],
  [132, "0x84"],
])("ipProtocolName(%p) is %p", (value, name) => {
  expect(ipProtocolName(value)).toBe(name);
});

test("copySrcAddr() and copyDstAddr() copy what srcAddr and dstAddr show, at an offset", () => {
  const ip = Ipv4View.parse(ECHO_REQUEST)!;
  const out = new Uint8Array(10).fill(0xee);
  expect(ip.copySrcAddr(out, 3)).toBe(out);
  expect([...out.subarray(3, 7)]).toEqual([...ip.srcAddr]);
  expect(out[2]).toBe(0xee);
  expect(out[7]).toBe(0xee);
  expect(ip.copyDstAddr(new Uint8Array(4))).toEqual(ip.dstAddr);
});
