// SPDX-License-Identifier: GPL-2.0-or-later
// ethernet.ts - zero-copy view of an Ethernet II frame header (IEEE 802.3, RFC 894)

import { constName, getU16, setU16 } from "./_bytes.ts";

//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                Destination MAC address (6 bytes)              |
//  +                               +-------------------------------+
//  |                               |                               |
//  +-------------------------------+                               +
//  |                  Source MAC address (6 bytes)                 |
//  +-------------------------------+-------------------------------+
//  |           EtherType           |  Payload ...
//  +-------------------------------+
const DST_MAC = 0;
const SRC_MAC = 6;
const ETHER_TYPE = 12;
const MAC_LEN = 6;

/** EtherType values we handle (IEEE registry); others stay plain numbers. */
export const EtherType = {
  IPV4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  IPV6: 0x86dd,
} as const;
export type EtherType = (typeof EtherType)[keyof typeof EtherType];

/** Returns the name of an EtherType for logs ("IPV6"), or its hex value ("0x88cc"). */
export function etherTypeName(value: number): string {
  return constName(EtherType, value, 4);
}

/** Header fields for EthernetView.emit(). */
export interface EthernetFields {
  /** Destination MAC address, 6 bytes. */
  dst: Uint8Array;
  /** Source MAC address, 6 bytes. */
  src: Uint8Array;
  /** EtherType of the payload, e.g. EtherType.IPV4. */
  etherType: number;
}

/**
 * Zero-copy view of an Ethernet II header and its payload.
 * Guest input goes through parse() or wrap(); once either succeeds, no accessor
 * reads past `bytes`. A view made with `new EthernetView()` is empty until wrapped.
 * @example
 * const eth = EthernetView.parse(frame);
 * if (eth?.etherType === EtherType.ARP) handleArp(eth.payload);
 */
export class EthernetView {
  /** Length of the header: two MAC addresses and the EtherType. */
  static readonly HEADER_LEN = 14;

  /** The frame this view reads, header first. */
  bytes: Uint8Array = new Uint8Array(0);

  /** Returns a view of `bytes`, or null if they cannot hold an Ethernet header. */
  static parse(bytes: Uint8Array): EthernetView | null {
    return new EthernetView().wrap(bytes);
  }

  /**
   * Re-points this view at `bytes` and returns it, with the checks of parse();
   * returns null, leaving the view as it was, if they fail.
   */
  wrap(bytes: Uint8Array): this | null {
    if (bytes.byteLength < EthernetView.HEADER_LEN) return null;
    this.bytes = bytes;
    return this;
  }

  /** Destination MAC address (a view into the frame). */
  get dstMac(): Uint8Array {
    return this.bytes.subarray(DST_MAC, DST_MAC + MAC_LEN);
  }
  set dstMac(mac: Uint8Array) {
    this.bytes.set(mac.subarray(0, MAC_LEN), DST_MAC);
  }

  /** Source MAC address (a view into the frame). */
  get srcMac(): Uint8Array {
    return this.bytes.subarray(SRC_MAC, SRC_MAC + MAC_LEN);
  }
  set srcMac(mac: Uint8Array) {
    this.bytes.set(mac.subarray(0, MAC_LEN), SRC_MAC);
  }
  /** Returns true if the source address is `mac` (6 bytes), without making a view as srcMac does. */
  srcMacIs(mac: Uint8Array): boolean {
    for (let i = 0; i < MAC_LEN; i++) if (this.bytes[SRC_MAC + i] !== mac[i]) return false;
    return true;
  }

  /** EtherType of the payload (see EtherType). */
  get etherType(): number {
    return getU16(this.bytes, ETHER_TYPE);
  }
  set etherType(value: number) {
    setU16(this.bytes, ETHER_TYPE, value);
  }

  /** Everything after the header, including any link-layer padding. */
  get payload(): Uint8Array {
    return this.bytes.subarray(EthernetView.HEADER_LEN);
  }

  /**
   * Writes an Ethernet header at `buf[offset]` and returns its length (14).
   * Throws RangeError if `buf` has no room for it (a programmer error).
   */
  static emit(buf: Uint8Array, offset: number, fields: EthernetFields): number {
    if (offset < 0 || offset + EthernetView.HEADER_LEN > buf.byteLength) {
      throw new RangeError(`EthernetView.emit: no room at offset ${offset} of ${buf.byteLength}`);
    }
    buf.set(fields.dst.subarray(0, MAC_LEN), offset + DST_MAC);
    buf.set(fields.src.subarray(0, MAC_LEN), offset + SRC_MAC);
    setU16(buf, offset + ETHER_TYPE, fields.etherType);
    return EthernetView.HEADER_LEN;
  }
}
