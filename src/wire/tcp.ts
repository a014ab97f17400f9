// SPDX-License-Identifier: GPL-2.0-or-later
// tcp.ts - zero-copy view of a TCP segment (RFC 9293), its options and its checksum

import { getU16, getU32, pseudoSum, setU16, setU32 } from "./_bytes.ts";
import { checksum } from "./checksum.ts";
import { IpProtocol } from "./ipv4.ts";

//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |          Source Port          |       Destination Port        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                        Sequence Number                        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    Acknowledgment Number                      |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Data |       |C|E|U|A|P|R|S|F|                               |
//  | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//  |       |       |R|E|G|K|H|T|N|N|                               |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |           Checksum            |         Urgent Pointer        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                    Options (Data Offset > 5)                  |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const SRC_PORT = 0;
const DST_PORT = 2;
const SEQ_NUMBER = 4;
const ACK_NUMBER = 8;
const DATA_OFFSET = 12;
const FLAGS = 13;
const WINDOW = 14;
const CHECKSUM = 16;
const URGENT_POINTER = 18;

// Options (RFC 9293 3.2, RFC 7323, RFC 2018): kind, then length (counting
// kind and length bytes) for everything but End of Option List and No-Operation.
//  +--------+--------+---------+--------+
//  |  Kind  | Length |  Value (Length - 2 bytes)
//  +--------+--------+---------+--------+
const OPT_KIND = 0;
const OPT_LENGTH = 1;
const OPT_VALUE = 2;

/** TCP option kinds (IANA). */
export const TcpOptionKind = {
  END: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMPS: 8,
} as const;

/** Bits of the TCP flags byte. */
export const TcpFlag = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** Largest window scale shift: RFC 7323 2.3 says "use 14 instead" of anything larger. */
export const MAX_WINDOW_SCALE = 14;

/** Returns the flags byte as text for logs, e.g. "SYN|ACK" (empty string for none). */
export function tcpFlagsName(flags: number): string {
  let text = "";
  for (const name in TcpFlag) {
    if (flags & TcpFlag[name as keyof typeof TcpFlag]) text += text ? `|${name}` : name;
  }
  return text;
}

/**
 * Options read by TcpView.readOptions(): a record meant to be allocated once and
 * refilled per segment. Absent options are null (or false).
 */
export class TcpOptions {
  /** Maximum segment size in bytes (RFC 9293 3.7.1). */
  mss: number | null = null;
  /** Window scale shift count, clamped to MAX_WINDOW_SCALE (RFC 7323 2). */
  windowScale: number | null = null;
  /** SACK permitted (RFC 2018). */
  sackPermitted = false;
  /** Timestamp value TSval (RFC 7323 3), or null without the timestamps option. */
  timestampValue: number | null = null;
  /** Timestamp echo reply TSecr; meaningful only when timestampValue is not null. */
  timestampEcho = 0;

  /** Resets every option to absent and returns this record. */
  clear(): this {
    this.mss = null;
    this.windowScale = null;
    this.sackPermitted = false;
    this.timestampValue = null;
    this.timestampEcho = 0;
    return this;
  }
}

/** Fields for TcpView.emit(). Options are written in Linux's order: MSS, SACK permitted, timestamps, window scale. */
export interface TcpFields {
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Sequence number. */
  seqNumber: number;
  /** Acknowledgment number (meaningful with TcpFlag.ACK). */
  ackNumber: number;
  /** Flags byte, TcpFlag bits or'ed. */
  flags: number;
  /** Window, unscaled (as carried). */
  window: number;
  /** Urgent pointer; 0 if absent. */
  urgentPointer?: number;
  /** MSS option in bytes; not written if absent. */
  mss?: number;
  /** Window scale option, shift count; not written if absent. */
  windowScale?: number;
  /** SACK-permitted option; not written if absent or false. */
  sackPermitted?: boolean;
  /** Timestamps option TSval; the option is written if present. */
  timestampValue?: number;
  /** Timestamps option TSecr; 0 if absent. */
  timestampEcho?: number;
  /** Length of the data after the header, in bytes, for the checksum; 0 if absent. */
  payloadLength?: number;
  /**
   * Source and destination addresses of the IP header (4 or 16 bytes each).
   * With both, emit() fills the checksum over the payload already in place
   * after the header; without, it leaves the checksum zero.
   */
  src?: Uint8Array;
  dst?: Uint8Array;
}

/**
 * Zero-copy view of a TCP segment: it spans all of `bytes`, since TCP has no
 * length field (pass the IP payload). Guest input goes through parse() or
 * wrap(); once either succeeds, the data offset is at least 5 and the header
 * lies inside `bytes`, and no accessor reads past `bytes`. A view made with
 * `new TcpView()` is empty until wrapped.
 */
export class TcpView {
  /** Length of a header without options. */
  static readonly MIN_HEADER_LEN = 20;
  /** Length of the longest header: data offset 15. */
  static readonly MAX_HEADER_LEN = 60;

  /** The segment this view reads, header first. */
  bytes: Uint8Array = new Uint8Array(0);

  /** Returns a view of `bytes`, or null unless they hold a header with a data offset of 5 or more. */
  static parse(bytes: Uint8Array): TcpView | null {
    return new TcpView().wrap(bytes);
  }

  /** Re-points this view at `bytes` with the checks of parse(); returns null, leaving it as it was, if they fail. */
  wrap(bytes: Uint8Array): this | null {
    if (bytes.byteLength < TcpView.MIN_HEADER_LEN) return null;
    const headerLength = (bytes[DATA_OFFSET]! >>> 4) * 4;
    if (headerLength < TcpView.MIN_HEADER_LEN || headerLength > bytes.byteLength) return null;
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
  /** Sequence number (unsigned 32 bits). */
  get seqNumber(): number {
    return getU32(this.bytes, SEQ_NUMBER);
  }
  set seqNumber(value: number) {
    setU32(this.bytes, SEQ_NUMBER, value);
  }
  /** Acknowledgment number (unsigned 32 bits). */
  get ackNumber(): number {
    return getU32(this.bytes, ACK_NUMBER);
  }
  set ackNumber(value: number) {
    setU32(this.bytes, ACK_NUMBER, value);
  }
  /** Header length in bytes (data offset times 4), options included. */
  get headerLength(): number {
    return (this.bytes[DATA_OFFSET]! >>> 4) * 4;
  }
  /** Flags byte (TcpFlag bits). */
  get flags(): number {
    return this.bytes[FLAGS]!;
  }
  set flags(value: number) {
    this.bytes[FLAGS] = value;
  }
  /** FIN flag. */
  get fin(): boolean {
    return (this.bytes[FLAGS]! & TcpFlag.FIN) !== 0;
  }
  /** SYN flag. */
  get syn(): boolean {
    return (this.bytes[FLAGS]! & TcpFlag.SYN) !== 0;
  }
  /** RST flag. */
  get rst(): boolean {
    return (this.bytes[FLAGS]! & TcpFlag.RST) !== 0;
  }
  /** PSH flag. */
  get psh(): boolean {
    return (this.bytes[FLAGS]! & TcpFlag.PSH) !== 0;
  }
  /** ACK flag. */
  get ack(): boolean {
    return (this.bytes[FLAGS]! & TcpFlag.ACK) !== 0;
  }
  /** URG flag. */
  get urg(): boolean {
    return (this.bytes[FLAGS]! & TcpFlag.URG) !== 0;
  }
  /** Window, unscaled (as carried). */
  get window(): number {
    return getU16(this.bytes, WINDOW);
  }
  set window(value: number) {
    setU16(this.bytes, WINDOW, value);
  }
  /** Checksum field as carried. */
  get checksum(): number {
    return getU16(this.bytes, CHECKSUM);
  }
  set checksum(value: number) {
    setU16(this.bytes, CHECKSUM, value);
  }
  /** Urgent pointer. */
  get urgentPointer(): number {
    return getU16(this.bytes, URGENT_POINTER);
  }
  set urgentPointer(value: number) {
    setU16(this.bytes, URGENT_POINTER, value);
  }
  /** Raw options, between the fixed header and the data. */
  get options(): Uint8Array {
    return this.bytes.subarray(TcpView.MIN_HEADER_LEN, this.headerLength);
  }
  /** Data after the header. */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLength);
  }
  /**
   * Sequence space this segment uses in bytes: its data length plus one each
   * for SYN and FIN (RFC 9293 3.4).
   */
  get sequenceLength(): number {
    const flags = this.bytes[FLAGS]!;
    return this.bytes.byteLength - this.headerLength + (flags & TcpFlag.SYN ? 1 : 0) + (flags & TcpFlag.FIN ? 1 : 0);
  }

  /**
   * Reads MSS, window scale, SACK permitted and timestamps into `out` (cleared
   * first) and returns true; returns false if an option runs past the header,
   * has a length below 2, or a known option has the wrong length. What was read
   * before the bad option stays in `out`. The walk ends at End of Option List
   * and takes at most 40 steps, one per byte of options.
   */
  readOptions(out: TcpOptions): boolean {
    out.clear();
    const bytes = this.bytes;
    const end = this.headerLength;
    let at = TcpView.MIN_HEADER_LEN;
    while (at < end) {
      const kind = bytes[at + OPT_KIND]!;
      if (kind === TcpOptionKind.END) return true;
      if (kind === TcpOptionKind.NOP) {
        at++;
        continue;
      }
      if (at + OPT_LENGTH >= end) return false;
      const length = bytes[at + OPT_LENGTH]!;
      if (length < 2 || at + length > end) return false;
      const value = at + OPT_VALUE;
      switch (kind) {
        case TcpOptionKind.MSS:
          if (length !== 4) return false;
          out.mss = getU16(bytes, value);
          break;
        case TcpOptionKind.WINDOW_SCALE:
          if (length !== 3) return false;
          out.windowScale = Math.min(bytes[value]!, MAX_WINDOW_SCALE);
          break;
        case TcpOptionKind.SACK_PERMITTED:
          if (length !== 2) return false;
          out.sackPermitted = true;
          break;
        case TcpOptionKind.TIMESTAMPS:
          if (length !== 10) return false;
          out.timestampValue = getU32(bytes, value);
          out.timestampEcho = getU32(bytes, value + 4);
          break;
        default:
          break; // SACK blocks and unknown kinds are skipped by their length
      }
      at += length;
    }
    return true;
  }

  /**
   * Returns true if the checksum is correct for the pseudo-header of `src` and
   * `dst` (4-byte addresses: IPv4, 16-byte: IPv6) and the whole segment.
   */
  verifyChecksum(src: Uint8Array, dst: Uint8Array): boolean {
    const init = pseudoSum(src, dst, IpProtocol.TCP, this.bytes.byteLength);
    return checksum(this.bytes, init) === 0;
  }

  /** Computes the checksum for the pseudo-header of `src` and `dst` and the whole segment, and stores it. */
  fillChecksum(src: Uint8Array, dst: Uint8Array): void {
    setU16(this.bytes, CHECKSUM, 0);
    const init = pseudoSum(src, dst, IpProtocol.TCP, this.bytes.byteLength);
    setU16(this.bytes, CHECKSUM, checksum(this.bytes, init));
  }

  /** Returns the header length emit() writes for `fields`, options included, in bytes. */
  static headerLengthFor(fields: TcpFields): number {
    let length = TcpView.MIN_HEADER_LEN;
    if (fields.mss !== undefined) length += 4;
    if (fields.timestampValue !== undefined) length += 12; // two NOPs or SACK permitted, then 10
    else if (fields.sackPermitted) length += 4; // two NOPs, then 2
    if (fields.windowScale !== undefined) length += 4; // NOP, then 3
    return length;
  }

  /**
   * Writes a TCP header with its options at `buf[offset]` and returns the
   * header length. With `fields.src` and `fields.dst` the checksum covers the
   * `payloadLength` bytes already after the header; otherwise it is left zero.
   * Throws RangeError if `buf` has no room for header and payload (a programmer error).
   */
  static emit(buf: Uint8Array, offset: number, fields: TcpFields): number {
    const headerLength = TcpView.headerLengthFor(fields);
    const length = headerLength + (fields.payloadLength ?? 0);
    if (offset < 0 || offset + length > buf.byteLength) {
      throw new RangeError(`TcpView.emit: no room for ${length} bytes at offset ${offset} of ${buf.byteLength}`);
    }
    setU16(buf, offset + SRC_PORT, fields.srcPort);
    setU16(buf, offset + DST_PORT, fields.dstPort);
    setU32(buf, offset + SEQ_NUMBER, fields.seqNumber);
    setU32(buf, offset + ACK_NUMBER, fields.ackNumber);
    buf[offset + DATA_OFFSET] = (headerLength / 4) << 4;
    buf[offset + FLAGS] = fields.flags;
    setU16(buf, offset + WINDOW, fields.window);
    setU16(buf, offset + CHECKSUM, 0);
    setU16(buf, offset + URGENT_POINTER, fields.urgentPointer ?? 0);

    let at = offset + TcpView.MIN_HEADER_LEN;
    if (fields.mss !== undefined) {
      buf[at] = TcpOptionKind.MSS;
      buf[at + 1] = 4;
      setU16(buf, at + 2, fields.mss);
      at += 4;
    }
    if (fields.timestampValue !== undefined) {
      // SACK permitted fills the two bytes that align the timestamps, as Linux sends them.
      if (fields.sackPermitted) {
        buf[at] = TcpOptionKind.SACK_PERMITTED;
        buf[at + 1] = 2;
      } else {
        buf[at] = buf[at + 1] = TcpOptionKind.NOP;
      }
      buf[at + 2] = TcpOptionKind.TIMESTAMPS;
      buf[at + 3] = 10;
      setU32(buf, at + 4, fields.timestampValue);
      setU32(buf, at + 8, fields.timestampEcho ?? 0);
      at += 12;
    } else if (fields.sackPermitted) {
      buf[at] = buf[at + 1] = TcpOptionKind.NOP;
      buf[at + 2] = TcpOptionKind.SACK_PERMITTED;
      buf[at + 3] = 2;
      at += 4;
    }
    if (fields.windowScale !== undefined) {
      buf[at] = TcpOptionKind.NOP;
      buf[at + 1] = TcpOptionKind.WINDOW_SCALE;
      buf[at + 2] = 3;
      buf[at + 3] = fields.windowScale;
    }

    if (fields.src && fields.dst) {
      const init = pseudoSum(fields.src, fields.dst, IpProtocol.TCP, length);
      setU16(buf, offset + CHECKSUM, checksum(buf.subarray(offset, offset + length), init));
    }
    return headerLength;
  }
}
