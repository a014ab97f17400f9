// SPDX-License-Identifier: GPL-2.0-or-later
// dhcp.ts - minimal DHCP server: one lease, the host's own address, forever (dhcp.c)
//
// What the newest upstream does, and so we do:
//  - DISCOVER gets an OFFER; with the Rapid Commit option (80, RFC 4039) it
//    gets an ACK carrying an empty option 80 instead.
//  - REQUEST, or a message without a usable message type (plain BOOTP), gets
//    an ACK. There is no NAK: whatever the client asks for, it gets ip4.addr.
//  - DECLINE, RELEASE, INFORM and anything else are ignored ("dhcpIgnored").
//  - Options: subnet mask (1), router (3, the guest's gateway), lease time
//    (51, infinite), message type (53), server identifier (54, ip4.ourTapAddr),
//    MTU (26) when ctx.mtu is not 0, DNS (6) with --dhcp-dns (passt's
//    default), host name (12) and FQDN (81) when set, domain search (119) with
//    --dhcp-search, and classless static routes (121: a /32 route to the
//    gateway, then a default route through it) when the gateway lies outside
//    the guest's subnet.
//  - Order: option 53 first when the client sent a parameter request list
//    without it (for wattcp32 and mTCP), then the options it requested in its
//    order, then the rest by ascending code (emitDhcpReply() does that). We add
//    80 and 121 last, after those: upstream would sort them in, which changes
//    only the order of options, never their content.
//  - Options go within 307 bytes, the 576-byte message RFC 2131 allows; the
//    search list is left out if it does not fit (upstream cuts it short).
//  - The reply goes from ip4.ourTapAddr:67 to 255.255.255.255:68 if the
//    client set the broadcast flag, else to ip4.addr:68, always to the
//    guest's MAC; IPv4 TTL 255, DF set, UDP checksum zero (upstream does not
//    compute UDP checksums over IPv4: they are optional).
//
// Checks on the request, as upstream's: the UDP length must match the IP
// payload exactly, the message must hold the 240 bytes up to the options and
// be a BOOTREQUEST, and an option running past the end drops the message.
// Stricter than upstream: the magic cookie must be right (DhcpView checks it;
// upstream echoes whatever the client sent) and hlen at most 16.

import type { Ctx } from "../ctx.ts";
import { allocFrame, ethHeader, L3_OFFSET, L4_OFFSET4, type TapSink } from "../tap/frame.ts";
import { EtherType } from "../wire/ethernet.ts";
import {
  DHCP_FIXED_LEN, DHCP_MIN_MESSAGE_LEN, DhcpMessageType, DhcpOp, DhcpOption, DhcpView, emitDhcpReply,
  type DhcpReplyFields,
} from "../wire/dhcp.ts";
import { IpProtocol, Ipv4View, type Ipv4Fields } from "../wire/ipv4.ts";
import { UdpView, type UdpFields } from "../wire/udp.ts";

const SERVER_PORT = 67;
const CLIENT_PORT = 68;
/** Option 80 (RFC 4039), not in DhcpOption. */
const OPT_RAPID_COMMIT = 80;
/** Option 121 (RFC 3442), not in DhcpOption. */
const OPT_CLASSLESS_ROUTES = 121;
/** Room for options, end option excluded: 576 - 268 - 1 (upstream's OPT_MAX). */
const OPTIONS_MAX_BYTES = 307;
/** Longest message we send: fixed part, options, end option. */
const MESSAGE_MAX_BYTES = DHCP_FIXED_LEN + OPTIONS_MAX_BYTES + 1;
/** Lease time: infinite (RFC 2131 3.3: 0xffffffff). */
const LEASE_INFINITE_S = 0xffffffff;
/** IPv4 TTL of our replies, as upstream's tap_push_ip4h(). */
const REPLY_TTL = 255;

const frame = allocFrame(L4_OFFSET4 + UdpView.HEADER_LEN + MESSAGE_MAX_BYTES);
const MESSAGE_OFFSET = L4_OFFSET4 + UdpView.HEADER_LEN;
const message = frame.subarray(MESSAGE_OFFSET, MESSAGE_OFFSET + MESSAGE_MAX_BYTES);
const BROADCAST = new Uint8Array([255, 255, 255, 255]);

const request = DhcpView.empty();
const udp = new UdpView();
const ipFields: Ipv4Fields = {
  src: BROADCAST, dst: BROADCAST, protocol: IpProtocol.UDP, payloadLength: 0, ttl: REPLY_TTL, dontFragment: true,
};
const udpFields: UdpFields = { srcPort: SERVER_PORT, dstPort: CLIENT_PORT, payloadLength: 0 };

/** Reply fields for one context: built on first use, then only the per-request ones change. */
interface Prepared {
  ctx: Ctx;
  full: DhcpReplyFields;
  /** Same without the search list, for when everything does not fit. */
  short: DhcpReplyFields;
  /** Option 121 value, or null when the gateway is on the guest's subnet. */
  routes: Uint8Array | null;
}
let prepared: Prepared | null = null;

/** Returns the reply fields for `ctx`, building them the first time. */
function prepare(ctx: Ctx): Prepared {
  if (prepared && prepared.ctx === ctx) return prepared;
  const c4 = ctx.ip4!;
  const mask = new Uint8Array(4);
  for (let i = 0; i < 4; i++) mask[i] = (0xff00 >>> Math.min(8, Math.max(0, c4.prefixLen - i * 8))) & 0xff;
  let onLink = true;
  for (let i = 0; i < 4; i++) if ((c4.addr[i]! & mask[i]!) !== (c4.gw[i]! & mask[i]!)) onLink = false;
  let routes: Uint8Array | null = null;
  if (!onLink) {
    // gw/32 through 0.0.0.0 (on link), then 0/0 through gw (RFC 3442 encoding).
    routes = new Uint8Array(14);
    routes[0] = 32;
    routes.set(c4.gw, 1);
    routes.set(c4.gw, 10);
  }
  const full: DhcpReplyFields = {
    messageType: DhcpMessageType.OFFER,
    xid: 0,
    flags: 0,
    chaddr: BROADCAST,
    htype: 1,
    ciaddr: new Uint8Array(4),
    yiaddr: c4.addr,
    giaddr: new Uint8Array(4),
    subnetMask: mask,
    router: c4.gw,
    leaseTimeS: LEASE_INFINITE_S,
    serverId: c4.ourTapAddr,
    requestOrder: null,
    messageTypeFirst: false,
  };
  if (ctx.mtu) full.mtu = ctx.mtu;
  if (ctx.conf.dhcpDns && c4.dns.length > 0) full.dns = c4.dns;
  if (ctx.hostname) full.hostname = ctx.hostname;
  if (ctx.fqdn) full.fqdn = ctx.fqdn;
  const short: DhcpReplyFields = { ...full };
  if (ctx.conf.dhcpSearch && ctx.search.length > 0) full.domainSearch = ctx.search;
  prepared = { ctx, full, short, routes };
  return prepared;
}

/**
 * Answers the DHCP message in `l4` (UDP header and payload, sent by the guest
 * to port 67 inside `ip`) through `tap`, as the header says. Returns nothing;
 * counts "dhcpDisabled" with --no-dhcp, "dhcpMalformed" for a message upstream
 * would refuse, "dhcpIgnored" for message types it does not answer and
 * "dhcpTooLong" if the reply cannot be built.
 */
export function dhcp(ctx: Ctx, tap: TapSink, ip: Ipv4View, l4: Uint8Array): void {
  const stats = ctx.stats;
  if (ctx.conf.noDhcp || !ctx.ip4) {
    stats.drop("dhcpDisabled");
    return;
  }
  const u = udp.wrap(l4);
  if (!u || u.length !== l4.byteLength) {
    stats.drop("dhcpMalformed");
    return;
  }
  const m = request.wrap(u.payload);
  if (!m || m.op !== DhcpOp.BOOTREQUEST || m.optionsMalformed) {
    stats.drop("dhcpMalformed");
    return;
  }

  const p = prepare(ctx);
  const type = m.findOption(DhcpOption.MESSAGE_TYPE);
  let replyType: number;
  let rapidCommit = false;
  if (type && type.byteLength > 0 && type[0] === DhcpMessageType.DISCOVER) {
    rapidCommit = m.findOption(OPT_RAPID_COMMIT) !== null;
    replyType = rapidCommit ? DhcpMessageType.ACK : DhcpMessageType.OFFER;
  } else if (!type || type.byteLength === 0 || type[0] === DhcpMessageType.REQUEST) {
    replyType = DhcpMessageType.ACK;
  } else {
    stats.drop("dhcpIgnored");
    return;
  }

  const order = m.parameterRequestList;
  let f = p.full;
  for (let attempt = 0; attempt < 2; attempt++) {
    f.messageType = replyType;
    f.xid = m.xid;
    f.flags = m.flags;
    f.chaddr = m.chaddr;
    f.htype = m.htype;
    f.ciaddr = m.ciaddr;
    f.giaddr = m.giaddr;
    f.requestOrder = order;
    f.messageTypeFirst = order !== null;
    const len = finish(emitDhcpReply(message, f), rapidCommit, p.routes);
    if (len > 0) {
      send(ctx, tap, len, m.broadcast);
      return;
    }
    f = p.short;
  }
  stats.drop("dhcpTooLong");
}

/**
 * Adds options 80 (empty) and 121 before the end option of the message that
 * emitDhcpReply() wrote (`len` bytes, or -1), pads it to 300 bytes, and
 * returns its new length, or -1 if they do not fit in the options field.
 */
function finish(len: number, rapidCommit: boolean, routes: Uint8Array | null): number {
  if (len < 0) return -1;
  if (!rapidCommit && !routes) return len;
  let end = DHCP_FIXED_LEN;
  while (end < len && message[end] !== DhcpOption.END) {
    end += message[end] === DhcpOption.PAD ? 1 : 2 + message[end + 1]!;
  }
  const extra = (rapidCommit ? 2 : 0) + (routes ? 2 + routes.byteLength : 0);
  if (end - DHCP_FIXED_LEN + extra > OPTIONS_MAX_BYTES) return -1;
  if (rapidCommit) {
    message[end++] = OPT_RAPID_COMMIT;
    message[end++] = 0;
  }
  if (routes) {
    message[end++] = OPT_CLASSLESS_ROUTES;
    message[end++] = routes.byteLength;
    message.set(routes, end);
    end += routes.byteLength;
  }
  message[end++] = DhcpOption.END;
  if (end < DHCP_MIN_MESSAGE_LEN) {
    message.fill(0, end, DHCP_MIN_MESSAGE_LEN);
    end = DHCP_MIN_MESSAGE_LEN;
  }
  return end;
}

/** Puts UDP, IPv4 and Ethernet headers in front of the `len`-byte message and sends the frame. */
function send(ctx: Ctx, tap: TapSink, len: number, broadcast: boolean): void {
  const c4 = ctx.ip4!;
  udpFields.payloadLength = len;
  UdpView.emit(frame, L4_OFFSET4, udpFields); // no src/dst: checksum left zero, as upstream
  ethHeader(ctx, frame, EtherType.IPV4);
  ipFields.src = c4.ourTapAddr;
  ipFields.dst = broadcast ? BROADCAST : c4.addr;
  ipFields.payloadLength = UdpView.HEADER_LEN + len;
  Ipv4View.emit(frame, L3_OFFSET, ipFields);
  tap.send(frame.subarray(0, MESSAGE_OFFSET + len));
}
