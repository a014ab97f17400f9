// SPDX-License-Identifier: GPL-2.0-or-later
// ndp.ts - zero-copy views of NDP messages (RFC 4861, RFC 8106 options) and RA/NA emitters
//
// Views cover the ICMPv6 message, from the type byte on. parse() checks the
// type, code 0 and the fixed length (RFC 4861 sections 6.1.1, 6.1.2, 7.1.1,
// 7.1.2); hop limit 255 and the checksum sit in or depend on the IPv6 header
// and are the caller's to check (ndpChecksum(), verifyNdpChecksum()).
//
// Options are type, length in units of 8 octets (header included), value. An
// option of length 0, or one that runs past the message, stops the walk and
// sets `malformed`: RFC 4861 says such a message MUST be silently discarded,
// which the handler does after reading `optionsMalformed`. Unknown options
// are walked over.

import { pseudoSum6, sum16, fold } from "./checksum.ts";
import { decodeNameList, encodeNameList } from "./dnsname.ts";

//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |     Type      |     Code      |          Checksum             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const TYPE = 0, CODE = 1, CHECKSUM = 2;

// Router Solicitation (RFC 4861 section 4.1):
//  |                            Reserved                           |
//  |   Options ...
const RS_OPTIONS = 8;

// Router Advertisement (RFC 4861 section 4.2):
//  | Cur Hop Limit |M|O|  Reserved |       Router Lifetime         |
//  |                         Reachable Time                        |
//  |                          Retrans Timer                        |
//  |   Options ...
const RA_CUR_HOP_LIMIT = 4, RA_FLAGS = 5, RA_ROUTER_LIFETIME = 6, RA_REACHABLE = 8, RA_RETRANS = 12;
const RA_OPTIONS = 16;
const RA_FLAG_MANAGED = 0x80, RA_FLAG_OTHER = 0x40;

// Neighbor Solicitation (4.3) and Advertisement (4.4):
//  |R|S|O|                     Reserved                            |   (NA; reserved in NS)
//  +                       Target Address (16)                     +
//  |   Options ...
const NA_FLAGS = 4, TARGET = 8, NS_OPTIONS = 24, NA_OPTIONS = 24;
const NA_FLAG_ROUTER = 0x80, NA_FLAG_SOLICITED = 0x40, NA_FLAG_OVERRIDE = 0x20;

// Option header (RFC 4861 section 4.6):
//  |     Type      |    Length     |              ...              |
const OPT_TYPE = 0, OPT_LEN = 1, OPT_HEADER_LEN = 2;
const OPT_UNIT = 8;

// Prefix Information option value, offsets after the option header (4.6.2):
//  | Prefix Length |L|A| Reserved1 |                               |
//  |                         Valid Lifetime                        |
//  |                       Preferred Lifetime                      |
//  |                           Reserved2                           |
//  +                            Prefix (16)                        +
const PI_PREFIX_LEN = 0, PI_FLAGS = 1, PI_VALID = 2, PI_PREFERRED = 6, PI_PREFIX = 14, PI_VALUE_LEN = 30;
const PI_FLAG_ON_LINK = 0x80, PI_FLAG_AUTONOMOUS = 0x40;

// MTU option value (4.6.4): Reserved (2), MTU (4).
const MTU_VALUE = 2, MTU_VALUE_LEN = 6;

// RDNSS and DNSSL option values (RFC 8106 5.1, 5.2): Reserved (2), Lifetime (4), then
// addresses (16 each) or names (RFC 1035 wire form, uncompressed, zero-padded).
const DNS_LIFETIME = 2, DNS_DATA = 6;

/** ICMPv6 types of NDP messages (RFC 4861 section 4). */
export const NdpType = {
  ROUTER_SOLICITATION: 133, ROUTER_ADVERTISEMENT: 134, NEIGHBOR_SOLICITATION: 135,
  NEIGHBOR_ADVERTISEMENT: 136, REDIRECT: 137,
} as const;
export type NdpType = (typeof NdpType)[keyof typeof NdpType];

/** NDP option types (RFC 4861 section 4.6, RFC 8106, RFC 3971 nonce). */
export const NdpOption = {
  SOURCE_LL_ADDR: 1, TARGET_LL_ADDR: 2, PREFIX_INFO: 3, REDIRECTED_HEADER: 4, MTU: 5, NONCE: 14,
  RDNSS: 25, DNSSL: 31,
} as const;
export type NdpOption = (typeof NdpOption)[keyof typeof NdpOption];

const ICMPV6_NEXT_HEADER = 58;

function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}
function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}
function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}
function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

/**
 * Returns the ICMPv6 checksum of `message` (RFC 4443 section 2.3) between
 * `src` and `dst` (16 bytes each), computed as if its checksum field were zero.
 */
export function ndpChecksum(message: Uint8Array, src: Uint8Array, dst: Uint8Array): number {
  let sum = pseudoSum6(src, dst, ICMPV6_NEXT_HEADER, message.length);
  sum = sum16(message.subarray(0, Math.min(CHECKSUM, message.length)), sum);
  if (message.length > CHECKSUM + 2) sum = sum16(message.subarray(CHECKSUM + 2), sum);
  return ~fold(sum) & 0xffff;
}

/** Returns true if the checksum field of `message` is right for `src` and `dst`; false for a message under 4 bytes. */
export function verifyNdpChecksum(message: Uint8Array, src: Uint8Array, dst: Uint8Array): boolean {
  return message.length >= 4 && u16(message, CHECKSUM) === ndpChecksum(message, src, dst);
}

/** Writes the ICMPv6 checksum of `message` into its checksum field. `message` must hold at least 4 bytes. */
export function fillNdpChecksum(message: Uint8Array, src: Uint8Array, dst: Uint8Array): void {
  put16(message, CHECKSUM, ndpChecksum(message, src, dst));
}

/**
 * Cursor over NDP options between two offsets: re-pointable and allocation
 * free. After next() returns true, `type`, `valueOffset` and `valueLength`
 * describe one option (value = everything after the type and length bytes).
 */
export class NdpOptionCursor {
  /** Type of the current option. */
  type = -1;
  /** Offset of the current option's value (after its 2-byte header). */
  valueOffset = 0;
  /** Length of the current option's value: 8 * Length - 2. */
  valueLength = 0;
  /** Set on an option of length 0 or one running past the end: the walk stopped there. */
  malformed = false;
  private bytes: Uint8Array = new Uint8Array(0);
  private pos = 0;
  private end = 0;

  /** Points the cursor at the options in `bytes` from `start` to `end`, returning it. */
  reset(bytes: Uint8Array, start: number, end: number): this {
    this.bytes = bytes;
    this.pos = start;
    this.end = Math.min(end, bytes.length);
    this.type = -1;
    this.malformed = false;
    return this;
  }

  /** Returns true and moves to the next option, or false at the end or at a malformed option. */
  next(): boolean {
    if (this.pos >= this.end) return false;
    const b = this.bytes;
    const len = this.pos + OPT_HEADER_LEN <= this.end ? b[this.pos + OPT_LEN]! * OPT_UNIT : 0;
    if (len === 0 || this.pos + len > this.end) {
      this.malformed = true;
      this.pos = this.end;
      return false;
    }
    this.type = b[this.pos + OPT_TYPE]!;
    this.valueOffset = this.pos + OPT_HEADER_LEN;
    this.valueLength = len - OPT_HEADER_LEN;
    this.pos += len;
    return true;
  }

  /** Subarray of the current option's value. */
  get value(): Uint8Array {
    return this.bytes.subarray(this.valueOffset, this.valueOffset + this.valueLength);
  }
}

/** Common part of the four NDP message views: type, code, checksum and options. */
abstract class NdpMessage {
  bytes: Uint8Array;
  private readonly cursor = new NdpOptionCursor();

  protected constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** Offset of the first option. */
  protected abstract get optionsStart(): number;

  get type(): number { return this.bytes[TYPE]!; }
  get code(): number { return this.bytes[CODE]!; }
  get checksum(): number { return u16(this.bytes, CHECKSUM); }

  /** Returns this view's cursor reset to the first option (shared: one walk at a time). */
  options(): NdpOptionCursor {
    return this.cursor.reset(this.bytes, this.optionsStart, this.bytes.length);
  }

  /** True if an option has length 0 or runs past the end (RFC 4861: discard the message). */
  get optionsMalformed(): boolean {
    const c = this.options();
    while (c.next());
    return c.malformed;
  }

  /** Returns the value of the first option of `type` (after its 2-byte header), or null if absent. */
  findOption(type: number): Uint8Array | null {
    const c = this.options();
    while (c.next()) if (c.type === type) return c.value;
    return null;
  }

  /** Returns the 6-byte Ethernet address of the source link-layer address option, or null if absent. */
  get sourceLinkAddress(): Uint8Array | null {
    const v = this.findOption(NdpOption.SOURCE_LL_ADDR);
    return v ? v.subarray(0, 6) : null;
  }

  /** Returns the 6-byte Ethernet address of the target link-layer address option, or null if absent. */
  get targetLinkAddress(): Uint8Array | null {
    const v = this.findOption(NdpOption.TARGET_LL_ADDR);
    return v ? v.subarray(0, 6) : null;
  }
}

/** Returns true if `bytes` start an NDP message of `type`, code 0, at least `minLen` long. */
function validNdp(bytes: Uint8Array, type: number, minLen: number): boolean {
  return bytes.length >= minLen && bytes[TYPE] === type && bytes[CODE] === 0;
}

/** Zero-copy view of a Router Solicitation. */
export class NdpRouterSolicitation extends NdpMessage {
  static readonly MIN_LEN = RS_OPTIONS;
  protected override get optionsStart(): number { return RS_OPTIONS; }

  /** Returns a view, or null unless `bytes` are an RS (type 133, code 0) of at least 8 bytes. */
  static parse(bytes: Uint8Array): NdpRouterSolicitation | null {
    return validNdp(bytes, NdpType.ROUTER_SOLICITATION, RS_OPTIONS) ? new NdpRouterSolicitation(bytes) : null;
  }

  /** Re-points this view. Returns it, or null if parse() would refuse `bytes`. */
  wrap(bytes: Uint8Array): this | null {
    this.bytes = bytes;
    return validNdp(bytes, NdpType.ROUTER_SOLICITATION, RS_OPTIONS) ? this : null;
  }
}

/** Zero-copy view of a Router Advertisement. */
export class NdpRouterAdvertisement extends NdpMessage {
  static readonly MIN_LEN = RA_OPTIONS;
  protected override get optionsStart(): number { return RA_OPTIONS; }

  /** Returns a view, or null unless `bytes` are an RA (type 134, code 0) of at least 16 bytes. */
  static parse(bytes: Uint8Array): NdpRouterAdvertisement | null {
    return validNdp(bytes, NdpType.ROUTER_ADVERTISEMENT, RA_OPTIONS) ? new NdpRouterAdvertisement(bytes) : null;
  }

  /** Re-points this view. Returns it, or null if parse() would refuse `bytes`. */
  wrap(bytes: Uint8Array): this | null {
    this.bytes = bytes;
    return validNdp(bytes, NdpType.ROUTER_ADVERTISEMENT, RA_OPTIONS) ? this : null;
  }

  get curHopLimit(): number { return this.bytes[RA_CUR_HOP_LIMIT]!; }
  /** M: addresses are available from DHCPv6. */
  get managed(): boolean { return (this.bytes[RA_FLAGS]! & RA_FLAG_MANAGED) !== 0; }
  /** O: other configuration is available from DHCPv6. */
  get other(): boolean { return (this.bytes[RA_FLAGS]! & RA_FLAG_OTHER) !== 0; }
  /** The whole flags byte (M, O, H, Prf, P). */
  get flags(): number { return this.bytes[RA_FLAGS]!; }
  get routerLifetimeS(): number { return u16(this.bytes, RA_ROUTER_LIFETIME); }
  get reachableTimeMs(): number { return u32(this.bytes, RA_REACHABLE); }
  get retransTimerMs(): number { return u32(this.bytes, RA_RETRANS); }

  /** Returns the first prefix information option's value, or null if absent or shorter than 30 bytes; read with NdpPrefixInfo. */
  get prefixInfo(): Uint8Array | null {
    const v = this.findOption(NdpOption.PREFIX_INFO);
    return v && v.length >= PI_VALUE_LEN ? v : null;
  }

  /** Returns the MTU option's value in bytes, or null if absent. */
  get mtu(): number | null {
    const v = this.findOption(NdpOption.MTU);
    return v && v.length >= MTU_VALUE_LEN ? u32(v, MTU_VALUE) : null;
  }

  /** Returns the first RDNSS option's value, or null if absent or holding no address (RFC 8106: length at least 3). */
  get rdnss(): Uint8Array | null {
    const v = this.findOption(NdpOption.RDNSS);
    return v && v.length >= DNS_DATA + 16 ? v : null;
  }

  /** Returns the first DNSSL option's value, or null if absent or holding no name (RFC 8106: length at least 2). */
  get dnssl(): Uint8Array | null {
    const v = this.findOption(NdpOption.DNSSL);
    return v && v.length > DNS_DATA ? v : null;
  }
}

/** Zero-copy view of a Neighbor Solicitation. */
export class NdpNeighborSolicitation extends NdpMessage {
  static readonly MIN_LEN = NS_OPTIONS;
  protected override get optionsStart(): number { return NS_OPTIONS; }

  /** Returns a view, or null unless `bytes` are an NS (type 135, code 0) of at least 24 bytes. */
  static parse(bytes: Uint8Array): NdpNeighborSolicitation | null {
    return validNdp(bytes, NdpType.NEIGHBOR_SOLICITATION, NS_OPTIONS) ? new NdpNeighborSolicitation(bytes) : null;
  }

  /** Re-points this view. Returns it, or null if parse() would refuse `bytes`. */
  wrap(bytes: Uint8Array): this | null {
    this.bytes = bytes;
    return validNdp(bytes, NdpType.NEIGHBOR_SOLICITATION, NS_OPTIONS) ? this : null;
  }

  /** The address asked about, 16 bytes. */
  get target(): Uint8Array { return this.bytes.subarray(TARGET, TARGET + 16); }
}

/** Zero-copy view of a Neighbor Advertisement. */
export class NdpNeighborAdvertisement extends NdpMessage {
  static readonly MIN_LEN = NA_OPTIONS;
  protected override get optionsStart(): number { return NA_OPTIONS; }

  /** Returns a view, or null unless `bytes` are an NA (type 136, code 0) of at least 24 bytes. */
  static parse(bytes: Uint8Array): NdpNeighborAdvertisement | null {
    return validNdp(bytes, NdpType.NEIGHBOR_ADVERTISEMENT, NA_OPTIONS) ? new NdpNeighborAdvertisement(bytes) : null;
  }

  /** Re-points this view. Returns it, or null if parse() would refuse `bytes`. */
  wrap(bytes: Uint8Array): this | null {
    this.bytes = bytes;
    return validNdp(bytes, NdpType.NEIGHBOR_ADVERTISEMENT, NA_OPTIONS) ? this : null;
  }

  get router(): boolean { return (this.bytes[NA_FLAGS]! & NA_FLAG_ROUTER) !== 0; }
  get solicited(): boolean { return (this.bytes[NA_FLAGS]! & NA_FLAG_SOLICITED) !== 0; }
  get override(): boolean { return (this.bytes[NA_FLAGS]! & NA_FLAG_OVERRIDE) !== 0; }
  /** The address advertised, 16 bytes. */
  get target(): Uint8Array { return this.bytes.subarray(TARGET, TARGET + 16); }
}

/** Any NDP message view parseNdp() returns. */
export type NdpView = NdpRouterSolicitation | NdpRouterAdvertisement | NdpNeighborSolicitation | NdpNeighborAdvertisement;

/**
 * Returns a view of the RS, RA, NS or NA in `bytes`, by type, or null for any
 * other type or a message its parse() refuses.
 */
export function parseNdp(bytes: Uint8Array): NdpView | null {
  switch (bytes[TYPE]) {
    case NdpType.ROUTER_SOLICITATION: return NdpRouterSolicitation.parse(bytes);
    case NdpType.ROUTER_ADVERTISEMENT: return NdpRouterAdvertisement.parse(bytes);
    case NdpType.NEIGHBOR_SOLICITATION: return NdpNeighborSolicitation.parse(bytes);
    case NdpType.NEIGHBOR_ADVERTISEMENT: return NdpNeighborAdvertisement.parse(bytes);
    default: return null;
  }
}

/** Readers of a prefix information option value (at least 30 bytes, as NdpRouterAdvertisement.prefixInfo guarantees). */
export const NdpPrefixInfo = {
  prefixLength: (v: Uint8Array): number => v[PI_PREFIX_LEN]!,
  onLink: (v: Uint8Array): boolean => (v[PI_FLAGS]! & PI_FLAG_ON_LINK) !== 0,
  autonomous: (v: Uint8Array): boolean => (v[PI_FLAGS]! & PI_FLAG_AUTONOMOUS) !== 0,
  validLifetimeS: (v: Uint8Array): number => u32(v, PI_VALID),
  preferredLifetimeS: (v: Uint8Array): number => u32(v, PI_PREFERRED),
  prefix: (v: Uint8Array): Uint8Array => v.subarray(PI_PREFIX, PI_PREFIX + 16),
} as const;

/** Returns the lifetime in seconds of an RDNSS or DNSSL option value (at least 6 bytes). */
export function ndpDnsLifetimeS(value: Uint8Array): number {
  return u32(value, DNS_LIFETIME);
}

/** Returns the addresses of an RDNSS option value, 16 bytes each, as one subarray (a trailing partial address is left out). */
export function ndpRdnssAddresses(value: Uint8Array): Uint8Array {
  const n = Math.max(0, Math.floor((value.length - DNS_DATA) / 16));
  return value.subarray(DNS_DATA, DNS_DATA + n * 16);
}

/** Returns the search domains of a DNSSL option value, or null if the names are malformed (RFC 8106 5.2: uncompressed, zero-padded). */
export function ndpDnsslNames(value: Uint8Array): string[] | null {
  if (value.length < DNS_DATA) return null;
  return decodeNameList(value.subarray(DNS_DATA), { padding: true });
}

/** The prefix information option of an RA. */
export interface NdpPrefixInfoFields {
  /** 16 bytes; bits past `prefixLength` are written as zero (RFC 4861 4.6.2). */
  prefix: Uint8Array;
  prefixLength: number;
  onLink: boolean;
  autonomous: boolean;
  validLifetimeS: number;
  preferredLifetimeS: number;
}

/**
 * What emitRouterAdvertisement() writes. Options go out in passt's order,
 * each only if given: prefix information, MTU, RDNSS, DNSSL, source link-layer address.
 */
export interface NdpRaFields {
  curHopLimit: number;
  managed?: boolean;
  other?: boolean;
  routerLifetimeS: number;
  reachableTimeMs?: number;
  retransTimerMs?: number;
  prefixInfo?: NdpPrefixInfoFields;
  mtu?: number;
  /** Recursive DNS servers (16-byte addresses); no option if empty. */
  rdnss?: { lifetimeS: number; servers: readonly Uint8Array[] };
  /** DNS search list; no option if empty. */
  dnssl?: { lifetimeS: number; names: readonly string[] };
  /** Our 6-byte MAC address. */
  sourceLinkAddress?: Uint8Array;
}

/** Writes a link-layer address option (8 bytes) at `pos`; returns the new offset or -1 if it does not fit. */
function writeLinkAddress(out: Uint8Array, pos: number, type: number, mac: Uint8Array): number {
  if (pos + OPT_UNIT > out.length) return -1;
  out[pos + OPT_TYPE] = type;
  out[pos + OPT_LEN] = 1;
  out.fill(0, pos + OPT_HEADER_LEN, pos + OPT_UNIT);
  out.set(mac.subarray(0, 6), pos + OPT_HEADER_LEN);
  return pos + OPT_UNIT;
}

/**
 * Writes a Router Advertisement into `out` and returns its length, or -1 if
 * `out` is too small or a search domain is not a valid name. The checksum
 * field is left zero: fill it with fillNdpChecksum() once the addresses are
 * known. Reserved bytes are zeroed.
 * @example
 * const len = emitRouterAdvertisement(buf, { curHopLimit: 255, managed: true, routerLifetimeS: 9000 });
 * fillNdpChecksum(buf.subarray(0, len), ourLinkLocal, guestAddress);
 */
export function emitRouterAdvertisement(out: Uint8Array, fields: NdpRaFields): number {
  if (out.length < RA_OPTIONS) return -1;
  out.fill(0, 0, RA_OPTIONS);
  out[TYPE] = NdpType.ROUTER_ADVERTISEMENT;
  out[RA_CUR_HOP_LIMIT] = fields.curHopLimit;
  out[RA_FLAGS] = (fields.managed ? RA_FLAG_MANAGED : 0) | (fields.other ? RA_FLAG_OTHER : 0);
  put16(out, RA_ROUTER_LIFETIME, fields.routerLifetimeS);
  put32(out, RA_REACHABLE, fields.reachableTimeMs ?? 0);
  put32(out, RA_RETRANS, fields.retransTimerMs ?? 0);
  let pos = RA_OPTIONS;

  const pi = fields.prefixInfo;
  if (pi) {
    const len = OPT_HEADER_LEN + PI_VALUE_LEN;
    if (pos + len > out.length || pi.prefixLength > 128) return -1;
    out.fill(0, pos, pos + len);
    out[pos + OPT_TYPE] = NdpOption.PREFIX_INFO;
    out[pos + OPT_LEN] = len / OPT_UNIT;
    const v = pos + OPT_HEADER_LEN;
    out[v + PI_PREFIX_LEN] = pi.prefixLength;
    out[v + PI_FLAGS] = (pi.onLink ? PI_FLAG_ON_LINK : 0) | (pi.autonomous ? PI_FLAG_AUTONOMOUS : 0);
    put32(out, v + PI_VALID, pi.validLifetimeS);
    put32(out, v + PI_PREFERRED, pi.preferredLifetimeS);
    for (let i = 0; i < 16; i++) {
      const bits = Math.min(8, Math.max(0, pi.prefixLength - i * 8));
      out[v + PI_PREFIX + i] = pi.prefix[i]! & ((0xff00 >>> bits) & 0xff);
    }
    pos += len;
  }

  if (fields.mtu !== undefined) {
    if (pos + OPT_UNIT > out.length) return -1;
    out[pos + OPT_TYPE] = NdpOption.MTU;
    out[pos + OPT_LEN] = 1;
    put16(out, pos + OPT_HEADER_LEN, 0);
    put32(out, pos + OPT_HEADER_LEN + MTU_VALUE, fields.mtu);
    pos += OPT_UNIT;
  }

  const rdnss = fields.rdnss;
  if (rdnss && rdnss.servers.length > 0) {
    const len = OPT_UNIT + rdnss.servers.length * 16;
    if (pos + len > out.length || len / OPT_UNIT > 255) return -1;
    out[pos + OPT_TYPE] = NdpOption.RDNSS;
    out[pos + OPT_LEN] = len / OPT_UNIT;
    put16(out, pos + OPT_HEADER_LEN, 0);
    put32(out, pos + OPT_HEADER_LEN + DNS_LIFETIME, rdnss.lifetimeS);
    for (let i = 0; i < rdnss.servers.length; i++) out.set(rdnss.servers[i]!.subarray(0, 16), pos + OPT_UNIT + i * 16);
    pos += len;
  }

  const dnssl = fields.dnssl;
  if (dnssl && dnssl.names.length > 0) {
    const end = encodeNameList(dnssl.names, out, pos + OPT_UNIT, false);
    if (end < 0) return -1;
    const len = Math.ceil((end - pos) / OPT_UNIT) * OPT_UNIT;
    if (pos + len > out.length || len / OPT_UNIT > 255) return -1;
    out.fill(0, end, pos + len);
    out[pos + OPT_TYPE] = NdpOption.DNSSL;
    out[pos + OPT_LEN] = len / OPT_UNIT;
    put16(out, pos + OPT_HEADER_LEN, 0);
    put32(out, pos + OPT_HEADER_LEN + DNS_LIFETIME, dnssl.lifetimeS);
    pos += len;
  }

  if (fields.sourceLinkAddress) pos = writeLinkAddress(out, pos, NdpOption.SOURCE_LL_ADDR, fields.sourceLinkAddress);
  return pos;
}

/** What emitNeighborAdvertisement() writes. */
export interface NdpNaFields {
  router: boolean;
  solicited: boolean;
  override: boolean;
  /** 16 bytes: the target of the solicitation answered. */
  target: Uint8Array;
  /** Our 6-byte MAC address, as a target link-layer address option. */
  targetLinkAddress?: Uint8Array;
}

/**
 * Writes a Neighbor Advertisement into `out` and returns its length (24, or
 * 32 with the link-layer option), or -1 if `out` is too small. The checksum
 * field is left zero: fill it with fillNdpChecksum().
 */
export function emitNeighborAdvertisement(out: Uint8Array, fields: NdpNaFields): number {
  if (out.length < NA_OPTIONS) return -1;
  out.fill(0, 0, NA_OPTIONS);
  out[TYPE] = NdpType.NEIGHBOR_ADVERTISEMENT;
  out[NA_FLAGS] =
    (fields.router ? NA_FLAG_ROUTER : 0) | (fields.solicited ? NA_FLAG_SOLICITED : 0) |
    (fields.override ? NA_FLAG_OVERRIDE : 0);
  out.set(fields.target.subarray(0, 16), TARGET);
  if (!fields.targetLinkAddress) return NA_OPTIONS;
  return writeLinkAddress(out, NA_OPTIONS, NdpOption.TARGET_LL_ADDR, fields.targetLinkAddress);
}
