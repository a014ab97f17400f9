// SPDX-License-Identifier: GPL-2.0-or-later
// udp.ts - zero-copy view of a UDP datagram (RFC 768) and its checksum over IPv4 or IPv6

import { getU16, pseudoSum, setU16 } from "./_bytes.ts";
import { checksum, fold } from "./checksum.ts";
import { IpProtocol } from "./ipv4.ts";

//   0      7 8     15 16    23 24    31
//  +--------+--------+--------+--------+
//  |   Source Port   |    Dest Port    |
//  +--------+--------+--------+--------+
//  |     Length      |    Checksum     |     (RFC 768)
//  +--------+--------+--------+--------+
//  |  Data ...
const SRC_PORT = 0;
const DST_PORT = 2;
const LENGTH = 4;
const CHECKSUM = 6;

/** Header fields for UdpView.emit(). */
export interface UdpFields {
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Length of the data after the header, in bytes. */
  payloadLength: number;
  /**
   * Source and destination addresses of the IP header (4 or 16 bytes each).
   * With both, emit() fills the checksum over the payload already in place
   * after the header; without, it leaves the checksum zero.
   */
  src?: Uint8Array;
  dst?: Uint8Array;
  /**
   * With `src` and `dst`: store only the pseudo-header sum, folded and not
   * inverted, for a device to complete over header and payload (Linux's
   * CHECKSUM_PARTIAL, virtio-net NEEDS_CSUM with csum_offset 6). emit() then
   * reads no payload, which need not follow the header in `buf`: it may be
   * gathered from elsewhere.
   */
  partial?: boolean;
}

/**
 * Zero-copy view of a UDP header and its payload.
 * Guest input goes through parse() or wrap(); once either succeeds, the length
 * field is at least 8 and lies inside `bytes`, and no accessor reads past
 * `bytes` until `length` is changed. A view made with `new UdpView()` is empty
 * until wrapped.
 */
export class UdpView {
  /** Length of the header. */
  static readonly HEADER_LEN = 8;

  /** The datagram this view reads; may run past `length` (link-layer padding). */
  bytes: Uint8Array = new Uint8Array(0);

  /** Returns a view of `bytes`, or null if they cannot hold the datagram its length field claims. */
  static parse(bytes: Uint8Array): UdpView | null {
    return new UdpView().wrap(bytes);
  }

  /** Re-points this view at `bytes` with the checks of parse(); returns null, leaving it as it was, if they fail. */
  wrap(bytes: Uint8Array): this | null {
    if (bytes.byteLength < UdpView.HEADER_LEN) return null;
    const length = getU16(bytes, LENGTH);
    if (length < UdpView.HEADER_LEN || length > bytes.byteLength) return null;
    this.bytes = bytes;
    return this;
  }

  /** Source port. */
  get srcPort(): number {
    return getU16(this.bytes, SRC_PORT);
  }
  set srcPort(port: number) {
    setU16(this.bytes, SRC_PORT, port);
  }
  /** Destination port. */
  get dstPort(): number {
    return getU16(this.bytes, DST_PORT);
  }
  set dstPort(port: number) {
    setU16(this.bytes, DST_PORT, port);
  }
  /** Length of header and data in bytes. */
  get length(): number {
    return getU16(this.bytes, LENGTH);
  }
  set length(value: number) {
    setU16(this.bytes, LENGTH, value);
  }
  /** Checksum field as carried (0: none was computed, allowed over IPv4 only). */
  get checksum(): number {
    return getU16(this.bytes, CHECKSUM);
  }
  set checksum(value: number) {
    setU16(this.bytes, CHECKSUM, value);
  }
  /** Data after the header, up to `length`. */
  get payload(): Uint8Array {
    return this.bytes.subarray(UdpView.HEADER_LEN, this.length);
  }

  /**
   * Returns true if the checksum is correct for the pseudo-header of `src` and
   * `dst` (4-byte addresses: IPv4, 16-byte: IPv6). Over IPv4 a zero field
   * means no checksum and is accepted (RFC 768); over IPv6 it is refused
   * (RFC 8200 8.1: "IPv6 receivers must discard UDP packets containing a zero
   * checksum").
   */
  verifyChecksum(src: Uint8Array, dst: Uint8Array): boolean {
    if (this.checksum === 0) return src.byteLength === 4;
    const length = this.length;
    const init = pseudoSum(src, dst, IpProtocol.UDP, length);
    return checksum(this.bytes.subarray(0, length), init) === 0;
  }

  /**
   * Computes the checksum for the pseudo-header of `src` and `dst` and stores
   * it; a computed zero is stored as 0xffff, since zero means "none" (RFC 768).
   */
  fillChecksum(src: Uint8Array, dst: Uint8Array): void {
    setU16(this.bytes, CHECKSUM, 0);
    const length = this.length;
    const init = pseudoSum(src, dst, IpProtocol.UDP, length);
    setU16(this.bytes, CHECKSUM, checksum(this.bytes.subarray(0, length), init) || 0xffff);
  }

  /**
   * Writes a UDP header at `buf[offset]` and returns its length (8). With
   * `fields.src` and `fields.dst`, the checksum covers the `payloadLength`
   * bytes already after the header, or with `fields.partial` is left for the
   * device to complete; otherwise it is left zero. A length field above
   * 65535 (a programmer error) or no room in `buf` for the header and, unless
   * partial, the payload throws RangeError.
   */
  static emit(buf: Uint8Array, offset: number, fields: UdpFields): number {
    const length = UdpView.HEADER_LEN + fields.payloadLength;
    const room = fields.partial ? UdpView.HEADER_LEN : length;
    if (offset < 0 || offset + room > buf.byteLength || length > 0xffff) {
      throw new RangeError(`UdpView.emit: no room for ${length} bytes at offset ${offset} of ${buf.byteLength}`);
    }
    setU16(buf, offset + SRC_PORT, fields.srcPort);
    setU16(buf, offset + DST_PORT, fields.dstPort);
    setU16(buf, offset + LENGTH, length);
    setU16(buf, offset + CHECKSUM, 0);
    if (fields.src && fields.dst) {
      const init = pseudoSum(fields.src, fields.dst, IpProtocol.UDP, length);
      const sum = fields.partial ? fold(init) : checksum(buf.subarray(offset, offset + length), init) || 0xffff;
      setU16(buf, offset + CHECKSUM, sum);
    }
    return UdpView.HEADER_LEN;
  }
}
