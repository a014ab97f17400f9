// SPDX-License-Identifier: GPL-2.0-or-later
// dhcpv6.ts - minimal DHCPv6 server: the host's IPv6 address, forever, plus DNS (dhcpv6.c)
//
// What the newest upstream does, and so we do (RFC 8415 where it agrees):
//  - Only messages to a multicast address are served (the client is on-link);
//    every message must carry a client identifier of at most 128 bytes; a
//    server identifier, when present, must be 14 bytes long (a DUID-LLT like
//    ours); an IA_NA, when present, at least 4.
//  - SOLICIT without a server identifier gets an ADVERTISE. Rapid commit is
//    not offered: the client then goes on with a REQUEST (RFC 8415 18.3.1
//    lets a server ignore the option).
//  - REQUEST and RENEW with our server identifier, and CONFIRM without any,
//    get a REPLY, unless an IA_NA or IA_TA holds an address other than
//    ip6.addr: then a REPLY with that IA and status NotOnLink inside it
//    (RFC 8415 18.3.2), and the client ID.
//  - REBIND gets a REPLY only if it names our server identifier (upstream's
//    check; RFC 8415 clients send none, so they fall back to SOLICIT).
//  - INFORMATION-REQUEST gets a REPLY if it names no other server and holds
//    no IA.
//  - RELEASE, DECLINE and anything else are ignored.
//  - A REPLY or ADVERTISE holds, in order: server identifier, IA_NA (the
//    client's IAID; T1 and T2 infinite) with one address (ip6.addr, infinite
//    lifetimes), the client identifier, DNS servers (23) with --dhcp-dns,
//    domain search list (24, uncompressed) with --dhcp-search, and the client
//    FQDN (39) when --fqdn is set, with the O flag if the client asked us to
//    do the update (its S flag). As upstream, the IA_NA goes out in every
//    answer, even to INFORMATION-REQUEST, with the IAID last seen (1 at first).
//  - Our DUID is a DUID-LLT (RFC 8415 11.2): hardware type 1, the time of
//    dhcpv6Init() in seconds since 2000-01-01, and our MAC.
//  - The answer goes from ip6.ourTapLl:547 to the client's source address
//    port 546 and the guest's MAC, hop limit 255, with a flow label made of the
//    transaction ID as upstream sets it: its bytes in reverse, 20 bits kept.
//  - Having answered, we take ip6.addr as the address the guest uses
//    (ip6.addrSeen), as upstream does.

import type { Ctx } from "../ctx.ts";
import { allocFrame, ipv6Frame, L3_OFFSET, L4_OFFSET6, type TapSink } from "../tap/frame.ts";
import { addrEqual, isMulticast } from "../wire/addr.ts";
import { nameWireLength } from "../wire/dnsname.ts";
import {
  Dhcpv6FqdnFlag, Dhcpv6MessageType, Dhcpv6Option, Dhcpv6OptionCursor, Dhcpv6Status, Dhcpv6View, emitDhcpv6Reply,
  type Dhcpv6IaNaFields, type Dhcpv6ReplyFields,
} from "../wire/dhcpv6.ts";
import { IpProtocol } from "../wire/ipv4.ts";
import type { Ipv6View } from "../wire/ipv6.ts";
import { UdpView, type UdpFields } from "../wire/udp.ts";

const SERVER_PORT = 547;
const CLIENT_PORT = 546;
const INFINITE = 0xffffffff;
/** Longest client DUID upstream takes (RFC 8415 11.1: at most 128 bytes). */
const CLIENT_ID_MAX_BYTES = 128;
/** Length of our DUID-LLT: type, hardware type, time, MAC. */
const DUID_LLT_BYTES = 14;
/** Seconds from the Unix epoch to 2000-01-01T00:00:00Z, the DUID-LLT epoch. */
const DUID_EPOCH_S = 946684800;
/** Fixed part of an IA_NA value (IAID, T1, T2) and of an IA_TA value (IAID). */
const IA_NA_FIXED = 12;
const IA_MIN_BYTES = 4;
/** Length of an IA Address option value without nested options. */
const IAADDR_BYTES = 24;
/** Offset of the IA option in our NotOnLink reply: header (4), server ID option (4 + 14). */
const NOTONLINK_IA_OFFSET = 4 + 4 + DUID_LLT_BYTES;
const NOT_ON_LINK_MESSAGE = "Prefix not appropriate for link.";
/** Largest message we build: IPv6 minimum MTU less headers, as upstream's OPT_MAX_SIZE, rounded up. */
const MESSAGE_MAX_BYTES = 2048;

const frame = allocFrame(L4_OFFSET6 + UdpView.HEADER_LEN + MESSAGE_MAX_BYTES);
const MESSAGE_OFFSET = L4_OFFSET6 + UdpView.HEADER_LEN;
const message = frame.subarray(MESSAGE_OFFSET);

const duid = new Uint8Array(DUID_LLT_BYTES);
let duidReady = false;

const udp = new UdpView();
const request = Dhcpv6View.empty();
const nested = new Dhcpv6OptionCursor();
const udpFields: UdpFields = { srcPort: SERVER_PORT, dstPort: CLIENT_PORT, payloadLength: 0 };

const IA_CODES = [Dhcpv6Option.IA_NA, Dhcpv6Option.IA_TA] as const;
/** The IA value and option code notOnLink() found. */
let notOnLinkIa: Uint8Array = new Uint8Array(0);
let notOnLinkCode: number = Dhcpv6Option.IA_NA;

/** IAID of the last IA_NA a client sent: upstream keeps it in its static reply. */
let lastIaid = 1;

/** Reply records for one context, built on first use. */
interface Prepared {
  ctx: Ctx;
  reply: Dhcpv6ReplyFields;
  ia: Dhcpv6IaNaFields;
  notOnLink: Dhcpv6ReplyFields;
  notOnLinkIa: Dhcpv6IaNaFields;
}
let prepared: Prepared | null = null;

function prepare(ctx: Ctx): Prepared {
  if (prepared && prepared.ctx === ctx) return prepared;
  const c6 = ctx.ip6!;
  const ia: Dhcpv6IaNaFields = {
    iaid: 1, t1S: INFINITE, t2S: INFINITE,
    addresses: [{ address: c6.addr, preferredLifetimeS: INFINITE, validLifetimeS: INFINITE }],
  };
  const reply: Dhcpv6ReplyFields = {
    messageType: Dhcpv6MessageType.REPLY, xid: 0, serverId: duid, ia, clientId: null, fqdnFlags: 0,
  };
  if (ctx.conf.dhcpDns && c6.dns.length > 0) reply.dnsServers = c6.dns;
  if (ctx.conf.dhcpSearch) {
    // Upstream skips root-only names and names too long to encode.
    const names = ctx.search.filter((n) => nameWireLength(n) > 1);
    if (names.length > 0) reply.domainList = names;
  }
  if (ctx.fqdn) reply.fqdn = ctx.fqdn;
  const notOnLinkIa: Dhcpv6IaNaFields = {
    iaid: 0, t1S: 0, t2S: 0, status: { code: Dhcpv6Status.NOT_ON_LINK, message: NOT_ON_LINK_MESSAGE },
  };
  const notOnLink: Dhcpv6ReplyFields = {
    messageType: Dhcpv6MessageType.REPLY, xid: 0, serverId: duid, ia: notOnLinkIa, clientId: null,
  };
  prepared = { ctx, reply, ia, notOnLink, notOnLinkIa };
  return prepared;
}

/**
 * Sets our DUID-LLT from our MAC and `nowMs` (wall clock, milliseconds since
 * the Unix epoch), as upstream's dhcpv6_init() at start-up. dhcpv6() calls it
 * with the current time if nobody did. Returns the 14-byte DUID (module-level:
 * do not modify).
 */
export function dhcpv6Init(ctx: Ctx, nowMs: number = Date.now()): Uint8Array {
  const t = Math.max(0, Math.floor(nowMs / 1000) - DUID_EPOCH_S) >>> 0;
  duid[0] = 0;
  duid[1] = 1; // DUID-LLT
  duid[2] = 0;
  duid[3] = 1; // Ethernet
  duid[4] = t >>> 24;
  duid[5] = t >>> 16;
  duid[6] = t >>> 8;
  duid[7] = t;
  duid.set(ctx.ourMac.subarray(0, 6), 8);
  duidReady = true;
  return duid;
}

/**
 * Answers the DHCPv6 message in `l4` (UDP header and payload, sent by the
 * guest to port 547 inside `ip`) through `tap`, as the header says. Returns
 * nothing; counts "dhcpv6Disabled" with --no-dhcpv6, "dhcpv6Unicast" for a
 * message not sent to a multicast address, "dhcpv6Malformed" for one upstream
 * would refuse, "dhcpv6Ignored" for one it does not answer, and
 * "dhcpv6TooLong" if the answer cannot be built.
 */
export function dhcpv6(ctx: Ctx, tap: TapSink, ip: Ipv6View, l4: Uint8Array): void {
  const stats = ctx.stats;
  if (ctx.conf.noDhcpv6 || !ctx.ip6) {
    stats.drop("dhcpv6Disabled");
    return;
  }
  if (!isMulticast(ip.dstAddr)) {
    stats.drop("dhcpv6Unicast");
    return;
  }
  const u = udp.wrap(l4);
  const m = u && u.length === l4.byteLength ? request.wrap(u.payload) : null;
  if (!m) {
    stats.drop("dhcpv6Malformed");
    return;
  }
  const clientId = m.findOption(Dhcpv6Option.CLIENT_ID);
  const serverId = m.findOption(Dhcpv6Option.SERVER_ID);
  const iaNa = m.findOption(Dhcpv6Option.IA_NA);
  if (
    !clientId || clientId.byteLength > CLIENT_ID_MAX_BYTES ||
    (serverId && serverId.byteLength !== DUID_LLT_BYTES) ||
    (iaNa && iaNa.byteLength < IA_MIN_BYTES)
  ) {
    stats.drop("dhcpv6Malformed");
    return;
  }
  if (!duidReady) dhcpv6Init(ctx);
  const ours = serverId !== null && addrEqual(serverId, duid);
  const p = prepare(ctx);

  let replyType: number = Dhcpv6MessageType.REPLY;
  switch (m.messageType) {
    case Dhcpv6MessageType.REQUEST:
    case Dhcpv6MessageType.RENEW:
    case Dhcpv6MessageType.CONFIRM: {
      if (m.messageType === Dhcpv6MessageType.CONFIRM ? serverId !== null : !ours) {
        stats.drop("dhcpv6Ignored");
        return;
      }
      if (notOnLink(m, ctx.ip6.addr)) {
        sendNotOnLink(ctx, tap, ip, p, clientId);
        return;
      }
      break;
    }
    case Dhcpv6MessageType.INFORMATION_REQUEST:
      if ((serverId && !ours) || iaNa || m.findOption(Dhcpv6Option.IA_TA)) {
        stats.drop("dhcpv6Ignored");
        return;
      }
      break;
    case Dhcpv6MessageType.REBIND:
      if (!ours) {
        stats.drop("dhcpv6Ignored");
        return;
      }
      break;
    case Dhcpv6MessageType.SOLICIT:
      if (serverId) {
        stats.drop("dhcpv6Ignored");
        return;
      }
      replyType = Dhcpv6MessageType.ADVERTISE;
      break;
    default:
      stats.drop("dhcpv6Ignored");
      return;
  }

  if (iaNa) lastIaid = readU32(iaNa, 0);
  const f = p.reply;
  f.messageType = replyType;
  f.xid = m.xid;
  f.clientId = clientId;
  p.ia.iaid = lastIaid;
  const fqdn = m.fqdn;
  f.fqdnFlags = fqdn && (fqdn[0]! & Dhcpv6FqdnFlag.S) !== 0 ? Dhcpv6FqdnFlag.O : 0;
  const len = emitDhcpv6Reply(message, f);
  if (len < 0) {
    stats.drop("dhcpv6TooLong");
    return;
  }
  send(ctx, tap, ip.srcAddr, len);
  ctx.ip6.addrSeen.set(ctx.ip6.addr);
}

/**
 * Returns the IA (IA_NA first, then IA_TA) holding an address other than
 * `addr`, keeping it in notOnLinkIa and notOnLinkCode, or false if there is none. As upstream, an
 * IA shorter than 12 bytes or an address option not 24 bytes long ends the
 * search with false, and nested options are read from byte 12 of the IA
 * whichever its type.
 */
function notOnLink(m: Dhcpv6View, addr: Uint8Array): boolean {
  for (let i = 0; i < IA_CODES.length; i++) {
    const code = IA_CODES[i]!;
    const c = m.options();
    while (c.next()) {
      if (c.code !== code) continue;
      const ia = c.value;
      if (ia.byteLength < IA_NA_FIXED) return false;
      const n = nested.reset(ia, IA_NA_FIXED, ia.byteLength);
      while (n.next()) {
        if (n.code !== Dhcpv6Option.IA_ADDRESS) continue;
        if (n.valueLength !== IAADDR_BYTES) return false;
        if (!addrEqual(ia.subarray(n.valueOffset, n.valueOffset + 16), addr)) {
          notOnLinkCode = code;
          notOnLinkIa = ia;
          return true;
        }
      }
    }
  }
  return false;
}

/** Sends the NotOnLink REPLY for the IA notOnLink() found. */
function sendNotOnLink(ctx: Ctx, tap: TapSink, ip: Ipv6View, p: Prepared, clientId: Uint8Array): void {
  const ia = notOnLinkIa;
  const f = p.notOnLink;
  f.xid = request.xid;
  f.clientId = clientId;
  // Upstream copies the first 12 bytes of the client's IA as IAID, T1 and T2.
  p.notOnLinkIa.iaid = readU32(ia, 0);
  p.notOnLinkIa.t1S = readU32(ia, 4);
  p.notOnLinkIa.t2S = readU32(ia, 8);
  const len = emitDhcpv6Reply(message, f);
  if (len < 0) {
    ctx.stats.drop("dhcpv6TooLong");
    return;
  }
  // ... and keeps the client's option code (IA_TA stays IA_TA).
  message[NOTONLINK_IA_OFFSET] = 0;
  message[NOTONLINK_IA_OFFSET + 1] = notOnLinkCode;
  send(ctx, tap, ip.srcAddr, len);
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** Puts UDP, IPv6 and Ethernet headers in front of the `len`-byte message and sends it to `dst` port 546. */
function send(ctx: Ctx, tap: TapSink, dst: Uint8Array, len: number): void {
  const src = ctx.ip6!.ourTapLl;
  udpFields.payloadLength = len;
  udpFields.src = src;
  udpFields.dst = dst;
  UdpView.emit(frame, L4_OFFSET6, udpFields);
  const total = ipv6Frame(ctx, frame, src, dst, IpProtocol.UDP, UdpView.HEADER_LEN + len);
  // Flow label: upstream passes the transaction ID as it lies in memory, read
  // as a little-endian bit-field, and keeps its low 20 bits.
  frame[L3_OFFSET + 1] = (frame[L3_OFFSET + 1]! & 0xf0) | (message[3]! & 0x0f);
  frame[L3_OFFSET + 2] = message[2]!;
  frame[L3_OFFSET + 3] = message[1]!;
  tap.send(frame.subarray(0, total));
}
