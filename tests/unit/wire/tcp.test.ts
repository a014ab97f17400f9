// SPDX-License-Identifier: GPL-2.0-or-later
// tcp.test.ts - TcpView and TCP options against the connection in the upstream capture

import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { parseIpv4, parseIpv6 } from "../../../src/wire/addr.ts";
import { MAX_WINDOW_SCALE, TcpFlag, TcpOptions, TcpView, tcpFlagsName, type TcpFields } from "../../../src/wire/tcp.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url)));
// Ethernet (14) and IPv4 (20) headers come first; every segment fills its frame.
const segment = (name: string) => fixture(name).subarray(34);
const GUEST = parseIpv4("198.51.100.10")!;
const GATEWAY = parseIpv4("198.51.100.1")!;
const SYN = segment("tcp_syn.bin");
const SYN_ACK = segment("tcp_synack.bin");
const DATA = segment("tcp_data.bin");

// Values as tshark -V shows them (raw sequence numbers).
const CASES = [
  ["tcp_syn.bin", 57584, 7001, 3555273967, 0, 40, TcpFlag.SYN, 64240, 0x764a, 0, GUEST, GATEWAY],
  ["tcp_synack.bin", 7001, 57584, 4046800790, 3555273968, 28, TcpFlag.SYN | TcpFlag.ACK, 65535, 0x0f58, 0, GATEWAY, GUEST],
  ["tcp_data.bin", 57584, 7001, 3555273968, 4046800791, 20, TcpFlag.PSH | TcpFlag.ACK, 63, 0x049b, 1400, GUEST, GATEWAY],
  ["tcp_fin.bin", 57584, 7001, 3555275368, 4046800791, 20, TcpFlag.FIN | TcpFlag.ACK, 63, 0x1fb9, 0, GUEST, GATEWAY],
  ["tcp_rst.bin", 57584, 7001, 3555275369, 4046801879, 20, TcpFlag.RST | TcpFlag.ACK, 63, 0x1b75, 0, GUEST, GATEWAY],
] as const;

test.each(CASES)("parse() deconstructs %s", (name, srcPort, dstPort, seq, ack, headerLength, flags, window, sum, dataLength, src, dst) => {
  const tcp = TcpView.parse(segment(name))!;
  expect(tcp.srcPort).toBe(srcPort);
  expect(tcp.dstPort).toBe(dstPort);
  expect(tcp.seqNumber).toBe(seq);
  expect(tcp.ackNumber).toBe(ack);
  expect(tcp.headerLength).toBe(headerLength);
  expect(tcp.flags).toBe(flags);
  expect([tcp.fin, tcp.syn, tcp.rst, tcp.psh, tcp.ack, tcp.urg]).toEqual([
    (flags & TcpFlag.FIN) !== 0, (flags & TcpFlag.SYN) !== 0, (flags & TcpFlag.RST) !== 0,
    (flags & TcpFlag.PSH) !== 0, (flags & TcpFlag.ACK) !== 0, false,
  ]);
  expect(tcp.window).toBe(window);
  expect(tcp.checksum).toBe(sum);
  expect(tcp.urgentPointer).toBe(0);
  expect(tcp.options.byteLength).toBe(headerLength - 20);
  expect(tcp.payload.byteLength).toBe(dataLength);
  expect(tcp.verifyChecksum(src, dst)).toBe(true);
});

/** Returns a record still holding the options of some earlier segment. */
function staleOptions(): TcpOptions {
  const options = new TcpOptions();
  Object.assign(options, { mss: 1, windowScale: 2, sackPermitted: true, timestampValue: 3, timestampEcho: 4 });
  return options;
}

test.each([
  ["tcp_syn.bin", 1460, 10, true, 2023492752, 0, 1],
  ["tcp_synack.bin", 61440, 8, false, null, 0, 1],
  ["tcp_data.bin", null, null, false, null, 0, 1400],
  ["tcp_fin.bin", null, null, false, null, 0, 1],
])("readOptions() reads the options of %s", (name, mss, windowScale, sackPermitted, tsValue, tsEcho, sequenceLength) => {
  const tcp = TcpView.parse(segment(name))!;
  const options = staleOptions(); // values from a previous segment are cleared
  expect(tcp.readOptions(options)).toBe(true);
  expect(options.mss).toBe(mss);
  expect(options.windowScale).toBe(windowScale);
  expect(options.sackPermitted).toBe(sackPermitted);
  expect(options.timestampValue).toBe(tsValue);
  expect(options.timestampEcho).toBe(tsEcho);
  expect(tcp.sequenceLength).toBe(sequenceLength);
});

test.each(CASES)("emit() constructs %s byte for byte, checksum included", (name, srcPort, dstPort, seqNumber, ackNumber, headerLength, flags, window, _sum, dataLength, src, dst) => {
  const original = segment(name);
  const options = new TcpOptions();
  TcpView.parse(original)!.readOptions(options);
  const fields: TcpFields = { srcPort, dstPort, seqNumber, ackNumber, flags, window, payloadLength: dataLength, src, dst };
  if (options.mss !== null) fields.mss = options.mss;
  if (options.windowScale !== null) fields.windowScale = options.windowScale;
  if (options.sackPermitted) fields.sackPermitted = true;
  if (options.timestampValue !== null) {
    fields.timestampValue = options.timestampValue;
    fields.timestampEcho = options.timestampEcho;
  }
  expect(TcpView.headerLengthFor(fields)).toBe(headerLength);
  const buf = new Uint8Array(original.byteLength + 6).fill(0xaa);
  buf.set(original.subarray(headerLength), 6 + headerLength); // data first: the checksum covers it
  expect(TcpView.emit(buf, 6, fields)).toBe(headerLength);
  expect(buf.subarray(6)).toEqual(original);
});

test.each([
  ["SACK permitted alone", { sackPermitted: true }, [1, 1, 4, 2]],
  ["timestamps alone", { timestampValue: 0x01020304, timestampEcho: 5 }, [1, 1, 8, 10, 1, 2, 3, 4, 0, 0, 0, 5]],
  ["window scale alone", { windowScale: 7 }, [1, 3, 3, 7]],
  ["MSS alone", { mss: 65495 }, [2, 4, 0xff, 0xd7]],
])("emit() writes %s padded to whole words, as Linux does", (_what, extra, optionBytes) => {
  const fields: TcpFields = { srcPort: 1, dstPort: 2, seqNumber: 3, ackNumber: 0, flags: TcpFlag.SYN, window: 0, ...extra };
  const buf = new Uint8Array(60);
  const len = TcpView.emit(buf, 0, fields);
  expect(Array.from(buf.subarray(20, len))).toEqual(optionBytes);
  const tcp = TcpView.parse(buf.subarray(0, len))!;
  expect(tcp.readOptions(new TcpOptions())).toBe(true);
  expect(tcp.checksum).toBe(0); // no addresses given
});

test("emit() throws RangeError when header and payload do not fit", () => {
  const fields: TcpFields = { srcPort: 1, dstPort: 2, seqNumber: 3, ackNumber: 0, flags: 0, window: 0, mss: 1460, payloadLength: 10 };
  expect(() => TcpView.emit(new Uint8Array(33), 0, fields)).toThrow(RangeError);
});

test("checksums over IPv6 fill and verify", () => {
  const src = parseIpv6("2001:db8::1")!;
  const dst = parseIpv6("2001:db8::2")!;
  const bytes = DATA.slice();
  const tcp = TcpView.parse(bytes)!;
  expect(tcp.verifyChecksum(src, dst)).toBe(false);
  tcp.fillChecksum(src, dst);
  expect(tcp.verifyChecksum(src, dst)).toBe(true);
  expect(tcp.verifyChecksum(GUEST, GATEWAY)).toBe(false);
});

test("parse() rejects every truncation of the SYN below its 40-byte header", () => {
  for (let n = 0; n < 40; n++) expect(TcpView.parse(SYN.subarray(0, n))).toBeNull();
  expect(TcpView.parse(SYN.subarray(0, 40))).not.toBeNull();
});

test.each([0, 1, 2, 3, 4])("parse() rejects a data offset of %i words, shorter than the header", (words) => {
  const bytes = DATA.slice();
  bytes[12] = words << 4;
  expect(TcpView.parse(bytes)).toBeNull();
});

test("parse() rejects a data offset beyond the segment", () => {
  const bytes = SYN_ACK.slice(0, 28);
  bytes[12] = 8 << 4; // 32 bytes in a 28-byte segment
  expect(TcpView.parse(bytes)).toBeNull();
});

/** Returns a segment whose header carries `options` (padded with End of Option List to whole words). */
function withOptions(options: number[]): TcpView {
  const words = Math.ceil(options.length / 4);
  const bytes = new Uint8Array(20 + words * 4);
  bytes[12] = (5 + words) << 4;
  bytes.set(options, 20);
  return TcpView.parse(bytes)!;
}

test.each([
  ["an option length of 0", [2, 0, 5, 0xb4], false, null],
  ["an option length of 1", [2, 1, 5, 0xb4], false, null],
  ["an option running past the header", [1, 1, 8, 10, 0, 0, 0, 1], false, null],
  ["a kind in the last byte with no room for its length", [1, 1, 1, 2], false, null],
  ["an MSS of length 3", [2, 3, 5, 0], false, null],
  ["an MSS of length 6", [2, 6, 5, 0xb4, 0, 0, 0, 0], false, null],
  ["a window scale of length 4", [3, 4, 7, 0], false, null],
  ["SACK permitted of length 3", [4, 3, 0, 0], false, null],
  ["timestamps of length 8", [8, 8, 0, 0, 0, 0, 0, 0], false, null],
  ["a good MSS before a bad option", [2, 4, 5, 0xb4, 3, 2, 0, 0], false, 1460],
  ["garbage after End of Option List", [2, 4, 5, 0xb4, 0, 0xff, 0, 0], true, 1460],
  ["an unknown option skipped by its length", [0xfe, 6, 1, 2, 3, 4, 2, 4, 5, 0xb4, 0, 0], true, 1460],
  ["SACK blocks skipped by their length", [1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2], true, null],
])("readOptions() handles %s", (_what, options, ok, mss) => {
  const parsed = new TcpOptions();
  expect(withOptions(options).readOptions(parsed)).toBe(ok);
  expect(parsed.mss).toBe(mss);
});

test("readOptions() clamps a window scale above 14 (RFC 7323 2.3)", () => {
  const options = new TcpOptions();
  expect(withOptions([1, 3, 3, 15]).readOptions(options)).toBe(true);
  expect(options.windowScale).toBe(MAX_WINDOW_SCALE);
});

test("readOptions() walks a full 40 bytes of NOPs and reads nothing", () => {
  const options = new TcpOptions();
  expect(withOptions(new Array(40).fill(1)).readOptions(options)).toBe(true);
  expect([options.mss, options.windowScale, options.sackPermitted, options.timestampValue]).toEqual([null, null, false, null]);
});

test("verifyChecksum() detects a change of any single byte of the SYN", () => {
  for (let i = 0; i < SYN.byteLength; i++) {
    const bytes = SYN.slice();
    bytes[i]! ^= 0x10;
    const tcp = TcpView.parse(bytes);
    if (tcp) expect(tcp.verifyChecksum(GUEST, GATEWAY)).toBe(false);
  }
});

test("setters write in place and wrap() leaves the view unchanged on failure", () => {
  const bytes = SYN_ACK.slice();
  const tcp = new TcpView();
  expect(tcp.wrap(bytes)).toBe(tcp);
  tcp.srcPort = 80;
  tcp.dstPort = 8080;
  tcp.seqNumber = 0xfffffffe;
  tcp.ackNumber = 0x80000000;
  tcp.flags = TcpFlag.ACK;
  tcp.window = 512;
  tcp.urgentPointer = 9;
  tcp.checksum = 0x1234;
  expect(Array.from(bytes.subarray(0, 20))).toEqual([
    0, 80, 0x1f, 0x90, 0xff, 0xff, 0xff, 0xfe, 0x80, 0, 0, 0, 0x70, 0x10, 2, 0, 0x12, 0x34, 0, 9,
  ]);
  expect(tcp.seqNumber).toBe(0xfffffffe);
  expect(tcp.wrap(SYN.subarray(0, 30))).toBeNull();
  expect(tcp.bytes).toBe(bytes);
});

test.each([
  [TcpFlag.SYN | TcpFlag.ACK, "SYN|ACK"],
  [TcpFlag.FIN | TcpFlag.PSH | TcpFlag.ACK, "FIN|PSH|ACK"],
  [0, ""],
])("tcpFlagsName(%p) is %p", (flags, name) => {
  expect(tcpFlagsName(flags)).toBe(name);
});
