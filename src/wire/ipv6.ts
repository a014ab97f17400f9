// SPDX-License-Identifier: GPL-2.0-or-later
// ipv6.ts - zero-copy view of an IPv6 header (RFC 8200) and walk of its extension headers

import { copyOut, getU16, getU32, setU16, setU32 } from "./_bytes.ts";
import { IpProtocol } from "./ipv4.ts";

//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |Version| Traffic Class |           Flow Label                  |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |         Payload Length        |  Next Header  |   Hop Limit   |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                                                               |
//  +                  Source Address (16 bytes)                    +
//  |                                                               |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                                                               |
//  +                Destination Address (16 bytes)                 +
//  |                                                               |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const VERSION_CLASS_FLOW = 0;
const PAYLOAD_LENGTH = 4;
const NEXT_HEADER = 6;
const HOP_LIMIT = 7;
const SRC_ADDR = 8;
const DST_ADDR = 24;
const ADDR_LEN = 16;

// Extension headers (RFC 8200 4.3-4.6): hop-by-hop, routing and destination
// options share the first two bytes; the fragment header is always 8 bytes.
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Next Header  |  Hdr Ext Len  |  (Hdr Ext Len + 1) * 8 bytes  |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Next Header  |   Reserved    |      Fragment Offset    |Res|M|   (fragment)
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const EXT_NEXT_HEADER = 0;
const EXT_LENGTH = 1;
const FRAGMENT_OFFSET_FLAGS = 2;
const FRAGMENT_HEADER_LEN = 8;
const FRAGMENT_MORE = 0x0001;
const FRAGMENT_OFFSET_MASK = 0xfff8;

/**
 * Most extension headers walked before giving up. RFC 8200 4.1 recommends at
 * most one of each (two destination options), so anything longer is refused.
 */
export const MAX_EXTENSION_HEADERS = 8;

/** Header fields for Ipv6View.emit(); no extension headers are written. */
export interface Ipv6Fields {
  /** Source address, 16 bytes. */
  src: Uint8Array;
  /** Destination address, 16 bytes. */
  dst: Uint8Array;
  /** Protocol of what follows the header (IpProtocol). */
  nextHeader: number;
  /** Length of what follows the header, in bytes. */
  payloadLength: number;
  /** Hop limit; 255 if absent (what link-local services such as NDP must send). */
  hopLimit?: number;
  /** Traffic class; 0 if absent. */
  trafficClass?: number;
  /** Flow label (20 bits); 0 if absent. */
  flowLabel?: number;
}

/**
 * Zero-copy view of an IPv6 header, its extension headers and its payload.
 * Guest input goes through parse() or wrap(); once either succeeds, the payload
 * length lies inside `bytes`, the extension headers have been walked within it,
 * and upperLayerProtocol / upperLayerOffset say where the transport header is.
 * A view made with `new Ipv6View()` is empty until wrapped.
 */
export class Ipv6View {
  /** Length of the fixed header. */
  static readonly HEADER_LEN = 40;

  /** The packet this view reads; may run past the payload (link-layer padding). */
  bytes: Uint8Array = new Uint8Array(0);
  private upperProtocol = IpProtocol.IPV6_NO_NEXT_HEADER as number;
  private upperOffset = Ipv6View.HEADER_LEN;
  private fragment = false;

  /**
   * Returns a view of `bytes`, or null unless they start with a version 6
   * header whose payload length fits inside `bytes` and whose extension headers
   * (at most MAX_EXTENSION_HEADERS) each fit inside the payload.
   */
  static parse(bytes: Uint8Array): Ipv6View | null {
    return new Ipv6View().wrap(bytes);
  }

  /** Re-points this view at `bytes` with the checks of parse(); returns null, leaving it as it was, if they fail. */
  wrap(bytes: Uint8Array): this | null {
    if (bytes.byteLength < Ipv6View.HEADER_LEN) return null;
    if (bytes[VERSION_CLASS_FLOW]! >>> 4 !== 6) return null;
    const end = Ipv6View.HEADER_LEN + getU16(bytes, PAYLOAD_LENGTH);
    if (end > bytes.byteLength) return null;

    let next = bytes[NEXT_HEADER]!;
    let offset = Ipv6View.HEADER_LEN;
    let fragment = false;
    for (let count = 0; ; count++) {
      let length: number;
      if (
        next === IpProtocol.HOP_BY_HOP ||
        next === IpProtocol.IPV6_ROUTING ||
        next === IpProtocol.IPV6_DESTINATION_OPTIONS
      ) {
        if (offset + 2 > end) return null;
        length = (bytes[offset + EXT_LENGTH]! + 1) * 8;
      } else if (next === IpProtocol.IPV6_FRAGMENT) {
        length = FRAGMENT_HEADER_LEN;
        if (offset + length > end) return null;
        const word = getU16(bytes, offset + FRAGMENT_OFFSET_FLAGS);
        if ((word & (FRAGMENT_OFFSET_MASK | FRAGMENT_MORE)) !== 0) fragment = true;
      } else {
        break; // upper layer, or No Next Header (59)
      }
      if (count === MAX_EXTENSION_HEADERS || offset + length > end) return null;
      next = bytes[offset + EXT_NEXT_HEADER]!;
      offset += length;
    }
    this.bytes = bytes;
    this.upperProtocol = next;
    this.upperOffset = offset;
    this.fragment = fragment;
    return this;
  }

  /** IP version (6 once parsed). */
  get version(): number {
    return this.bytes[VERSION_CLASS_FLOW]! >>> 4;
  }
  /** Traffic class (DSCP and ECN), 8 bits. */
  get trafficClass(): number {
    return (getU16(this.bytes, VERSION_CLASS_FLOW) >>> 4) & 0xff;
  }
  /** Flow label, 20 bits. */
  get flowLabel(): number {
    return getU32(this.bytes, VERSION_CLASS_FLOW) & 0xfffff;
  }
  /** Length of everything after the fixed header, extension headers included, in bytes. */
  get payloadLength(): number {
    return getU16(this.bytes, PAYLOAD_LENGTH);
  }
  set payloadLength(value: number) {
    setU16(this.bytes, PAYLOAD_LENGTH, value);
  }
  /** Next Header of the fixed header: the first extension header or the upper layer. */
  get nextHeader(): number {
    return this.bytes[NEXT_HEADER]!;
  }
  set nextHeader(value: number) {
    this.bytes[NEXT_HEADER] = value;
  }
  /** Hop limit. */
  get hopLimit(): number {
    return this.bytes[HOP_LIMIT]!;
  }
  set hopLimit(value: number) {
    this.bytes[HOP_LIMIT] = value;
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
  /** Everything after the fixed header up to the payload length, extension headers included. */
  get payload(): Uint8Array {
    return this.bytes.subarray(Ipv6View.HEADER_LEN, Ipv6View.HEADER_LEN + this.payloadLength);
  }

  /**
   * Protocol after the extension headers (IpProtocol.TCP, UDP, ICMPV6...), or
   * IpProtocol.IPV6_NO_NEXT_HEADER (59) if the chain ends without one.
   */
  get upperLayerProtocol(): number {
    return this.upperProtocol;
  }
  /** Offset of the upper-layer header from the start of `bytes`. */
  get upperLayerOffset(): number {
    return this.upperOffset;
  }
  /** The upper-layer header and data: the payload without extension headers. */
  get upperLayerPayload(): Uint8Array {
    return this.bytes.subarray(this.upperOffset, Ipv6View.HEADER_LEN + this.payloadLength);
  }
  /**
   * True if a fragment header with a non-zero offset or More Fragments was
   * seen: then upperLayerPayload is part of a datagram, not a whole one.
   */
  get isFragment(): boolean {
    return this.fragment;
  }

  /**
   * Writes a 40-byte IPv6 header at `buf[offset]` and returns its length (40).
   * Throws RangeError if `buf` has no room for it (a programmer error).
   */
  static emit(buf: Uint8Array, offset: number, fields: Ipv6Fields): number {
    const len = Ipv6View.HEADER_LEN;
    if (offset < 0 || offset + len > buf.byteLength) {
      throw new RangeError(`Ipv6View.emit: no room at offset ${offset} of ${buf.byteLength}`);
    }
    const trafficClass = fields.trafficClass ?? 0;
    const flowLabel = fields.flowLabel ?? 0;
    setU32(buf, offset + VERSION_CLASS_FLOW, ((6 << 28) | (trafficClass << 20) | (flowLabel & 0xfffff)) >>> 0);
    setU16(buf, offset + PAYLOAD_LENGTH, fields.payloadLength);
    buf[offset + NEXT_HEADER] = fields.nextHeader;
    buf[offset + HOP_LIMIT] = fields.hopLimit ?? 255;
    buf.set(fields.src.subarray(0, ADDR_LEN), offset + SRC_ADDR);
    buf.set(fields.dst.subarray(0, ADDR_LEN), offset + DST_ADDR);
    return len;
  }
}
