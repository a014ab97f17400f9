// SPDX-License-Identifier: GPL-2.0-or-later
// msg.ts - rtnetlink message encoding and decoding over caller-owned buffers (no I/O)
//
// Netlink structures are in host byte order (little-endian on every target we build for),
// so every DataView access below passes `true`. Attributes are 4-byte aligned.
//
//   nlmsghdr (16)            ifinfomsg (16)            ifaddrmsg (8)       rtmsg (12)
//   0  u32 len               0  u8 family, u8 pad      0 u8 family         0 u8 family, dst_len,
//   4  u16 type, u16 flags   2  u16 type               1 u8 prefixlen        src_len, tos
//   8  u32 seq               4  i32 index              2 u8 flags          4 u8 table, protocol,
//   12 u32 pid               8  u32 flags              3 u8 scope            scope, type
//                            12 u32 change             4 u32 index         8 u32 flags
//
//   rtattr: u16 len (header included), u16 type, value, padding to 4
//   rtnexthop (8): u16 len, u8 flags, u8 hops (weight - 1), i32 ifindex, then rtattrs

export const NLMSG_HDRLEN = 16;
export const IFINFOMSG_LEN = 16;
export const IFADDRMSG_LEN = 8;
export const RTMSG_LEN = 12;
export const RTA_HDRLEN = 4;
export const RTNH_LEN = 8;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;

export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;

export const RTM_NEWLINK = 16;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_GETROUTE = 26;

export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
/** Transmit queue length of a link, in frames (u32). */
export const IFLA_TXQLEN = 13;

export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_FLAGS = 8;

export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_MULTIPATH = 9;
export const RTA_TABLE = 15;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;

export const IFF_UP = 0x1;
export const IFF_LOOPBACK = 0x8;
export const IFF_NOARP = 0x80;

export const IFA_F_NODAD = 0x02;
export const IFA_F_DEPRECATED = 0x20;

export const RT_TABLE_MAIN = 254;
export const RTPROT_BOOT = 3;
export const RTN_UNICAST = 1;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;

/** Rounds up to the 4-byte netlink alignment. */
export function nlAlign(n: number): number {
  return (n + 3) & ~3;
}

/** One message located in a receive buffer. */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  /** Bytes after the 16-byte header, up to nlmsg_len (a subarray, not a copy). */
  payload: Uint8Array;
}

/**
 * Returns the messages in `bytes` (one datagram), stopping at the first header whose length
 * is shorter than a header or runs past the end: the walk ends, it never throws.
 * Payloads alias `bytes`; consume them before the next recv() into the same buffer.
 */
export function parseMessages(bytes: Uint8Array): NlMessage[] {
  const dv = view(bytes);
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= bytes.length) {
    const len = dv.getUint32(off, true);
    if (len < NLMSG_HDRLEN || off + len > bytes.length) break;
    out.push({
      type: dv.getUint16(off + 4, true),
      flags: dv.getUint16(off + 6, true),
      seq: dv.getUint32(off + 8, true),
      payload: bytes.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += nlAlign(len);
  }
  return out;
}

/** Returns the (negative or zero) error of an NLMSG_ERROR or NLMSG_DONE payload, or null if too short. */
export function parseError(payload: Uint8Array): number | null {
  if (payload.length < 4) return null;
  return view(payload).getInt32(0, true);
}

/**
 * Calls `fn(type, value)` for each attribute in `bytes`. Returns false if the walk met a
 * malformed attribute (length below the header or past the end) and stopped there.
 * Handles the padding of the last attribute being absent.
 */
export function walkAttrs(bytes: Uint8Array, fn: (type: number, value: Uint8Array) => void): boolean {
  const dv = view(bytes);
  let off = 0;
  while (off + RTA_HDRLEN <= bytes.length) {
    const len = dv.getUint16(off, true);
    if (len < RTA_HDRLEN || off + len > bytes.length) return false;
    // The top two bits are NLA_F_NESTED / NLA_F_NET_BYTEORDER, not part of the type.
    fn(dv.getUint16(off + 2, true) & 0x3fff, bytes.subarray(off + RTA_HDRLEN, off + len));
    off += nlAlign(len);
  }
  return off >= bytes.length;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function u32(v: Uint8Array): number | null {
  return v.length >= 4 ? view(v).getUint32(0, true) : null;
}

/** A link from an RTM_NEWLINK message. */
export interface LinkInfo {
  index: number;
  name: string;
  /** IFF_* flags. */
  flags: number;
  /** MTU in bytes, 0 if the message carried none. */
  mtu: number;
  /** Hardware address (6 bytes for Ethernet), or null. */
  mac: Uint8Array | null;
}

const decoder = new TextDecoder();

/** Returns the link in an RTM_NEWLINK payload, or null if truncated or malformed. */
export function parseLink(payload: Uint8Array): LinkInfo | null {
  if (payload.length < IFINFOMSG_LEN) return null;
  const dv = view(payload);
  const link: LinkInfo = {
    index: dv.getInt32(4, true),
    name: "",
    flags: dv.getUint32(8, true),
    mtu: 0,
    mac: null,
  };
  const ok = walkAttrs(payload.subarray(IFINFOMSG_LEN), (type, v) => {
    if (type === IFLA_IFNAME) {
      const nul = v.indexOf(0);
      link.name = decoder.decode(nul < 0 ? v : v.subarray(0, nul));
    } else if (type === IFLA_MTU) {
      link.mtu = u32(v) ?? 0;
    } else if (type === IFLA_ADDRESS) {
      link.mac = v.slice();
    }
  });
  return ok ? link : null;
}

/** An address from an RTM_NEWADDR message. */
export interface AddrInfo {
  family: number;
  prefixLen: number;
  /** The local address (IFA_LOCAL for IPv4, IFA_ADDRESS for IPv6), 4 or 16 bytes. */
  address: Uint8Array;
  /** RT_SCOPE_*. */
  scope: number;
  /** IFA_F_* flags, 32 bits when IFA_FLAGS is present. */
  flags: number;
  ifindex: number;
}

/** Returns the address in an RTM_NEWADDR payload, or null if truncated, malformed or addressless. */
export function parseAddr(payload: Uint8Array): AddrInfo | null {
  if (payload.length < IFADDRMSG_LEN) return null;
  const dv = view(payload);
  const family = payload[0] ?? 0;
  const alen = family === AF_INET ? 4 : family === AF_INET6 ? 16 : 0;
  let local: Uint8Array | null = null;
  let address: Uint8Array | null = null;
  let flags = payload[2] ?? 0;
  const ok = walkAttrs(payload.subarray(IFADDRMSG_LEN), (type, v) => {
    if (type === IFA_LOCAL && v.length === alen) local = v.slice();
    else if (type === IFA_ADDRESS && v.length === alen) address = v.slice();
    else if (type === IFA_FLAGS) flags = u32(v) ?? flags;
  });
  // IFA_ADDRESS is the peer on point-to-point IPv4 links; IFA_LOCAL is ours when present.
  const addr: Uint8Array | null = local ?? address;
  if (!ok || alen === 0 || addr === null) return null;
  return {
    family,
    prefixLen: payload[1] ?? 0,
    address: addr,
    scope: payload[3] ?? 0,
    flags,
    ifindex: dv.getUint32(4, true),
  };
}

/** One path of a multipath route. */
export interface NextHop {
  ifindex: number;
  /** Weight as `ip route` shows it: rtnh_hops + 1. */
  weight: number;
  gateway: Uint8Array | null;
}

/** A route from an RTM_NEWROUTE message. */
export interface RouteInfo {
  family: number;
  /** Destination, 4 or 16 bytes (all zero for a default route). */
  dst: Uint8Array;
  dstLen: number;
  gateway: Uint8Array | null;
  /** Output interface, 0 if none (e.g. multipath). */
  oif: number;
  /** Routing table (RTA_TABLE when present). */
  table: number;
  protocol: number;
  scope: number;
  /** RTN_* route type. */
  type: number;
  /** Metric; 0 if absent. */
  priority: number;
  /** Paths of an RTA_MULTIPATH route; empty otherwise. */
  nexthops: NextHop[];
}

/** Returns the nexthops in an RTA_MULTIPATH value, or null if malformed. */
export function parseMultipath(v: Uint8Array, alen: number): NextHop[] | null {
  const dv = view(v);
  const hops: NextHop[] = [];
  let off = 0;
  while (off + RTNH_LEN <= v.length) {
    const len = dv.getUint16(off, true);
    if (len < RTNH_LEN || off + len > v.length) return null;
    const hop: NextHop = { ifindex: dv.getInt32(off + 4, true), weight: (v[off + 3] ?? 0) + 1, gateway: null };
    const ok = walkAttrs(v.subarray(off + RTNH_LEN, off + len), (type, a) => {
      if (type === RTA_GATEWAY && a.length === alen) hop.gateway = a.slice();
    });
    if (!ok) return null;
    hops.push(hop);
    off += nlAlign(len);
  }
  return off >= v.length ? hops : null;
}

/** Returns the route in an RTM_NEWROUTE payload, or null if truncated or malformed. */
export function parseRoute(payload: Uint8Array): RouteInfo | null {
  if (payload.length < RTMSG_LEN) return null;
  const family = payload[0] ?? 0;
  const alen = family === AF_INET ? 4 : family === AF_INET6 ? 16 : 0;
  if (alen === 0) return null;
  const route: RouteInfo = {
    family,
    dst: new Uint8Array(alen),
    dstLen: payload[1] ?? 0,
    gateway: null,
    oif: 0,
    table: payload[4] ?? 0,
    protocol: payload[5] ?? 0,
    scope: payload[6] ?? 0,
    type: payload[7] ?? 0,
    priority: 0,
    nexthops: [],
  };
  let bad = false;
  const ok = walkAttrs(payload.subarray(RTMSG_LEN), (type, v) => {
    if (type === RTA_DST && v.length === alen) route.dst = v.slice();
    else if (type === RTA_GATEWAY && v.length === alen) route.gateway = v.slice();
    else if (type === RTA_OIF) route.oif = u32(v) ?? 0;
    else if (type === RTA_PRIORITY) route.priority = u32(v) ?? 0;
    else if (type === RTA_TABLE) route.table = u32(v) ?? route.table;
    else if (type === RTA_MULTIPATH) {
      const hops = parseMultipath(v, alen);
      if (hops === null) bad = true;
      else route.nexthops = hops;
    }
  });
  return ok && !bad && route.dstLen <= alen * 8 ? route : null;
}

/**
 * Writes one netlink request into a caller-owned buffer. Every method throws RangeError if
 * the buffer is too small: requests are built from our own configuration, so that is a bug.
 * @example
 * const b = new NlBuilder(buf);
 * b.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq).ifinfomsg({});
 * send(fd, buf, b.end(), 0);
 */
export class NlBuilder {
  private readonly dv: DataView;
  private off = 0;
  private readonly nests: number[] = [];

  constructor(readonly buf: Uint8Array) {
    this.dv = view(buf);
  }

  private reserve(n: number): number {
    const at = this.off;
    const next = nlAlign(at + n);
    if (next > this.buf.length) throw new RangeError(`netlink: request needs ${next} bytes, buffer has ${this.buf.length}`);
    this.buf.fill(0, at, next);
    this.off = next;
    return at;
  }

  /** Starts a message; the length is written by end(). */
  begin(type: number, flags: number, seq: number): this {
    this.off = 0;
    this.nests.length = 0;
    this.reserve(NLMSG_HDRLEN);
    this.dv.setUint16(4, type, true);
    this.dv.setUint16(6, flags, true);
    this.dv.setUint32(8, seq, true);
    this.dv.setUint32(12, 0, true);
    return this;
  }

  ifinfomsg(f: { family?: number; index?: number; flags?: number; change?: number }): this {
    const at = this.reserve(IFINFOMSG_LEN);
    this.buf[at] = f.family ?? AF_UNSPEC;
    this.dv.setInt32(at + 4, f.index ?? 0, true);
    this.dv.setUint32(at + 8, f.flags ?? 0, true);
    this.dv.setUint32(at + 12, f.change ?? 0, true);
    return this;
  }

  ifaddrmsg(f: { family: number; prefixLen?: number; flags?: number; scope?: number; index?: number }): this {
    const at = this.reserve(IFADDRMSG_LEN);
    this.buf[at] = f.family;
    this.buf[at + 1] = f.prefixLen ?? 0;
    this.buf[at + 2] = (f.flags ?? 0) & 0xff;
    this.buf[at + 3] = f.scope ?? 0;
    this.dv.setUint32(at + 4, f.index ?? 0, true);
    return this;
  }

  rtmsg(f: {
    family: number;
    dstLen?: number;
    table?: number;
    protocol?: number;
    scope?: number;
    type?: number;
    flags?: number;
  }): this {
    const at = this.reserve(RTMSG_LEN);
    this.buf[at] = f.family;
    this.buf[at + 1] = f.dstLen ?? 0;
    this.buf[at + 4] = f.table ?? 0;
    this.buf[at + 5] = f.protocol ?? 0;
    this.buf[at + 6] = f.scope ?? 0;
    this.buf[at + 7] = f.type ?? 0;
    this.dv.setUint32(at + 8, f.flags ?? 0, true);
    return this;
  }

  attr(type: number, value: Uint8Array): this {
    const at = this.reserve(RTA_HDRLEN + value.length);
    this.dv.setUint16(at, RTA_HDRLEN + value.length, true);
    this.dv.setUint16(at + 2, type, true);
    this.buf.set(value, at + RTA_HDRLEN);
    return this;
  }

  attrU32(type: number, value: number): this {
    const at = this.reserve(RTA_HDRLEN + 4);
    this.dv.setUint16(at, RTA_HDRLEN + 4, true);
    this.dv.setUint16(at + 2, type, true);
    this.dv.setUint32(at + RTA_HDRLEN, value, true);
    return this;
  }

  /** Opens a nested attribute (e.g. RTA_MULTIPATH); close it with nestEnd(). */
  nestStart(type: number): this {
    const at = this.reserve(RTA_HDRLEN);
    this.dv.setUint16(at + 2, type, true);
    this.nests.push(at);
    return this;
  }

  /** Starts one rtnexthop inside RTA_MULTIPATH; close it with nestEnd(). */
  nexthopStart(ifindex: number, weight: number): this {
    const at = this.reserve(RTNH_LEN);
    this.buf[at + 3] = Math.max(0, Math.min(255, weight - 1));
    this.dv.setInt32(at + 4, ifindex, true);
    this.nests.push(at);
    return this;
  }

  nestEnd(): this {
    const at = this.nests.pop();
    if (at === undefined) throw new RangeError("netlink: nestEnd() without nestStart()");
    this.dv.setUint16(at, this.off - at, true);
    return this;
  }

  /** Returns the message length, written into nlmsg_len. */
  end(): number {
    if (this.nests.length) throw new RangeError("netlink: unclosed nested attribute");
    this.dv.setUint32(0, this.off, true);
    return this.off;
  }
}

/** Fields of a route to add with buildNewRoute(). */
export interface RouteSpec {
  family: number;
  /** Destination, 4 or 16 bytes; omitted for a default route. */
  dst?: Uint8Array;
  dstLen?: number;
  gateway?: Uint8Array | null;
  oif: number;
  priority?: number;
  /** Multipath paths; when given, `gateway` is ignored and oif is only the rtm scope hint. */
  nexthops?: readonly NextHop[];
}

/** Writes an RTM_GETLINK dump request; returns its length. */
export function buildGetLinks(b: NlBuilder, seq: number): number {
  return b.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq).ifinfomsg({}).end();
}

/** Writes an RTM_GETADDR dump request for `family` (AF_UNSPEC: all); returns its length. */
export function buildGetAddrs(b: NlBuilder, seq: number, family: number): number {
  return b.begin(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq).ifaddrmsg({ family }).end();
}

/** Writes an RTM_GETROUTE dump request for `family`; returns its length. */
export function buildGetRoutes(b: NlBuilder, seq: number, family: number): number {
  return b.begin(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq).rtmsg({ family }).end();
}

/** Link changes for buildSetLink(): only the given fields change. */
export interface LinkChange {
  up?: boolean;
  noarp?: boolean;
  mtu?: number;
  mac?: Uint8Array;
  /** Transmit queue length in frames. */
  txqlen?: number;
}

/** Writes an RTM_NEWLINK request changing flags, MTU, MAC and/or queue length of `index`; returns its length. */
export function buildSetLink(b: NlBuilder, seq: number, index: number, c: LinkChange): number {
  let flags = 0;
  let change = 0;
  if (c.up !== undefined) {
    change |= IFF_UP;
    if (c.up) flags |= IFF_UP;
  }
  if (c.noarp !== undefined) {
    change |= IFF_NOARP;
    if (c.noarp) flags |= IFF_NOARP;
  }
  b.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq).ifinfomsg({ index, flags, change });
  if (c.mtu !== undefined) b.attrU32(IFLA_MTU, c.mtu);
  if (c.mac !== undefined) b.attr(IFLA_ADDRESS, c.mac);
  if (c.txqlen !== undefined) b.attrU32(IFLA_TXQLEN, c.txqlen);
  return b.end();
}

/**
 * Writes an RTM_NEWADDR request (create, fail if it exists) for `address`/`prefixLen` on
 * `index`; IPv6 addresses get IFA_F_NODAD. Returns its length.
 */
export function buildNewAddr(
  b: NlBuilder,
  seq: number,
  a: { family: number; index: number; address: Uint8Array; prefixLen: number; flags?: number },
): number {
  const flags = (a.flags ?? 0) | (a.family === AF_INET6 ? IFA_F_NODAD : 0);
  b.begin(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq).ifaddrmsg({
    family: a.family,
    prefixLen: a.prefixLen,
    flags,
    scope: RT_SCOPE_UNIVERSE,
    index: a.index,
  });
  b.attr(IFA_LOCAL, a.address).attr(IFA_ADDRESS, a.address);
  if (flags > 0xff) b.attrU32(IFA_FLAGS, flags);
  return b.end();
}

/**
 * Writes an RTM_NEWROUTE request (create, fail if it exists) in the main table. A route with
 * no gateway and no nexthops gets link scope, like `ip route add PREFIX dev IF`. Returns its length.
 */
export function buildNewRoute(b: NlBuilder, seq: number, r: RouteSpec): number {
  const viaGateway = (r.nexthops !== undefined && r.nexthops.length > 0) || (r.gateway ?? null) !== null;
  b.begin(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq).rtmsg({
    family: r.family,
    dstLen: r.dstLen ?? 0,
    table: RT_TABLE_MAIN,
    protocol: RTPROT_BOOT,
    scope: viaGateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK,
    type: RTN_UNICAST,
  });
  if (r.dst !== undefined && (r.dstLen ?? 0) > 0) b.attr(RTA_DST, r.dst);
  if (r.priority !== undefined && r.priority !== 0) b.attrU32(RTA_PRIORITY, r.priority);
  if (r.nexthops !== undefined && r.nexthops.length > 0) {
    b.nestStart(RTA_MULTIPATH);
    for (const hop of r.nexthops) {
      b.nexthopStart(hop.ifindex, hop.weight);
      if (hop.gateway) b.attr(RTA_GATEWAY, hop.gateway);
      b.nestEnd();
    }
    b.nestEnd();
  } else {
    b.attrU32(RTA_OIF, r.oif);
    if (r.gateway) b.attr(RTA_GATEWAY, r.gateway);
  }
  return b.end();
}
