// SPDX-License-Identifier: GPL-2.0-or-later
// icmpv6.ts - zero-copy view of an ICMPv6 message (RFC 4443): generic header, echo, checksum

import { constName, pseudoSum, setU16 } from "./_bytes.ts";
import { checksum } from "./checksum.ts";
import { CHECKSUM, IcmpHeaderView, writeEchoHeader } from "./_icmp_header.ts";
import { IpProtocol } from "./ipv4.ts";

// The header layout is shared with the other ICMP version: see _icmp_header.ts.

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
export class Icmpv6View extends IcmpHeaderView {
  /** Returns a view of `bytes`, or null if they cannot hold the 8-byte header. */
  static parse(bytes: Uint8Array): Icmpv6View | null {
    return new Icmpv6View().wrap(bytes);
  }

  /** True for an echo request or reply. */
  get isEcho(): boolean {
    const type = this.type;
    return type === Icmpv6Type.ECHO_REQUEST || type === Icmpv6Type.ECHO_REPLY;
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
    writeEchoHeader("Icmpv6View.emitEcho", buf, offset, length, fields);
    const init = pseudoSum(fields.src, fields.dst, IpProtocol.ICMPV6, length);
    setU16(buf, offset + CHECKSUM, checksum(buf.subarray(offset, offset + length), init));
    return Icmpv6View.HEADER_LEN;
  }
}
