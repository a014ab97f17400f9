// SPDX-License-Identifier: GPL-2.0-or-later
// arp.ts - zero-copy view of an ARP packet (RFC 826)

import { constName, getU16, setU16 } from "./_bytes.ts";
import { EtherType } from "./ethernet.ts";

//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |         Hardware Type         |         Protocol Type         |
//  +---------------+---------------+-------------------------------+
//  |  Hardware Len |  Protocol Len |           Operation           |
//  +---------------+---------------+-------------------------------+
//  |  Sender hardware address (Hardware Len bytes)                 |
//  |  Sender protocol address (Protocol Len bytes)                 |
//  |  Target hardware address (Hardware Len bytes)                 |
//  |  Target protocol address (Protocol Len bytes)                 |
//  +---------------------------------------------------------------+
const HARDWARE_TYPE = 0;
const PROTOCOL_TYPE = 2;
const HARDWARE_LEN = 4;
const PROTOCOL_LEN = 5;
const OPERATION = 6;
const ADDRESSES = 8;

/** ARP operation codes (RFC 826, RFC 5494). */
export const ArpOperation = { REQUEST: 1, REPLY: 2 } as const;
export type ArpOperation = (typeof ArpOperation)[keyof typeof ArpOperation];

/** ARP hardware types (IANA); only Ethernet is used here. */
export const ArpHardware = { ETHERNET: 1 } as const;

/** Returns the name of an ARP operation for logs ("REQUEST"), or its hex value. */
export function arpOperationName(value: number): string {
  return constName(ArpOperation, value, 4);
}

/** Fields for ArpView.emit(), which writes Ethernet/IPv4 ARP only. */
export interface ArpFields {
  /** ArpOperation.REQUEST or ArpOperation.REPLY. */
  operation: number;
  /** Sender MAC address, 6 bytes. */
  senderHardwareAddr: Uint8Array;
  /** Sender IPv4 address, 4 bytes. */
  senderProtocolAddr: Uint8Array;
  /** Target MAC address, 6 bytes (zero in a request). */
  targetHardwareAddr: Uint8Array;
  /** Target IPv4 address, 4 bytes. */
  targetProtocolAddr: Uint8Array;
}

/**
 * Zero-copy view of an ARP packet of any hardware and protocol address sizes.
 * Guest input goes through parse() or wrap(); once either succeeds, the four
 * addresses lie inside `bytes`. isEthernetIpv4 says whether it is the only kind
 * passt answers (RFC 826 with 6-byte MACs and 4-byte IPv4 addresses).
 */
export class ArpView {
  /** Length of the fixed part, before the addresses. */
  static readonly FIXED_LEN = 8;
  /** Length of an Ethernet/IPv4 ARP packet. */
  static readonly ETHERNET_IPV4_LEN = 28;

  /** The packet this view reads. */
  bytes: Uint8Array = new Uint8Array(0);

  /** Returns a view of `bytes`, or null if they cannot hold the addresses the length fields announce. */
  static parse(bytes: Uint8Array): ArpView | null {
    return new ArpView().wrap(bytes);
  }

  /** Re-points this view at `bytes` with the checks of parse(); returns null, leaving it as it was, if they fail. */
  wrap(bytes: Uint8Array): this | null {
    if (bytes.byteLength < ArpView.FIXED_LEN) return null;
    const addressesLen = 2 * (bytes[HARDWARE_LEN]! + bytes[PROTOCOL_LEN]!);
    if (ArpView.FIXED_LEN + addressesLen > bytes.byteLength) return null;
    this.bytes = bytes;
    return this;
  }

  /** Hardware type (ArpHardware.ETHERNET is 1). */
  get hardwareType(): number {
    return getU16(this.bytes, HARDWARE_TYPE);
  }
  /** Protocol type, an EtherType (EtherType.IPV4). */
  get protocolType(): number {
    return getU16(this.bytes, PROTOCOL_TYPE);
  }
  /** Length of a hardware address in bytes. */
  get hardwareLength(): number {
    return this.bytes[HARDWARE_LEN]!;
  }
  /** Length of a protocol address in bytes. */
  get protocolLength(): number {
    return this.bytes[PROTOCOL_LEN]!;
  }
  /** Operation (ArpOperation). */
  get operation(): number {
    return getU16(this.bytes, OPERATION);
  }
  set operation(value: number) {
    setU16(this.bytes, OPERATION, value);
  }

  /** True for Ethernet hardware with 6-byte addresses carrying 4-byte IPv4 addresses. */
  get isEthernetIpv4(): boolean {
    return (
      this.hardwareType === ArpHardware.ETHERNET &&
      this.protocolType === EtherType.IPV4 &&
      this.hardwareLength === 6 &&
      this.protocolLength === 4
    );
  }

  /** Sender hardware address (a view into the packet). */
  get senderHardwareAddr(): Uint8Array {
    return this.bytes.subarray(ADDRESSES, ADDRESSES + this.hardwareLength);
  }
  /** Sender protocol address (a view into the packet). */
  get senderProtocolAddr(): Uint8Array {
    const start = ADDRESSES + this.hardwareLength;
    return this.bytes.subarray(start, start + this.protocolLength);
  }
  /** Target hardware address (a view into the packet). */
  get targetHardwareAddr(): Uint8Array {
    const start = ADDRESSES + this.hardwareLength + this.protocolLength;
    return this.bytes.subarray(start, start + this.hardwareLength);
  }
  /** Target protocol address (a view into the packet). */
  get targetProtocolAddr(): Uint8Array {
    const start = ADDRESSES + 2 * this.hardwareLength + this.protocolLength;
    return this.bytes.subarray(start, start + this.protocolLength);
  }

  /**
   * Writes an Ethernet/IPv4 ARP packet at `buf[offset]` and returns its length (28).
   * Throws RangeError if `buf` has no room for it (a programmer error).
   */
  static emit(buf: Uint8Array, offset: number, fields: ArpFields): number {
    if (offset < 0 || offset + ArpView.ETHERNET_IPV4_LEN > buf.byteLength) {
      throw new RangeError(`ArpView.emit: no room at offset ${offset} of ${buf.byteLength}`);
    }
    setU16(buf, offset + HARDWARE_TYPE, ArpHardware.ETHERNET);
    setU16(buf, offset + PROTOCOL_TYPE, EtherType.IPV4);
    buf[offset + HARDWARE_LEN] = 6;
    buf[offset + PROTOCOL_LEN] = 4;
    setU16(buf, offset + OPERATION, fields.operation);
    buf.set(fields.senderHardwareAddr.subarray(0, 6), offset + 8);
    buf.set(fields.senderProtocolAddr.subarray(0, 4), offset + 14);
    buf.set(fields.targetHardwareAddr.subarray(0, 6), offset + 18);
    buf.set(fields.targetProtocolAddr.subarray(0, 4), offset + 24);
    return ArpView.ETHERNET_IPV4_LEN;
  }
}
