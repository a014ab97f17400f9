// SPDX-License-Identifier: GPL-2.0-or-later
// ipv4.ts - zero-copy view of an IPv4 header (RFC 791), protocol numbers, header checksum

import { constName, copyOut, getU16, setU16 } from "./_bytes.ts";
import { checksum } from "./checksum.ts";

//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |Version|  IHL  |    DSCP   |ECN|          Total Length         |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |         Identification        |Flags|      Fragment Offset    |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Time to Live |    Protocol   |         Header Checksum       |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                       Source Address                          |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    Destination Address                        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    Options (IHL > 5)                          |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const VERSION_IHL = 0;
const DSCP_ECN = 1;
const TOTAL_LENGTH = 2;
const IDENTIFICATION = 4;
const FLAGS_FRAGMENT = 6;
const TTL = 8;
const PROTOCOL = 9;
const CHECKSUM = 10;
const SRC_ADDR = 12;
const DST_ADDR = 16;
const ADDR_LEN = 4;

const FLAG_DONT_FRAGMENT = 0x4000;
const FLAG_MORE_FRAGMENTS = 0x2000;
const FRAGMENT_OFFSET_MASK = 0x1fff;

/** IP protocol numbers (IANA), shared by IPv4 Protocol and IPv6 Next Header. */
export const IpProtocol = {
  HOP_BY_HOP: 0,
  ICMP: 1,
  IGMP: 2,
  TCP: 6,
  UDP: 17,
  IPV6_ROUTING: 43,
  IPV6_FRAGMENT: 44,
  ICMPV6: 58,
  IPV6_NO_NEXT_HEADER: 59,
  IPV6_DESTINATION_OPTIONS: 60,
} as const;
export type IpProtocol = (typeof IpProtocol)[keyof typeof IpProtocol];

/** Returns the name of an IP protocol number for logs ("UDP"), or its hex value. */
export function ipProtocolName(value: number): string {
  return constName(IpProtocol, value);
}

/** Header fields for Ipv4View.emit(); the header is always 20 bytes, without options. */
export interface Ipv4Fields {
  /** Source address, 4 bytes. */
  src: Uint8Array;
  /** Destination address, 4 bytes. */
  dst: Uint8Array;
  /** Protocol of the payload (IpProtocol). */
  protocol: number;
  /** Length of what follows the header, in bytes (total length minus 20). */
  payloadLength: number;
  /** Time to live in hops; 64 if absent (RFC 1700's default). */
  ttl?: number;
  /** Identification field; 0 if absent. */
  identification?: number;
  /** Sets the Don't Fragment flag; true if absent, as Linux does with path MTU discovery. */
  dontFragment?: boolean;
  /** DSCP and ECN byte (the old Type of Service); 0 if absent. */
  typeOfService?: number;
}

/**
 * Zero-copy view of an IPv4 header and its payload.
 * Guest input goes through parse() or wrap(); once either succeeds, the header
 * length and the total length lie inside `bytes`, and no accessor reads past
 * them until totalLength is changed. A view made with `new Ipv4View()` is empty
 * until wrapped.
 */
export class Ipv4View {
  /** Length of a header without options. */
  static readonly MIN_HEADER_LEN = 20;

  /** The packet this view reads; may run past totalLength (link-layer padding). */
  bytes: Uint8Array = new Uint8Array(0);

  /**
   * Returns a view of `bytes`, or null unless they start with a version 4
   * header whose IHL is at least 5 and fits inside a total length that fits
   * inside `bytes`.
   */
  static parse(bytes: Uint8Array): Ipv4View | null {
    return new Ipv4View().wrap(bytes);
  }

  /** Re-points this view at `bytes` with the checks of parse(); returns null, leaving it as it was, if they fail. */
  wrap(bytes: Uint8Array): this | null {
    if (bytes.byteLength < Ipv4View.MIN_HEADER_LEN) return null;
    const versionIhl = bytes[VERSION_IHL]!;
    if (versionIhl >>> 4 !== 4) return null;
    const headerLength = (versionIhl & 0x0f) * 4;
    const totalLength = getU16(bytes, TOTAL_LENGTH);
    if (headerLength < Ipv4View.MIN_HEADER_LEN || headerLength > totalLength) return null;
    if (totalLength > bytes.byteLength) return null;
    this.bytes = bytes;
    return this;
  }

  /** IP version (4 once parsed). */
  get version(): number {
    return this.bytes[VERSION_IHL]! >>> 4;
  }
  /** Header length in bytes (IHL times 4), options included. */
  get headerLength(): number {
    return (this.bytes[VERSION_IHL]! & 0x0f) * 4;
  }
  /** Differentiated Services code point (RFC 2474), 6 bits. */
  get dscp(): number {
    return this.bytes[DSCP_ECN]! >>> 2;
  }
  /** Explicit Congestion Notification bits (RFC 3168), 2 bits. */
  get ecn(): number {
    return this.bytes[DSCP_ECN]! & 0x03;
  }
  /** Length of header and payload in bytes. */
  get totalLength(): number {
    return getU16(this.bytes, TOTAL_LENGTH);
  }
  set totalLength(value: number) {
    setU16(this.bytes, TOTAL_LENGTH, value);
  }
  /** Identification, for reassembly. */
  get identification(): number {
    return getU16(this.bytes, IDENTIFICATION);
  }
  set identification(value: number) {
    setU16(this.bytes, IDENTIFICATION, value);
  }
  /** Don't Fragment flag. */
  get dontFragment(): boolean {
    return (getU16(this.bytes, FLAGS_FRAGMENT) & FLAG_DONT_FRAGMENT) !== 0;
  }
  /** More Fragments flag. */
  get moreFragments(): boolean {
    return (getU16(this.bytes, FLAGS_FRAGMENT) & FLAG_MORE_FRAGMENTS) !== 0;
  }
  /** Offset of this fragment in the original payload, in bytes (the field counts 8-byte units). */
  get fragmentOffsetBytes(): number {
    return (getU16(this.bytes, FLAGS_FRAGMENT) & FRAGMENT_OFFSET_MASK) * 8;
  }
  /** True if this packet is a fragment: More Fragments set or a non-zero offset. */
  get isFragment(): boolean {
    return (getU16(this.bytes, FLAGS_FRAGMENT) & (FLAG_MORE_FRAGMENTS | FRAGMENT_OFFSET_MASK)) !== 0;
  }
  /** Time to live, in hops. */
  get ttl(): number {
    return this.bytes[TTL]!;
  }
  set ttl(value: number) {
    this.bytes[TTL] = value;
  }
  /** Protocol of the payload (IpProtocol). */
  get protocol(): number {
    return this.bytes[PROTOCOL]!;
  }
  set protocol(value: number) {
    this.bytes[PROTOCOL] = value;
  }
  /** Header checksum field as carried. */
  get headerChecksum(): number {
    return getU16(this.bytes, CHECKSUM);
  }
  set headerChecksum(value: number) {
    setU16(this.bytes, CHECKSUM, value);
  }
  /** Source address (a view into the packet). */
  get srcAddr(): Uint8Array {
    return this.bytes.subarray(SRC_ADDR, SRC_ADDR + ADDR_LEN);
  }
  set srcAddr(addr: Uint8Array) {
    this.bytes.set(addr.subarray(0, ADDR_LEN), SRC_ADDR);
  }
  /** Destination address (a view into the packet). */
  get dstAddr(): Uint8Array {
    return this.bytes.subarray(DST_ADDR, DST_ADDR + ADDR_LEN);
  }
  set dstAddr(addr: Uint8Array) {
    this.bytes.set(addr.subarray(0, ADDR_LEN), DST_ADDR);
  }
  /**
   * Copies the source address to `out[offset]` and returns `out`: what srcAddr
   * gives without making a view, which costs more than the copy on hot paths.
   */
  copySrcAddr(out: Uint8Array, offset = 0): Uint8Array {
    return copyOut(this.bytes, SRC_ADDR, ADDR_LEN, out, offset);
  }
  /** Copies the destination address to `out[offset]` and returns `out` (see copySrcAddr()). */
  copyDstAddr(out: Uint8Array, offset = 0): Uint8Array {
    return copyOut(this.bytes, DST_ADDR, ADDR_LEN, out, offset);
  }
  /** Options, between the fixed header and the payload (empty when IHL is 5). */
  get options(): Uint8Array {
    return this.bytes.subarray(Ipv4View.MIN_HEADER_LEN, this.headerLength);
  }
  /** The header, options included (a view). */
  get header(): Uint8Array {
    return this.bytes.subarray(0, this.headerLength);
  }
  /** Payload up to totalLength, without link-layer padding. */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLength, this.totalLength);
  }

  /** Returns true if the header checksum is correct. */
  verifyChecksum(): boolean {
    return checksum(this.header) === 0;
  }

  /** Computes the header checksum and stores it in the header. */
  fillChecksum(): void {
    setU16(this.bytes, CHECKSUM, 0);
    setU16(this.bytes, CHECKSUM, checksum(this.header));
  }

  /**
   * Writes a 20-byte IPv4 header with its checksum at `buf[offset]` and returns
   * its length (20). The payload is not touched.
   * Throws RangeError if `buf` has no room for the header (a programmer error).
   */
  static emit(buf: Uint8Array, offset: number, fields: Ipv4Fields): number {
    const len = Ipv4View.MIN_HEADER_LEN;
    if (offset < 0 || offset + len > buf.byteLength) {
      throw new RangeError(`Ipv4View.emit: no room at offset ${offset} of ${buf.byteLength}`);
    }
    buf[offset + VERSION_IHL] = 0x45;
    buf[offset + DSCP_ECN] = fields.typeOfService ?? 0;
    setU16(buf, offset + TOTAL_LENGTH, len + fields.payloadLength);
    setU16(buf, offset + IDENTIFICATION, fields.identification ?? 0);
    setU16(buf, offset + FLAGS_FRAGMENT, (fields.dontFragment ?? true) ? FLAG_DONT_FRAGMENT : 0);
    buf[offset + TTL] = fields.ttl ?? 64;
    buf[offset + PROTOCOL] = fields.protocol;
    setU16(buf, offset + CHECKSUM, 0);
    buf.set(fields.src.subarray(0, ADDR_LEN), offset + SRC_ADDR);
    buf.set(fields.dst.subarray(0, ADDR_LEN), offset + DST_ADDR);
    setU16(buf, offset + CHECKSUM, checksum(buf.subarray(offset, offset + len)));
    return len;
  }
}
