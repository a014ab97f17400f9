// SPDX-License-Identifier: GPL-2.0-or-later
// icmp.ts - zero-copy view of an ICMP message (RFC 792): generic header and echo

import { constName, getU16, setU16 } from "./_bytes.ts";
import { checksum } from "./checksum.ts";

//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |     Type      |     Code      |          Checksum             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |           Identifier          |        Sequence Number        |   (echo; other
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+    types differ)
//  |     Data ...
const TYPE = 0;
const CODE = 1;
const CHECKSUM = 2;
const IDENTIFIER = 4;
const SEQUENCE = 6;

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
export class IcmpView {
  /** Length of the header: type, code, checksum and the 4-byte rest of header. */
  static readonly HEADER_LEN = 8;

  /** The message this view reads, header first. */
  bytes: Uint8Array = new Uint8Array(0);

  /** Returns a view of `bytes`, or null if they cannot hold the 8-byte header. */
  static parse(bytes: Uint8Array): IcmpView | null {
    return new IcmpView().wrap(bytes);
  }

  /** Re-points this view at `bytes` with the checks of parse(); returns null, leaving it as it was, if they fail. */
  wrap(bytes: Uint8Array): this | null {
    if (bytes.byteLength < IcmpView.HEADER_LEN) return null;
    this.bytes = bytes;
    return this;
  }

  /** Message type (IcmpType). */
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
    return type === IcmpType.ECHO_REQUEST || type === IcmpType.ECHO_REPLY;
  }
  /** The four bytes after the checksum, whatever the type. */
  get restOfHeader(): Uint8Array {
    return this.bytes.subarray(IDENTIFIER, IcmpView.HEADER_LEN);
  }
  /** Everything after the 8-byte header. */
  get payload(): Uint8Array {
    return this.bytes.subarray(IcmpView.HEADER_LEN);
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
    if (offset < 0 || end > buf.byteLength) {
      throw new RangeError(`IcmpView.emitEcho: no room for ${end - offset} bytes at offset ${offset} of ${buf.byteLength}`);
    }
    buf[offset + TYPE] = fields.type;
    buf[offset + CODE] = 0;
    setU16(buf, offset + CHECKSUM, 0);
    setU16(buf, offset + IDENTIFIER, fields.identifier);
    setU16(buf, offset + SEQUENCE, fields.sequenceNumber);
    setU16(buf, offset + CHECKSUM, checksum(buf.subarray(offset, end)));
    return IcmpView.HEADER_LEN;
  }
}
