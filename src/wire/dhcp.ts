// SPDX-License-Identifier: GPL-2.0-or-later
// dhcp.ts - zero-copy view of DHCP messages (RFC 2131, options RFC 2132) and a BOOTREPLY emitter
//
// The view covers the UDP payload. Options are read from the options field
// only: option overload (52, RFC 2132 section 9.3), which moves options into
// the `sname` and `file` fields, is ignored, as passt ignores it; a client that
// relies on it loses those options, not the message. Split long options (RFC
// 3396) are not joined: findOption() returns the first instance.
//
// Option walk: pad (0) is skipped, end (255) stops; an option whose length
// runs past the message stops the walk and sets `malformed` on the cursor.
// A missing end option is tolerated (the walk stops at the end of the bytes).

import { encodeName, encodeNameList } from "./dnsname.ts";

//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +---------------+---------------+---------------+---------------+
//  |     op (1)    |   htype (1)   |   hlen (1)    |   hops (1)    |
//  +---------------+---------------+---------------+---------------+
//  |                            xid (4)                            |
//  +-------------------------------+-------------------------------+
//  |           secs (2)            |           flags (2)           |
//  +-------------------------------+-------------------------------+
//  |                          ciaddr  (4)                          |
//  |                          yiaddr  (4)                          |
//  |                          siaddr  (4)                          |
//  |                          giaddr  (4)                          |
//  +---------------------------------------------------------------+
//  |                          chaddr  (16)                         |
//  |                          sname   (64)                         |
//  |                          file    (128)                        |
//  +---------------------------------------------------------------+
//  |                          options (variable)                   |   (RFC 2131 section 2)
//  +---------------------------------------------------------------+
const OP = 0, HTYPE = 1, HLEN = 2, HOPS = 3, XID = 4, SECS = 8, FLAGS = 10;
const CIADDR = 12, YIADDR = 16, SIADDR = 20, GIADDR = 24, CHADDR = 28, SNAME = 44, FILE = 108;
const CHADDR_LEN = 16;
/** The magic cookie 99.130.83.99 opens the options field (RFC 2131 section 3). */
const COOKIE = 236;
const OPTIONS = 240;
const MAGIC_COOKIE = 0x63825363;

/** BOOTP op codes (RFC 951). */
export const DhcpOp = { BOOTREQUEST: 1, BOOTREPLY: 2 } as const;
export type DhcpOp = (typeof DhcpOp)[keyof typeof DhcpOp];

/** DHCP message types, option 53 (RFC 2132 section 9.6). */
export const DhcpMessageType = {
  DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8,
} as const;
export type DhcpMessageType = (typeof DhcpMessageType)[keyof typeof DhcpMessageType];

/** Option codes we read or write (RFC 2132, RFC 3397, RFC 4702). */
export const DhcpOption = {
  PAD: 0, SUBNET_MASK: 1, ROUTER: 3, DNS: 6, HOSTNAME: 12, MTU: 26, REQUESTED_ADDRESS: 50,
  LEASE_TIME: 51, OVERLOAD: 52, MESSAGE_TYPE: 53, SERVER_ID: 54, PARAMETER_REQUEST_LIST: 55,
  MAX_MESSAGE_SIZE: 57, CLIENT_ID: 61, FQDN: 81, DOMAIN_SEARCH: 119, END: 255,
} as const;
export type DhcpOption = (typeof DhcpOption)[keyof typeof DhcpOption];

/** Broadcast bit of `flags` (RFC 2131 section 2, figure 2). */
export const DHCP_FLAG_BROADCAST = 0x8000;
/** Fixed fields plus magic cookie, in bytes. */
export const DHCP_FIXED_LEN = OPTIONS;
/** Smallest BOOTP message clients accept: 236 fixed bytes and 64 of vendor area (RFC 951, RFC 1542 2.1). */
export const DHCP_MIN_MESSAGE_LEN = 300;
/** RFC 4702 section 2.1 flags of option 81: S, O, E, N. */
export const DhcpFqdnFlag = { S: 0x01, O: 0x02, E: 0x04, N: 0x08 } as const;

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
 * Cursor over DHCP options: re-pointable, allocation free. After next()
 * returns true, `code`, `valueOffset` and `valueLength` describe one option;
 * `value` is a subarray of it (allocates a view object, nothing else).
 * @example
 * const c = new DhcpOptionCursor();
 * c.reset(msg.bytes, DHCP_FIXED_LEN, msg.bytes.length);
 * while (c.next()) if (c.code === DhcpOption.HOSTNAME) use(c.value);
 * if (c.malformed) drop();
 */
export class DhcpOptionCursor {
  /** Option code of the current option. */
  code = -1;
  /** Offset of the current option's value in `bytes`. */
  valueOffset = 0;
  /** Length of the current option's value, in bytes. */
  valueLength = 0;
  /** Set when an option's length ran past the end: the walk stopped there. */
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

  /** Returns true and moves to the next option, or false at the end option, the end of the bytes or a malformed option. */
  next(): boolean {
    const b = this.bytes;
    while (this.pos < this.end) {
      const code = b[this.pos]!;
      if (code === DhcpOption.PAD) {
        this.pos++;
        continue;
      }
      if (code === DhcpOption.END) {
        this.pos = this.end;
        return false;
      }
      if (this.pos + 2 > this.end || this.pos + 2 + b[this.pos + 1]! > this.end) {
        this.malformed = true;
        this.pos = this.end;
        return false;
      }
      this.code = code;
      this.valueLength = b[this.pos + 1]!;
      this.valueOffset = this.pos + 2;
      this.pos = this.valueOffset + this.valueLength;
      return true;
    }
    return false;
  }

  /** Subarray of the current option's value. */
  get value(): Uint8Array {
    return this.bytes.subarray(this.valueOffset, this.valueOffset + this.valueLength);
  }
}

/**
 * Zero-copy view of a DHCP message (the UDP payload on ports 67/68).
 * Guest input goes through parse() or wrap(); once either succeeds, no
 * accessor reads past `bytes`, whatever the options hold.
 */
export class DhcpView {
  /** Fixed fields plus magic cookie, in bytes. */
  static readonly FIXED_LEN = DHCP_FIXED_LEN;
  bytes: Uint8Array;
  private readonly cursor = new DhcpOptionCursor();

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /**
   * Returns a view of `bytes`, or null if they are shorter than the fixed
   * fields and cookie (240 bytes), the magic cookie is wrong, or `hlen`
   * exceeds the 16-byte `chaddr` field. Options are not checked here: see
   * `optionsMalformed`.
   */
  static parse(bytes: Uint8Array): DhcpView | null {
    return DhcpView.valid(bytes) ? new DhcpView(bytes) : null;
  }

  /** Returns an empty view to be pointed at messages later with wrap(). */
  static empty(): DhcpView {
    return new DhcpView(new Uint8Array(0));
  }

  private static valid(bytes: Uint8Array): boolean {
    return bytes.length >= OPTIONS && u32(bytes, COOKIE) === MAGIC_COOKIE && bytes[HLEN]! <= CHADDR_LEN;
  }

  /**
   * Re-points this view at `bytes` without allocating. Returns this view, or
   * null if parse() would refuse the bytes (the view must then not be used
   * until a wrap() succeeds).
   */
  wrap(bytes: Uint8Array): this | null {
    this.bytes = bytes;
    return DhcpView.valid(bytes) ? this : null;
  }

  get op(): number { return this.bytes[OP]!; }
  get htype(): number { return this.bytes[HTYPE]!; }
  get hlen(): number { return this.bytes[HLEN]!; }
  get hops(): number { return this.bytes[HOPS]!; }
  get xid(): number { return u32(this.bytes, XID); }
  get secs(): number { return u16(this.bytes, SECS); }
  get flags(): number { return u16(this.bytes, FLAGS); }
  /** True if the client asked for broadcast replies (RFC 2131 section 4.1). */
  get broadcast(): boolean { return (this.flags & DHCP_FLAG_BROADCAST) !== 0; }
  get ciaddr(): Uint8Array { return this.bytes.subarray(CIADDR, CIADDR + 4); }
  get yiaddr(): Uint8Array { return this.bytes.subarray(YIADDR, YIADDR + 4); }
  get siaddr(): Uint8Array { return this.bytes.subarray(SIADDR, SIADDR + 4); }
  get giaddr(): Uint8Array { return this.bytes.subarray(GIADDR, GIADDR + 4); }
  /** Client hardware address: the first `hlen` bytes of the 16-byte field. */
  get chaddr(): Uint8Array { return this.bytes.subarray(CHADDR, CHADDR + this.hlen); }
  /** Server host name field (64 bytes, NUL-padded); never holds options here (overload is ignored). */
  get sname(): Uint8Array { return this.bytes.subarray(SNAME, FILE); }
  /** Boot file name field (128 bytes, NUL-padded). */
  get file(): Uint8Array { return this.bytes.subarray(FILE, COOKIE); }

  /** Returns the cursor of this view reset to the first option (shared: one walk at a time). */
  options(): DhcpOptionCursor {
    return this.cursor.reset(this.bytes, OPTIONS, this.bytes.length);
  }

  /** True if an option length runs past the end of the message. */
  get optionsMalformed(): boolean {
    const c = this.options();
    while (c.next());
    return c.malformed;
  }

  /** Returns the value of the first option `code` as a subarray, or null if absent (or after a malformed option). */
  findOption(code: number): Uint8Array | null {
    const c = this.options();
    while (c.next()) if (c.code === code) return c.value;
    return null;
  }

  /** Returns the offset of option `code`'s value and sets the cursor's length, or -1 if absent; no allocation. */
  private findOffset(code: number): number {
    const c = this.options();
    while (c.next()) if (c.code === code) return c.valueOffset;
    return -1;
  }

  /** Returns the message type (option 53), or null if absent or not 1 byte long. */
  get messageType(): number | null {
    const at = this.findOffset(DhcpOption.MESSAGE_TYPE);
    return at >= 0 && this.cursor.valueLength === 1 ? this.bytes[at]! : null;
  }

  /** Returns the maximum message size (option 57), or null if absent or not 2 bytes long. */
  get maxMessageSize(): number | null {
    const at = this.findOffset(DhcpOption.MAX_MESSAGE_SIZE);
    return at >= 0 && this.cursor.valueLength === 2 ? u16(this.bytes, at) : null;
  }

  /** Returns the requested IP address (option 50), or null if absent or not 4 bytes long. */
  get requestedAddress(): Uint8Array | null {
    const v = this.findOption(DhcpOption.REQUESTED_ADDRESS);
    return v && v.length === 4 ? v : null;
  }

  /** Returns the server identifier (option 54), or null if absent or not 4 bytes long. */
  get serverId(): Uint8Array | null {
    const v = this.findOption(DhcpOption.SERVER_ID);
    return v && v.length === 4 ? v : null;
  }

  /** Returns the parameter request list (option 55), one option code per byte, or null if absent or empty. */
  get parameterRequestList(): Uint8Array | null {
    const v = this.findOption(DhcpOption.PARAMETER_REQUEST_LIST);
    return v && v.length > 0 ? v : null;
  }

  /** Returns the client identifier (option 61), or null if absent or shorter than its 2-byte minimum (RFC 2132 9.14). */
  get clientId(): Uint8Array | null {
    const v = this.findOption(DhcpOption.CLIENT_ID);
    return v && v.length >= 2 ? v : null;
  }

  /** Returns the host name (option 12) bytes, or null if absent or empty. */
  get hostname(): Uint8Array | null {
    const v = this.findOption(DhcpOption.HOSTNAME);
    return v && v.length > 0 ? v : null;
  }

  /**
   * Returns the client FQDN option (81) value, flags, RCODE1, RCODE2 and the
   * name, or null if absent or shorter than its 3 fixed bytes (RFC 4702 section 2).
   */
  get fqdn(): Uint8Array | null {
    const v = this.findOption(DhcpOption.FQDN);
    return v && v.length >= 3 ? v : null;
  }
}

/** What emitDhcpReply() writes. Addresses are 4 bytes; absent options are not sent. */
export interface DhcpReplyFields {
  /** Option 53: OFFER, ACK or NAK. */
  messageType: number;
  /** Transaction ID copied from the request. */
  xid: number;
  /** Flags copied from the request (RFC 2131 table 3). */
  flags: number;
  /** Hardware address copied from the request, at most 16 bytes; `hlen` is its length. */
  chaddr: Uint8Array;
  /** Hardware type; default 1 (Ethernet). */
  htype?: number;
  secs?: number;
  ciaddr?: Uint8Array;
  yiaddr?: Uint8Array;
  siaddr?: Uint8Array;
  giaddr?: Uint8Array;
  /** Option 1. */
  subnetMask?: Uint8Array;
  /** Option 3. */
  router?: Uint8Array;
  /** Option 6, one or more addresses. */
  dns?: readonly Uint8Array[];
  /** Option 12, as text. */
  hostname?: string;
  /** Option 26, bytes. */
  mtu?: number;
  /** Option 51, seconds; 0xffffffff is infinity. */
  leaseTimeS?: number;
  /** Option 54. */
  serverId?: Uint8Array;
  /** Option 81: name written in wire form (E flag). */
  fqdn?: string;
  /** Option 81 flags; default E (0x04), with RCODE1 and RCODE2 255 (RFC 4702 section 2.2). */
  fqdnFlags?: number;
  /** Option 119: search domains, RFC 3397 encoded with compression; split per RFC 3396 if over 255 bytes. */
  domainSearch?: readonly string[];
  /** The client's parameter request list (option 55): those options go first, in its order. */
  requestOrder?: Uint8Array | null;
  /**
   * Put option 53 first when the client did not request it. Newer passt does
   * this for clients that expect it there (wattcp32, mTCP); passt of 2023, which
   * wrote our fixtures, did not. Default false.
   */
  messageTypeFirst?: boolean;
}

/** Codes emitDhcpReply() can write, ascending: the order options go out when not requested. */
const REPLY_CODES = [
  DhcpOption.SUBNET_MASK, DhcpOption.ROUTER, DhcpOption.DNS, DhcpOption.HOSTNAME, DhcpOption.MTU,
  DhcpOption.LEASE_TIME, DhcpOption.MESSAGE_TYPE, DhcpOption.SERVER_ID, DhcpOption.FQDN,
  DhcpOption.DOMAIN_SEARCH,
] as const;

// Scratch space for option 119 before it is split into 255-byte pieces, and
// marks of options already written; allocated once.
const searchScratch = new Uint8Array(1024);
const sent = new Uint8Array(256);

/** Writes a 4-byte address option at `pos`; returns the new offset, `pos` if `a` is absent, or -1 if it is short or does not fit. */
function writeAddress(out: Uint8Array, pos: number, end: number, code: number, a: Uint8Array | undefined): number {
  if (!a) return pos;
  if (a.length < 4 || pos + 6 > end) return -1;
  out[pos] = code;
  out[pos + 1] = 4;
  out.set(a.subarray(0, 4), pos + 2);
  return pos + 6;
}

/** Writes option `code` once per message (marks it in `sent`); returns as writeOption() does. */
function writeOnce(out: Uint8Array, pos: number, end: number, code: number, f: DhcpReplyFields): number {
  if (sent[code]) return pos;
  sent[code] = 1;
  return writeOption(out, pos, end, code, f);
}

/** Writes option `code` from `f` at `pos`; returns the new offset, `pos` if `f` lacks it, or -1 if it does not fit before `end`. */
function writeOption(out: Uint8Array, pos: number, end: number, code: number, f: DhcpReplyFields): number {
  switch (code) {
    case DhcpOption.SUBNET_MASK: return writeAddress(out, pos, end, code, f.subnetMask);
    case DhcpOption.ROUTER: return writeAddress(out, pos, end, code, f.router);
    case DhcpOption.SERVER_ID: return writeAddress(out, pos, end, code, f.serverId);
    case DhcpOption.DNS: {
      if (!f.dns || f.dns.length === 0) return pos;
      const len = f.dns.length * 4;
      if (len > 255 || pos + 2 + len > end) return -1;
      out[pos] = code;
      out[pos + 1] = len;
      for (let i = 0; i < f.dns.length; i++) out.set(f.dns[i]!.subarray(0, 4), pos + 2 + i * 4);
      return pos + 2 + len;
    }
    case DhcpOption.HOSTNAME: {
      const name = f.hostname;
      if (name === undefined || name.length === 0) return pos;
      if (name.length > 255 || pos + 2 + name.length > end) return -1;
      out[pos] = code;
      out[pos + 1] = name.length;
      for (let i = 0; i < name.length; i++) out[pos + 2 + i] = name.charCodeAt(i);
      return pos + 2 + name.length;
    }
    case DhcpOption.MTU:
      if (f.mtu === undefined) return pos;
      if (pos + 4 > end) return -1;
      out[pos] = code;
      out[pos + 1] = 2;
      put16(out, pos + 2, f.mtu);
      return pos + 4;
    case DhcpOption.LEASE_TIME:
      if (f.leaseTimeS === undefined) return pos;
      if (pos + 6 > end) return -1;
      out[pos] = code;
      out[pos + 1] = 4;
      put32(out, pos + 2, f.leaseTimeS);
      return pos + 6;
    case DhcpOption.MESSAGE_TYPE:
      if (pos + 3 > end) return -1;
      out[pos] = code;
      out[pos + 1] = 1;
      out[pos + 2] = f.messageType;
      return pos + 3;
    case DhcpOption.FQDN: {
      if (f.fqdn === undefined) return pos;
      const nameEnd = encodeName(f.fqdn, out, pos + 5);
      if (nameEnd < 0 || nameEnd > end || nameEnd - pos - 2 > 255) return -1;
      out[pos] = code;
      out[pos + 1] = nameEnd - pos - 2;
      out[pos + 2] = f.fqdnFlags ?? DhcpFqdnFlag.E;
      out[pos + 3] = 255;
      out[pos + 4] = 255;
      return nameEnd;
    }
    case DhcpOption.DOMAIN_SEARCH: {
      if (!f.domainSearch || f.domainSearch.length === 0) return pos;
      const len = encodeNameList(f.domainSearch, searchScratch, 0, true);
      if (len < 0) return -1;
      // RFC 3396: a value over 255 bytes goes out as consecutive instances.
      let at = pos;
      for (let done = 0; done < len; done += 255) {
        const piece = Math.min(255, len - done);
        if (at + 2 + piece > end) return -1;
        out[at] = code;
        out[at + 1] = piece;
        out.set(searchScratch.subarray(done, done + piece), at + 2);
        at += 2 + piece;
      }
      return at;
    }
    default:
      return pos;
  }
}

/**
 * Writes a BOOTREPLY into `out` and returns its length, or -1 if `out` is too
 * small or a field cannot be encoded (a name that is not a valid DNS name, a
 * hostname over 255 bytes). Options go out in the order of the client's
 * parameter request list, then the rest by ascending code, then end (255); the
 * options field is zero-padded to 60 bytes so the message is at least the
 * 300 bytes BOOTP clients expect. Unused fixed fields (sname, file, the rest
 * of chaddr) are zeroed. Allocation free except for option 119's encoding.
 * @example
 * const len = emitDhcpReply(buf, { messageType: DhcpMessageType.OFFER, xid, flags: 0, chaddr, yiaddr });
 */
export function emitDhcpReply(out: Uint8Array, fields: DhcpReplyFields): number {
  if (out.length < DHCP_MIN_MESSAGE_LEN || fields.chaddr.length > CHADDR_LEN) return -1;
  out.fill(0, 0, OPTIONS);
  out[OP] = DhcpOp.BOOTREPLY;
  out[HTYPE] = fields.htype ?? 1;
  out[HLEN] = fields.chaddr.length;
  out[HOPS] = 0;
  put32(out, XID, fields.xid);
  put16(out, SECS, fields.secs ?? 0);
  put16(out, FLAGS, fields.flags);
  if (fields.ciaddr) out.set(fields.ciaddr.subarray(0, 4), CIADDR);
  if (fields.yiaddr) out.set(fields.yiaddr.subarray(0, 4), YIADDR);
  if (fields.siaddr) out.set(fields.siaddr.subarray(0, 4), SIADDR);
  if (fields.giaddr) out.set(fields.giaddr.subarray(0, 4), GIADDR);
  out.set(fields.chaddr, CHADDR);
  put32(out, COOKIE, MAGIC_COOKIE);

  // Leave one byte for the end option.
  const end = out.length - 1;
  let pos = OPTIONS;
  sent.fill(0);
  const order = fields.requestOrder ?? null;
  if (fields.messageTypeFirst && !(order && order.includes(DhcpOption.MESSAGE_TYPE))) {
    pos = writeOnce(out, pos, end, DhcpOption.MESSAGE_TYPE, fields);
  }
  if (order) for (let i = 0; i < order.length && pos >= 0; i++) pos = writeOnce(out, pos, end, order[i]!, fields);
  for (let i = 0; i < REPLY_CODES.length && pos >= 0; i++) pos = writeOnce(out, pos, end, REPLY_CODES[i]!, fields);
  if (pos < 0) return -1;
  out[pos++] = DhcpOption.END;
  if (pos < DHCP_MIN_MESSAGE_LEN) {
    out.fill(0, pos, DHCP_MIN_MESSAGE_LEN);
    pos = DHCP_MIN_MESSAGE_LEN;
  }
  return pos;
}
