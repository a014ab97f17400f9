// SPDX-License-Identifier: GPL-2.0-or-later
// icmpv6.ts - zero-copy view of an ICMPv6 message (RFC 4443): generic header, echo, checksum

import { constName, getU16, pseudoSum, setU16 } from "./_bytes.ts";
import { checksum } from "./checksum.ts";
import { IpProtocol } from "./ipv4.ts";

//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |     Type      |     Code      |          Checksum             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |           Identifier          |        Sequence Number        |   (echo, RFC 4443 4.1)
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |     Data ...
const TYPE = 0;
const CODE = 1;
const CHECKSUM = 2;
const IDENTIFIER = 4;
const SEQUENCE = 6;

/** ICMPv6 message types (RFC 4443, RFC 4861, RFC 3810). */
export const Icmpv6Type = {
  DESTINATION_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAMETER_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  MLD_QUERY: 130,
  MLD_REPORT: 131,
  MLD_DONE: 132,
  ROUTER_SOLICITATION: 133,
  ROUTER_ADVERTISEMENT: 134,
  NEIGHBOR_SOLICITATION: 135,
  NEIGHBOR_ADVERTISEMENT: 136,
  REDIRECT: 137,
  MLDV2_REPORT: 143,
} as const;
export type Icmpv6Type = (typeof Icmpv6Type)[keyof typeof Icmpv6Type];

/** Returns the name of an ICMPv6 type for logs ("NEIGHBOR_SOLICITATION"), or its hex value. */
export function icmpv6TypeName(value: number): string {
  return constName(Icmpv6Type, value);
}

/** Header fields for Icmpv6View.emitEcho(). */
export interface Icmpv6EchoFields {
  /** Icmpv6Type.ECHO_REQUEST or Icmpv6Type.ECHO_REPLY. */
  type: number;
  /** Echo identifier. */
  identifier: number;
  /** Echo sequence number. */
  sequenceNumber: number;
  /** Source address of the IPv6 header, 16 bytes (for the pseudo-header). */
  src: Uint8Array;
  /** Destination address of the IPv6 header, 16 bytes (for the pseudo-header). */
  dst: Uint8Array;
  /** Length of the data that already follows the header in `buf`, in bytes; 0 if absent. */
  payloadLength?: number;
}

/**
 * Zero-copy view of an ICMPv6 message: it spans all of `bytes` (pass the IPv6
 * upper-layer payload). Guest input goes through parse() or wrap(); once either
 * succeeds, no accessor reads past `bytes`. Neighbour Discovery bodies are read
 * by ndp.ts; this view covers what all messages share, and echo.
 */
export class Icmpv6View {
  /** Length of the header: type, code, checksum and the 4 bytes after it. */
  static readonly HEADER_LEN = 8;

  /** The message this view reads, header first. */
  bytes: Uint8Array = new Uint8Array(0);

  /** Returns a view of `bytes`, or null if they cannot hold the 8-byte header. */
  static parse(bytes: Uint8Array): Icmpv6View | null {
    return new Icmpv6View().wrap(bytes);
  }

  /** Re-points this view at `bytes` with the checks of parse(); returns null, leaving it as it was, if they fail. */
  wrap(bytes: Uint8Array): this | null {
    if (bytes.byteLength < Icmpv6View.HEADER_LEN) return null;
    this.bytes = bytes;
    return this;
  }

  /** Message type (Icmpv6Type). */
  get type(): number {
    return this.bytes[TYPE]!;
  }
  set type(value: number) {
    this.bytes[TYPE] = value;
  }
  /** Message code, whose meaning depends on the type. */
  get code(): number {
    return this.bytes[CODE]!;
  }
  set code(value: number) {
    this.bytes[CODE] = value;
  }
  /** Checksum field as carried. */
  get checksum(): number {
    return getU16(this.bytes, CHECKSUM);
  }
  set checksum(value: number) {
    setU16(this.bytes, CHECKSUM, value);
  }
  /** Echo identifier (meaningful for echo request and reply). */
  get identifier(): number {
    return getU16(this.bytes, IDENTIFIER);
  }
  set identifier(value: number) {
    setU16(this.bytes, IDENTIFIER, value);
  }
  /** Echo sequence number (meaningful for echo request and reply). */
  get sequenceNumber(): number {
    return getU16(this.bytes, SEQUENCE);
  }
  set sequenceNumber(value: number) {
    setU16(this.bytes, SEQUENCE, value);
  }
  /** True for an echo request or reply. */
  get isEcho(): boolean {
    const type = this.type;
    return type === Icmpv6Type.ECHO_REQUEST || type === Icmpv6Type.ECHO_REPLY;
  }
  /** The four bytes after the checksum, whatever the type. */
  get restOfHeader(): Uint8Array {
    return this.bytes.subarray(IDENTIFIER, Icmpv6View.HEADER_LEN);
  }
  /** Everything after the 8-byte header. */
  get payload(): Uint8Array {
    return this.bytes.subarray(Icmpv6View.HEADER_LEN);
  }

  /**
   * Returns true if the checksum over the IPv6 pseudo-header (`src`, `dst`,
   * 16 bytes each) and the whole message is correct.
   */
  verifyChecksum(src: Uint8Array, dst: Uint8Array): boolean {
    const init = pseudoSum(src, dst, IpProtocol.ICMPV6, this.bytes.byteLength);
    return checksum(this.bytes, init) === 0;
  }

  /** Computes the checksum over the pseudo-header of `src` and `dst` and the message, and stores it. */
  fillChecksum(src: Uint8Array, dst: Uint8Array): void {
    setU16(this.bytes, CHECKSUM, 0);
    const init = pseudoSum(src, dst, IpProtocol.ICMPV6, this.bytes.byteLength);
    setU16(this.bytes, CHECKSUM, checksum(this.bytes, init));
  }

  /**
   * Writes an echo header at `buf[offset]`, with the checksum over the
   * pseudo-header, itself and the `payloadLength` bytes already after it, and
   * returns the header length (8).
   * Throws RangeError if `buf` has no room for header and payload (a programmer error).
   */
  static emitEcho(buf: Uint8Array, offset: number, fields: Icmpv6EchoFields): number {
    const length = Icmpv6View.HEADER_LEN + (fields.payloadLength ?? 0);
    if (offset < 0 || offset + length > buf.byteLength) {
      throw new RangeError(`Icmpv6View.emitEcho: no room for ${length} bytes at offset ${offset} of ${buf.byteLength}`);
    }
    buf[offset + TYPE] = fields.type;
    buf[offset + CODE] = 0;
    setU16(buf, offset + CHECKSUM, 0);
    setU16(buf, offset + IDENTIFIER, fields.identifier);
    setU16(buf, offset + SEQUENCE, fields.sequenceNumber);
    const init = pseudoSum(fields.src, fields.dst, IpProtocol.ICMPV6, length);
    setU16(buf, offset + CHECKSUM, checksum(buf.subarray(offset, offset + length), init));
    return Icmpv6View.HEADER_LEN;
  }
}
