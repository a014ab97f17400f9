// SPDX-License-Identifier: GPL-2.0-or-later
// virtio_net.test.ts - the virtio-net header of an IFF_VNET_HDR tap, and completing partial checksums

import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { parseIpv4 } from "../../../src/wire/addr.ts";
import { fold, pseudoSum4 } from "../../../src/wire/checksum.ts";
import { TcpView } from "../../../src/wire/tcp.ts";
import { completeChecksum, VirtioNetFlag, VirtioNetGso, VirtioNetHdrView } from "../../../src/wire/virtio_net.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url)));
const GUEST = parseIpv4("198.51.100.10")!;
const GATEWAY = parseIpv4("198.51.100.1")!;

// struct virtio_net_hdr as Linux lays it out (little-endian): a TSO over IPv4 frame with
// 54 bytes of headers, 1448-byte segments, checksum partial from byte 34 at offset 16.
const TSO4 = Uint8Array.from([0x01, 0x01, 54, 0, 0xa8, 0x05, 34, 0, 16, 0]);

test("wrap() deconstructs a TSO header", () => {
  const h = new VirtioNetHdrView().wrap(TSO4)!;
  expect(h.flags).toBe(VirtioNetFlag.NEEDS_CSUM);
  expect(h.gsoType).toBe(VirtioNetGso.TCPV4);
  expect(h.hdrLen).toBe(54);
  expect(h.gsoSize).toBe(1448);
  expect(h.csumStart).toBe(34);
  expect(h.csumOffset).toBe(16);
});

test("emit() constructs it byte for byte, at an offset", () => {
  const buf = new Uint8Array(13).fill(0xee);
  const n = VirtioNetHdrView.emit(buf, 3, { flags: 1, gsoType: 1, hdrLen: 54, gsoSize: 1448, csumStart: 34, csumOffset: 16 });
  expect(n).toBe(10);
  expect(buf.subarray(3)).toEqual(TSO4);
  expect(buf.subarray(0, 3)).toEqual(Uint8Array.from([0xee, 0xee, 0xee]));
  expect(() => VirtioNetHdrView.emit(new Uint8Array(9), 0, { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 })).toThrow(RangeError);
});

test("wrap() rejects every truncation", () => {
  for (let len = 0; len < VirtioNetHdrView.LEN; len++) expect(new VirtioNetHdrView().wrap(TSO4.subarray(0, len))).toBeNull();
});

test("completeChecksum() turns a pseudo-header sum into the checksum a sender would have computed", () => {
  const frame = fixture("tcp_data.bin");
  const expected = frame.slice();
  const l4 = frame.subarray(34);
  // What a CHECKSUM_PARTIAL sender leaves in the field: the folded, not inverted, pseudo-header sum.
  const pseudo = fold(pseudoSum4(GUEST, GATEWAY, 6, l4.byteLength));
  l4[16] = pseudo >>> 8;
  l4[17] = pseudo & 0xff;
  expect(new TcpView().wrap(l4)!.verifyChecksum(GUEST, GATEWAY)).toBe(false);
  expect(completeChecksum(frame, 34, 16)).toBe(true);
  expect(frame).toEqual(expected);
});

test("completeChecksum() refuses a field outside the frame and changes nothing", () => {
  const frame = fixture("tcp_data.bin");
  const before = frame.slice();
  expect(completeChecksum(frame, frame.byteLength - 17, 16)).toBe(false);
  expect(completeChecksum(frame, 0xffff, 16)).toBe(false);
  expect(frame).toEqual(before);
});

// A USO frame over IPv4 as Linux 6.2+ sends it: 42 bytes of headers (Ethernet, IPv4, UDP),
// 1200-byte datagrams, checksum partial from byte 34 at offset 6.
const USO4 = Uint8Array.from([0x01, 0x05, 42, 0, 0xb0, 0x04, 34, 0, 6, 0]);

test("wrap() deconstructs a UDP segmentation (USO) header, and emit() constructs it", () => {
  const h = new VirtioNetHdrView().wrap(USO4)!;
  expect(h.flags).toBe(VirtioNetFlag.NEEDS_CSUM);
  expect(h.gsoType).toBe(VirtioNetGso.UDP_L4);
  expect([h.hdrLen, h.gsoSize, h.csumStart, h.csumOffset]).toEqual([42, 1200, 34, 6]);
  const buf = new Uint8Array(10);
  VirtioNetHdrView.emit(buf, 0, { flags: 1, gsoType: VirtioNetGso.UDP_L4, hdrLen: 42, gsoSize: 1200, csumStart: 34, csumOffset: 6 });
  expect(buf).toEqual(USO4);
});
