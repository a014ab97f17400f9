// SPDX-License-Identifier: GPL-2.0-or-later
// icmp.ts - zero-copy view of an ICMP message (RFC 792): generic header and echo

import { constName, setU16 } from "./_bytes.ts";
import { checksum } from "./checksum.ts";
import { CHECKSUM, IcmpHeaderView, writeEchoHeader } from "./_icmp_header.ts";

// The header layout is shared with the other ICMP version: see _icmp_header.ts.

/** ICMP message types (RFC 792, IANA). */
export const IcmpType = {
  ECHO_REPLY: 0,
  DESTINATION_UNREACHABLE: 3,
  REDIRECT: 5,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
} as const;
export type IcmpType = (typeof IcmpType)[keyof typeof IcmpType];

/** Returns the name of an ICMP type for logs ("ECHO_REQUEST"), or its hex value. */
export function icmpTypeName(value: number): string {
  return constName(IcmpType, value);
}

/** Header fields for IcmpView.emitEcho(). */
export interface IcmpEchoFields {
  /** IcmpType.ECHO_REQUEST or IcmpType.ECHO_REPLY. */
  type: number;
  /** Echo identifier (the ping socket's port, on Linux). */
  identifier: number;
  /** Echo sequence number. */
  sequenceNumber: number;
  /**
   * Length of the data that already follows the header in `buf`, in bytes:
   * the checksum covers it. 0 if absent.
   */
  payloadLength?: number;
}

/**
 * Zero-copy view of an ICMP message: it spans all of `bytes`, since ICMP has no
 * length field (pass the IPv4 payload). Guest input goes through parse() or
 * wrap(); once either succeeds, no accessor reads past `bytes`.
 */
export class IcmpView extends IcmpHeaderView {
  /** Returns a view of `bytes`, or null if they cannot hold the 8-byte header. */
  static parse(bytes: Uint8Array): IcmpView | null {
    return new IcmpView().wrap(bytes);
  }

  /** True for an echo request or reply. */
  get isEcho(): boolean {
    const type = this.type;
    return type === IcmpType.ECHO_REQUEST || type === IcmpType.ECHO_REPLY;
  }

  /** Returns true if the checksum over the whole message is correct. */
  verifyChecksum(): boolean {
    return checksum(this.bytes) === 0;
  }

  /** Computes the checksum over the whole message and stores it. */
  fillChecksum(): void {
    setU16(this.bytes, CHECKSUM, 0);
    setU16(this.bytes, CHECKSUM, checksum(this.bytes));
  }

  /**
   * Writes an echo header at `buf[offset]`, with the checksum over it and the
   * `payloadLength` bytes already after it, and returns the header length (8).
   * Throws RangeError if `buf` has no room for header and payload (a programmer error).
   */
  static emitEcho(buf: Uint8Array, offset: number, fields: IcmpEchoFields): number {
    const end = offset + IcmpView.HEADER_LEN + (fields.payloadLength ?? 0);
    writeEchoHeader("IcmpView.emitEcho", buf, offset, end - offset, fields);
    setU16(buf, offset + CHECKSUM, checksum(buf.subarray(offset, end)));
    return IcmpView.HEADER_LEN;
  }
}
