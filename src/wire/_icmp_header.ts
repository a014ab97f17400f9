// SPDX-License-Identifier: GPL-2.0-or-later
// _icmp_header.ts - what ICMP (RFC 792) and ICMPv6 (RFC 4443) headers share: type, code, checksum, echo fields

import { getU16, setU16 } from "./_bytes.ts";

//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |     Type      |     Code      |          Checksum             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |           Identifier          |        Sequence Number        |   (echo; other
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+    types differ)
//  |     Data ...
export const TYPE = 0;
export const CODE = 1;
export const CHECKSUM = 2;
export const IDENTIFIER = 4;
export const SEQUENCE = 6;
/** Length of the header: type, code, checksum and the 4 bytes after it. */
export const ICMP_HEADER_LEN = 8;

/**
 * The header fields both ICMP versions share, over `bytes` (the whole message).
 * Subclasses add the checked way in, their echo types and their checksum rules.
 */
export abstract class IcmpHeaderView {
  /** Length of the header: type, code, checksum and the 4 bytes after it. */
  static readonly HEADER_LEN = ICMP_HEADER_LEN;

  /** The message this view reads, header first. */
  bytes: Uint8Array = new Uint8Array(0);

  /** Re-points this view at `bytes`; returns null, leaving it as it was, if they cannot hold the header. */
  wrap(bytes: Uint8Array): this | null {
    if (bytes.byteLength < ICMP_HEADER_LEN) return null;
    this.bytes = bytes;
    return this;
  }

  /** Message type. */
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
  /** The four bytes after the checksum, whatever the type. */
  get restOfHeader(): Uint8Array {
    return this.bytes.subarray(IDENTIFIER, ICMP_HEADER_LEN);
  }
  /** Everything after the 8-byte header. */
  get payload(): Uint8Array {
    return this.bytes.subarray(ICMP_HEADER_LEN);
  }
}

/**
 * Writes an echo header (checksum zero) at `buf[offset]` for a message of `length`
 * bytes, payload included; throws RangeError if `buf` has no room (a programmer error).
 */
export function writeEchoHeader(
  who: string,
  buf: Uint8Array,
  offset: number,
  length: number,
  fields: { type: number; identifier: number; sequenceNumber: number },
): void {
  if (offset < 0 || offset + length > buf.byteLength) {
    throw new RangeError(`${who}: no room for ${length} bytes at offset ${offset} of ${buf.byteLength}`);
  }
  buf[offset + TYPE] = fields.type;
  buf[offset + CODE] = 0;
  setU16(buf, offset + CHECKSUM, 0);
  setU16(buf, offset + IDENTIFIER, fields.identifier);
  setU16(buf, offset + SEQUENCE, fields.sequenceNumber);
}
