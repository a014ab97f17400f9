// SPDX-License-Identifier: GPL-2.0-or-later
// dhcpv6.ts - zero-copy view of DHCPv6 client/server messages (RFC 8415) and an advertise/reply emitter
//
// The view covers the UDP payload on ports 546/547. Relay messages (RELAY-FORW,
// RELAY-REPL), whose header differs, are refused by parse(): we serve one link
// and no relay. Options are 16-bit code, 16-bit length, value (RFC 8415
// section 21.1); an option whose length runs past its container stops the walk
// and sets `malformed` on the cursor. The same cursor walks options nested in
// IA_NA and IA Address options.

import { encodeName, encodeNameList } from "./dnsname.ts";

//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |    msg-type   |               transaction-id                  |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  .                            options                            .   (RFC 8415 section 8)
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const MSG_TYPE = 0, XID = 1, OPTIONS = 4;

//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |          option-code          |           option-len          |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                          option-data                          |   (RFC 8415 section 21.1)
const OPT_HEADER_LEN = 4;

//  IA_NA option data (RFC 8415 section 21.4):   IA Address option data (section 21.6):
//  +-------------------------------+            +-------------------------------+
//  |        IAID (4 octets)        |            |   IPv6-address (16 octets)    |
//  |        T1 (4), T2 (4)         |            | preferred-lifetime (4)        |
//  |        IA_NA-options          |            | valid-lifetime (4)            |
//  +-------------------------------+            | IAaddr-options                |
const IA_IAID = 0, IA_T1 = 4, IA_T2 = 8, IA_OPTIONS = 12;
const IAADDR_ADDRESS = 0, IAADDR_PREFERRED = 16, IAADDR_VALID = 20, IAADDR_OPTIONS = 24;

/** DHCPv6 message types (RFC 8415 section 7.3). */
export const Dhcpv6MessageType = {
  SOLICIT: 1, ADVERTISE: 2, REQUEST: 3, CONFIRM: 4, RENEW: 5, REBIND: 6, REPLY: 7, RELEASE: 8,
  DECLINE: 9, RECONFIGURE: 10, INFORMATION_REQUEST: 11, RELAY_FORW: 12, RELAY_REPL: 13,
} as const;
export type Dhcpv6MessageType = (typeof Dhcpv6MessageType)[keyof typeof Dhcpv6MessageType];

/** Option codes we read or write (RFC 8415 section 21, RFC 3646, RFC 4704). */
export const Dhcpv6Option = {
  CLIENT_ID: 1, SERVER_ID: 2, IA_NA: 3, IA_TA: 4, IA_ADDRESS: 5, ORO: 6, ELAPSED_TIME: 8,
  STATUS_CODE: 13, RAPID_COMMIT: 14, DNS_SERVERS: 23, DOMAIN_LIST: 24, CLIENT_FQDN: 39,
} as const;
export type Dhcpv6Option = (typeof Dhcpv6Option)[keyof typeof Dhcpv6Option];

/** Status codes (RFC 8415 section 21.13). */
export const Dhcpv6Status = {
  SUCCESS: 0, UNSPEC_FAIL: 1, NO_ADDRS_AVAIL: 2, NO_BINDING: 3, NOT_ON_LINK: 4, USE_MULTICAST: 5,
  NO_PREFIX_AVAIL: 6,
} as const;
export type Dhcpv6Status = (typeof Dhcpv6Status)[keyof typeof Dhcpv6Status];

/** Client FQDN option flags (RFC 4704 section 4.1). */
export const Dhcpv6FqdnFlag = { S: 0x01, O: 0x02, N: 0x04 } as const;

/** Length of the message header (type and transaction ID). */
export const DHCPV6_HEADER_LEN = OPTIONS;

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
 * Cursor over DHCPv6 options between two offsets: re-pointable and
 * allocation free. After next() returns true, `code`, `valueOffset` and
 * `valueLength` describe one option; `value` is a subarray of it.
 */
export class Dhcpv6OptionCursor {
  /** Code of the current option. */
  code = -1;
  /** Offset of the current option's value in the bytes walked. */
  valueOffset = 0;
  /** Length of the current option's value, in bytes. */
  valueLength = 0;
  /** Set when an option's header or value ran past the end: the walk stopped there. */
  malformed = false;
  private bytes: Uint8Array = new Uint8Array(0);
  private pos = 0;
  private end = 0;

  /** Points the cursor at the options in `bytes` from `start` to `end`, returning it. */
  reset(bytes: Uint8Array, start: number, end: number): this {
    this.bytes = bytes;
    this.pos = start;
    this.end = Math.min(end, bytes.length);
    this.code = -1;
    this.malformed = false;
    return this;
  }

  /** Returns true and moves to the next option, or false at the end or at a malformed option. */
  next(): boolean {
    if (this.pos >= this.end) return false;
    const b = this.bytes;
    if (this.pos + OPT_HEADER_LEN > this.end || this.pos + OPT_HEADER_LEN + u16(b, this.pos + 2) > this.end) {
      this.malformed = true;
      this.pos = this.end;
      return false;
    }
    this.code = u16(b, this.pos);
    this.valueLength = u16(b, this.pos + 2);
    this.valueOffset = this.pos + OPT_HEADER_LEN;
    this.pos = this.valueOffset + this.valueLength;
    return true;
  }

  /** Subarray of the current option's value. */
  get value(): Uint8Array {
    return this.bytes.subarray(this.valueOffset, this.valueOffset + this.valueLength);
  }
}

const sharedCursor = new Dhcpv6OptionCursor();

/**
 * Returns the value of the first option `code` among the options in `bytes`
 * from `start` to `end`, as a subarray, or null if absent (or only after a
 * malformed option).
 */
export function findDhcpv6Option(bytes: Uint8Array, start: number, end: number, code: number): Uint8Array | null {
  const c = sharedCursor.reset(bytes, start, end);
  while (c.next()) if (c.code === code) return c.value;
  return null;
}

/**
 * Zero-copy view of a DHCPv6 client/server message. Guest input goes through
 * parse() or wrap(); once either succeeds, no accessor reads past `bytes`.
 */
export class Dhcpv6View {
  static readonly HEADER_LEN = DHCPV6_HEADER_LEN;
  bytes: Uint8Array;
  private readonly cursor = new Dhcpv6OptionCursor();

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  private static valid(bytes: Uint8Array): boolean {
    if (bytes.length < OPTIONS) return false;
    const type = bytes[MSG_TYPE]!;
    return type !== Dhcpv6MessageType.RELAY_FORW && type !== Dhcpv6MessageType.RELAY_REPL;
  }

  /**
   * Returns a view of `bytes`, or null if they are shorter than the 4-byte
   * header or hold a relay message. Options are not checked: see `optionsMalformed`.
   */
  static parse(bytes: Uint8Array): Dhcpv6View | null {
    return Dhcpv6View.valid(bytes) ? new Dhcpv6View(bytes) : null;
  }

  /** Returns an empty view to be pointed at messages later with wrap(). */
  static empty(): Dhcpv6View {
    return new Dhcpv6View(new Uint8Array(0));
  }

  /** Re-points this view at `bytes`. Returns this view, or null if parse() would refuse them. */
  wrap(bytes: Uint8Array): this | null {
    this.bytes = bytes;
    return Dhcpv6View.valid(bytes) ? this : null;
  }

  get messageType(): number { return this.bytes[MSG_TYPE]!; }
  /** Transaction ID, 24 bits. */
  get xid(): number { return (this.bytes[XID]! << 16) | u16(this.bytes, XID + 1); }

  /** Returns this view's cursor reset to the first option (shared: one walk at a time). */
  options(): Dhcpv6OptionCursor {
    return this.cursor.reset(this.bytes, OPTIONS, this.bytes.length);
  }

  /** True if an option runs past the end of the message. */
  get optionsMalformed(): boolean {
    const c = this.options();
    while (c.next());
    return c.malformed;
  }

  /** Returns the value of the first top-level option `code` as a subarray, or null if absent. */
  findOption(code: number): Uint8Array | null {
    const c = this.options();
    while (c.next()) if (c.code === code) return c.value;
    return null;
  }

  /** Returns the client DUID (option 1), or null if absent or empty. */
  get clientId(): Uint8Array | null {
    const v = this.findOption(Dhcpv6Option.CLIENT_ID);
    return v && v.length > 0 ? v : null;
  }

  /** Returns the server DUID (option 2), or null if absent or empty. */
  get serverId(): Uint8Array | null {
    const v = this.findOption(Dhcpv6Option.SERVER_ID);
    return v && v.length > 0 ? v : null;
  }

  /** Returns the first IA_NA option (3) value, or null if absent or shorter than its 12 fixed bytes. */
  get iaNa(): Uint8Array | null {
    const v = this.findOption(Dhcpv6Option.IA_NA);
    return v && v.length >= IA_OPTIONS ? v : null;
  }

  /** Returns the option request option (6) value, 2 bytes per code, or null if absent or of odd length. */
  get oro(): Uint8Array | null {
    const v = this.findOption(Dhcpv6Option.ORO);
    return v && v.length % 2 === 0 ? v : null;
  }

  /** Returns true if the option request option lists `code`. */
  requestsOption(code: number): boolean {
    const v = this.oro;
    if (!v) return false;
    for (let i = 0; i + 1 < v.length; i += 2) if (u16(v, i) === code) return true;
    return false;
  }

  /** Returns the elapsed time (option 8) in hundredths of a second, or null if absent or not 2 bytes long. */
  get elapsedTime(): number | null {
    const v = this.findOption(Dhcpv6Option.ELAPSED_TIME);
    return v && v.length === 2 ? u16(v, 0) : null;
  }

  /** True if the rapid commit option (14) is present. */
  get rapidCommit(): boolean {
    return this.findOption(Dhcpv6Option.RAPID_COMMIT) !== null;
  }

  /** Returns the top-level status code (option 13) value, or null if absent or under 2 bytes; read it with statusCode()/statusMessage(). */
  get status(): Uint8Array | null {
    const v = this.findOption(Dhcpv6Option.STATUS_CODE);
    return v && v.length >= 2 ? v : null;
  }

  /** Returns the DNS servers option (23) value, 16 bytes per address, or null if absent or not a multiple of 16. */
  get dnsServers(): Uint8Array | null {
    const v = this.findOption(Dhcpv6Option.DNS_SERVERS);
    return v && v.length % 16 === 0 ? v : null;
  }

  /** Returns the domain search list option (24) value (uncompressed names), or null if absent. */
  get domainList(): Uint8Array | null {
    return this.findOption(Dhcpv6Option.DOMAIN_LIST);
  }

  /** Returns the client FQDN option (39) value (flags, then a name), or null if absent or empty. */
  get fqdn(): Uint8Array | null {
    const v = this.findOption(Dhcpv6Option.CLIENT_FQDN);
    return v && v.length >= 1 ? v : null;
  }
}

const utf8Decoder = new TextDecoder();

/** Returns the status code of a status code option value (at least 2 bytes, as Dhcpv6View.status guarantees). */
export function statusCode(value: Uint8Array): number {
  return u16(value, 0);
}

/** Returns the UTF-8 message of a status code option value (may be empty). */
export function statusMessage(value: Uint8Array): string {
  return utf8Decoder.decode(value.subarray(2));
}

/**
 * Zero-copy view of an IA_NA option value: IAID, T1, T2 and nested options.
 * parse() wants the value (as Dhcpv6View.iaNa returns it), not the option header.
 */
export class Dhcpv6IaNaView {
  bytes: Uint8Array;
  private readonly cursor = new Dhcpv6OptionCursor();

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** Returns a view of the IA_NA value `bytes`, or null if shorter than 12 bytes. */
  static parse(bytes: Uint8Array): Dhcpv6IaNaView | null {
    return bytes.length >= IA_OPTIONS ? new Dhcpv6IaNaView(bytes) : null;
  }

  /** Re-points this view. Returns it, or null if `bytes` are shorter than 12. */
  wrap(bytes: Uint8Array): this | null {
    this.bytes = bytes;
    return bytes.length >= IA_OPTIONS ? this : null;
  }

  get iaid(): number { return u32(this.bytes, IA_IAID); }
  /** Renewal time T1, seconds. */
  get t1S(): number { return u32(this.bytes, IA_T1); }
  /** Rebinding time T2, seconds. */
  get t2S(): number { return u32(this.bytes, IA_T2); }

  /** Returns this view's cursor reset to the first nested option. */
  options(): Dhcpv6OptionCursor {
    return this.cursor.reset(this.bytes, IA_OPTIONS, this.bytes.length);
  }

  /** Returns the value of the first nested option `code`, or null if absent. */
  findOption(code: number): Uint8Array | null {
    const c = this.options();
    while (c.next()) if (c.code === code) return c.value;
    return null;
  }

  /** Returns the first nested IA Address option (5) value, or null if absent or shorter than 24 bytes. */
  get firstAddress(): Uint8Array | null {
    const v = this.findOption(Dhcpv6Option.IA_ADDRESS);
    return v && v.length >= IAADDR_OPTIONS ? v : null;
  }
}

/** Zero-copy view of an IA Address option value: address, lifetimes and nested options. */
export class Dhcpv6IaAddressView {
  bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** Returns a view of the IA Address value `bytes`, or null if shorter than 24 bytes. */
  static parse(bytes: Uint8Array): Dhcpv6IaAddressView | null {
    return bytes.length >= IAADDR_OPTIONS ? new Dhcpv6IaAddressView(bytes) : null;
  }

  /** Re-points this view. Returns it, or null if `bytes` are shorter than 24. */
  wrap(bytes: Uint8Array): this | null {
    this.bytes = bytes;
    return bytes.length >= IAADDR_OPTIONS ? this : null;
  }

  get address(): Uint8Array { return this.bytes.subarray(IAADDR_ADDRESS, IAADDR_ADDRESS + 16); }
  get preferredLifetimeS(): number { return u32(this.bytes, IAADDR_PREFERRED); }
  get validLifetimeS(): number { return u32(this.bytes, IAADDR_VALID); }

  /** Returns the value of the first nested option `code` (e.g. a status code), or null if absent. */
  findOption(code: number): Uint8Array | null {
    return findDhcpv6Option(this.bytes, IAADDR_OPTIONS, this.bytes.length, code);
  }
}

/** A status code option to emit. */
export interface Dhcpv6StatusFields {
  code: number;
  /** UTF-8 text for humans; may be empty. */
  message: string;
}

/** One IA Address option inside an IA_NA. */
export interface Dhcpv6IaAddressFields {
  /** 16 bytes. */
  address: Uint8Array;
  preferredLifetimeS: number;
  validLifetimeS: number;
}

/** The IA_NA option to emit. */
export interface Dhcpv6IaNaFields {
  /** Copied from the client's IA_NA. */
  iaid: number;
  t1S: number;
  t2S: number;
  addresses?: readonly Dhcpv6IaAddressFields[];
  /** Status code inside the IA_NA, after the addresses (e.g. NotOnLink, RFC 8415 18.3.2). */
  status?: Dhcpv6StatusFields;
}

/**
 * What emitDhcpv6Reply() writes. Options go out in this order, each only if
 * given: server ID, IA_NA, client ID, rapid commit, status code, DNS servers,
 * domain list, client FQDN (server ID, IA_NA, client ID is passt's order).
 */
export interface Dhcpv6ReplyFields {
  /** ADVERTISE or REPLY. */
  messageType: number;
  /** Transaction ID copied from the client, 24 bits. */
  xid: number;
  /** Our DUID. */
  serverId: Uint8Array;
  ia?: Dhcpv6IaNaFields;
  /** The client's DUID, echoed back. */
  clientId?: Uint8Array | null;
  /** Add an empty rapid commit option (a REPLY to a SOLICIT that carried one, RFC 8415 18.3.1). */
  rapidCommit?: boolean;
  /** Top-level status code. */
  status?: Dhcpv6StatusFields;
  /** Option 23: 16-byte addresses. */
  dnsServers?: readonly Uint8Array[];
  /** Option 24: names, uncompressed as RFC 8415 section 10 requires. */
  domainList?: readonly string[];
  /** Option 39: our name for the client. */
  fqdn?: string;
  /** Option 39 flags; default 0. */
  fqdnFlags?: number;
}

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** Writes a status code option at `pos`; returns the new offset or -1 if it does not fit. */
function writeStatus(out: Uint8Array, pos: number, s: Dhcpv6StatusFields): number {
  if (pos + OPT_HEADER_LEN + 2 > out.length) return -1;
  const { written, read } = utf8.encodeInto(s.message, out.subarray(pos + OPT_HEADER_LEN + 2));
  if (read !== s.message.length) return -1;
  put16(out, pos, Dhcpv6Option.STATUS_CODE);
  put16(out, pos + 2, 2 + written);
  put16(out, pos + OPT_HEADER_LEN, s.code);
  return pos + OPT_HEADER_LEN + 2 + written;
}

/** Writes an option header and `value` at `pos`; returns the new offset or -1 if it does not fit. */
function writeBytes(out: Uint8Array, pos: number, code: number, value: Uint8Array): number {
  if (value.length > 0xffff || pos + OPT_HEADER_LEN + value.length > out.length) return -1;
  put16(out, pos, code);
  put16(out, pos + 2, value.length);
  out.set(value, pos + OPT_HEADER_LEN);
  return pos + OPT_HEADER_LEN + value.length;
}

/**
 * Writes an ADVERTISE or REPLY into `out` and returns its length, or -1 if
 * `out` is too small or a name cannot be encoded. Option order: see
 * Dhcpv6ReplyFields. The only allocation is the view TextEncoder writes the
 * status message through.
 * @example
 * const len = emitDhcpv6Reply(buf, { messageType: Dhcpv6MessageType.REPLY, xid, serverId: duid, clientId });
 */
export function emitDhcpv6Reply(out: Uint8Array, fields: Dhcpv6ReplyFields): number {
  if (out.length < OPTIONS) return -1;
  out[MSG_TYPE] = fields.messageType;
  out[XID] = fields.xid >>> 16;
  put16(out, XID + 1, fields.xid & 0xffff);
  let pos = writeBytes(out, OPTIONS, Dhcpv6Option.SERVER_ID, fields.serverId);
  if (pos < 0) return -1;

  const ia = fields.ia;
  if (ia) {
    const start = pos;
    if (start + OPT_HEADER_LEN + IA_OPTIONS > out.length) return -1;
    put16(out, start, Dhcpv6Option.IA_NA);
    put32(out, start + OPT_HEADER_LEN + IA_IAID, ia.iaid);
    put32(out, start + OPT_HEADER_LEN + IA_T1, ia.t1S);
    put32(out, start + OPT_HEADER_LEN + IA_T2, ia.t2S);
    pos = start + OPT_HEADER_LEN + IA_OPTIONS;
    for (const a of ia.addresses ?? []) {
      if (pos + OPT_HEADER_LEN + IAADDR_OPTIONS > out.length) return -1;
      put16(out, pos, Dhcpv6Option.IA_ADDRESS);
      put16(out, pos + 2, IAADDR_OPTIONS);
      out.set(a.address.subarray(0, 16), pos + OPT_HEADER_LEN + IAADDR_ADDRESS);
      put32(out, pos + OPT_HEADER_LEN + IAADDR_PREFERRED, a.preferredLifetimeS);
      put32(out, pos + OPT_HEADER_LEN + IAADDR_VALID, a.validLifetimeS);
      pos += OPT_HEADER_LEN + IAADDR_OPTIONS;
    }
    if (ia.status) pos = writeStatus(out, pos, ia.status);
    if (pos < 0 || pos - start - OPT_HEADER_LEN > 0xffff) return -1;
    put16(out, start + 2, pos - start - OPT_HEADER_LEN);
  }

  if (fields.clientId) pos = writeBytes(out, pos, Dhcpv6Option.CLIENT_ID, fields.clientId);
  if (pos >= 0 && fields.rapidCommit) pos = writeBytes(out, pos, Dhcpv6Option.RAPID_COMMIT, EMPTY);
  if (pos >= 0 && fields.status) pos = writeStatus(out, pos, fields.status);
  if (pos < 0) return -1;

  const dns = fields.dnsServers;
  if (dns && dns.length > 0) {
    if (pos + OPT_HEADER_LEN + dns.length * 16 > out.length) return -1;
    put16(out, pos, Dhcpv6Option.DNS_SERVERS);
    put16(out, pos + 2, dns.length * 16);
    for (let i = 0; i < dns.length; i++) out.set(dns[i]!.subarray(0, 16), pos + OPT_HEADER_LEN + i * 16);
    pos += OPT_HEADER_LEN + dns.length * 16;
  }

  const domains = fields.domainList;
  if (domains && domains.length > 0) {
    const end = encodeNameList(domains, out, pos + OPT_HEADER_LEN, false);
    if (end < 0 || end - pos - OPT_HEADER_LEN > 0xffff) return -1;
    put16(out, pos, Dhcpv6Option.DOMAIN_LIST);
    put16(out, pos + 2, end - pos - OPT_HEADER_LEN);
    pos = end;
  }

  if (fields.fqdn !== undefined) {
    const end = encodeName(fields.fqdn, out, pos + OPT_HEADER_LEN + 1);
    if (end < 0) return -1;
    put16(out, pos, Dhcpv6Option.CLIENT_FQDN);
    put16(out, pos + 2, end - pos - OPT_HEADER_LEN);
    out[pos + OPT_HEADER_LEN] = fields.fqdnFlags ?? 0;
    pos = end;
  }
  return pos;
}
