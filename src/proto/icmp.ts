// SPDX-License-Identifier: GPL-2.0-or-later
// icmp.ts - ICMP/ICMPv6 echo proxy over ping sockets (passt icmp.c)
//
// Theory of operation
//
// Only echo requests from the guest are handled; everything else is dropped
// and counted. Each (guest address, echo id, destination) is one PING4 or
// PING6 flow with one unprivileged "ping" socket (socket(AF_INET,
// SOCK_DGRAM, IPPROTO_ICMP), or AF_INET6 / IPPROTO_ICMPV6). Linux lets a
// process open those only if its group is in net.ipv4.ping_group_range; when
// it is not (EACCES/EPERM), we log once how to allow it, count the drop and
// carry on without ICMP.
//
// Echo ids: on a ping socket the kernel replaces the id of every request
// with the socket's "port". We bind the socket to the guest's id, so the
// host sees the same id; if another socket already holds it (EADDRINUSE) we
// let the kernel pick one, and in both cases restore the guest's id in the
// replies (the flow remembers it as its INISIDE ports).
//
// Flow sides: INISIDE is the guest (pif TAP): eaddr:eport = guest address and
// id, oaddr:oport = the address it pinged and the id. TGTSIDE is the host
// (pif HOST): eaddr = that destination after natFromTap() (a guest pinging
// the map-host-loopback address, the gateway by default, reaches the host's
// 127.0.0.1 / ::1), oaddr = -o address or unspecified. INISIDE is hashed for
// lookups of guest requests; the socket's epoll reference carries the flow
// index, so replies need no lookup.
//
// Replies are read with recvfrom into one frame buffer, after the Ethernet
// and IP headers; the id is restored, the checksum recomputed (over the IPv6
// pseudo-header for ICMPv6), and the frame is sent to the guest from the
// address it pinged (INISIDE oaddr), never from the host address that
// answered. In pasta mode a namespace's own replies can loop back to the
// socket, so a reply repeating the last sequence number is dropped, as
// upstream does.
//
// Timeout: a flow with no request for ICMP_ECHO_TIMEOUT_MS is closed by the
// flow timer (flows.runTimers()).

import type { Ctx } from "../ctx.ts";
import { FlowType, INISIDE, Pif, TGTSIDE, flows, sidxOf } from "../flow/table.ts";
import { SA_SCRATCH, bindOutboundIf, writeSockaddrInany } from "../flow/sock.ts";
import { hostBindAddr, natFromTap } from "../fwd.ts";
import { inanyFrom4, inanyFrom6, inanyToString } from "../inany.ts";
import { log, rateLimited } from "../log.ts";
import { EpollType, type Loop } from "../loop/mod.ts";
import { L4_OFFSET4, L4_OFFSET6, allocFrame, ipv4Frame, ipv6Frame, type TapSink } from "../tap/frame.ts";
import { IcmpType, IcmpView } from "../wire/icmp.ts";
import { Icmpv6Type, Icmpv6View } from "../wire/icmpv6.ts";
import { IpProtocol, type Ipv4View } from "../wire/ipv4.ts";
import type { Ipv6View } from "../wire/ipv6.ts";
import {
  AF_INET, AF_INET6, EPOLLIN, Errno, IPPROTO_ICMP, IPPROTO_ICMPV6, MSG_NOSIGNAL, SOCK_CLOEXEC, SOCK_DGRAM,
  SOCK_NONBLOCK, bind, close, errnoName, recvfrom, sendto, socket,
} from "../../syscalls/mod.ts";

/** Idle time after which a ping flow is closed, in ms (upstream ICMP_ECHO_TIMEOUT, 60 s). */
export const ICMP_ECHO_TIMEOUT_MS = 60_000;

/** Replies read per socket event at most, so one busy flow cannot starve the loop. */
const READS_PER_EVENT = 32;

/** Ping socket per flow, -1 when none (valid for PING4/PING6 flows only). */
const pingSock = new Int32Array(flows.max).fill(-1);
/** Sequence number of the last reply sent to the guest, -1 for none (pasta loop suppression). */
const pingSeq = new Int32Array(flows.max).fill(-1);

/** Frame buffer for replies to the guest, reused for every reply. */
const frame = allocFrame();
const rx4 = frame.subarray(L4_OFFSET4);
const rx6 = frame.subarray(L4_OFFSET6);
const reply4 = new IcmpView();
const reply6 = new Icmpv6View();
const req4 = new IcmpView();
const req6 = new Icmpv6View();

/** Scratch inany addresses for the tap handlers and replies. */
const srcAny = new Uint8Array(16);
const dstAny = new Uint8Array(16);
const tgtAny = new Uint8Array(16);
const bindAny = new Uint8Array(16);
const src4 = new Uint8Array(4);
const dst4 = new Uint8Array(4);
const src6 = new Uint8Array(16);
const dst6 = new Uint8Array(16);

const warnLimited = rateLimited("warn");
let pingDeniedLogged = false;

/** ICMP handlers for guest frames, as tap/input.ts calls them. */
export interface IcmpHandlers {
  /** Handles one ICMP message from the guest (IPv4 payload); never throws. */
  icmp4(ip: Ipv4View, l4: Uint8Array): void;
  /** Handles one ICMPv6 message from the guest (upper-layer payload); never throws. */
  icmp6(ip: Ipv6View, l4: Uint8Array): void;
}

/**
 * Returns the ICMP and ICMPv6 tap handlers after registering the PING socket
 * handler in `loop` and the PING4/PING6 timeouts in the flow table.
 * Replies go to `tap`.
 */
export function icmpInit(ctx: Ctx, loop: Loop, tap: TapSink): IcmpHandlers {
  loop.on(EpollType.PING, (flow, events, fd) => pingSockHandler(ctx, tap, flow, events, fd));
  const expire = (flow: number): void => pingClose(loop, flow);
  flows.onExpire(FlowType.PING4, expire);
  flows.onExpire(FlowType.PING6, expire);
  return {
    icmp4: (ip, l4) => icmp4(ctx, loop, ip, l4),
    icmp6: (ip, l4) => icmp6(ctx, loop, ip, l4),
  };
}

/** Returns the number of open ping flows (for tests and statistics). */
export function icmpFlowCount(): number {
  let n = 0;
  for (let f = 0; f < flows.max; f++) if (pingSock[f]! >= 0) n++;
  return n;
}

function icmp4(ctx: Ctx, loop: Loop, ip: Ipv4View, l4: Uint8Array): void {
  const stats = ctx.stats;
  if (ctx.conf.noIcmp) return void stats.drop("icmpDisabled");
  const icmp = req4.wrap(l4);
  if (icmp === null) return void stats.drop("icmpTruncated");
  if (icmp.type !== IcmpType.ECHO_REQUEST) return void stats.drop("icmpNotEchoRequest");
  if (!icmp.verifyChecksum()) return void stats.drop("icmpChecksum");
  inanyFrom4(ip.srcAddr, srcAny);
  inanyFrom4(ip.dstAddr, dstAny);
  request(ctx, loop, FlowType.PING4, icmp.identifier, l4);
}

function icmp6(ctx: Ctx, loop: Loop, ip: Ipv6View, l4: Uint8Array): void {
  const stats = ctx.stats;
  if (ctx.conf.noIcmp) return void stats.drop("icmpDisabled");
  const icmp = req6.wrap(l4);
  if (icmp === null) return void stats.drop("icmp6Truncated");
  if (icmp.type !== Icmpv6Type.ECHO_REQUEST) return void stats.drop("icmp6NotEchoRequest");
  const src = ip.srcAddr, dst = ip.dstAddr;
  if (!icmp.verifyChecksum(src, dst)) return void stats.drop("icmp6Checksum");
  inanyFrom6(src, srcAny);
  inanyFrom6(dst, dstAny);
  request(ctx, loop, FlowType.PING6, icmp.identifier, l4);
}

/** Finds or creates the flow for srcAny/dstAny and `id`, and relays the echo request `msg`. */
function request(ctx: Ctx, loop: Loop, type: number, id: number, msg: Uint8Array): void {
  const proto = type === FlowType.PING4 ? IpProtocol.ICMP : IpProtocol.ICMPV6;
  const sidx = flows.lookup(proto, Pif.TAP, srcAny, id, dstAny, id);
  const flow = sidx >= 0 ? sidx >>> 1 : pingNew(ctx, loop, type, proto, id);
  if (flow < 0) return;
  flows.deadlineMs[flow] = performance.now() + ICMP_ECHO_TIMEOUT_MS;
  const tgt = sidxOf(flow, TGTSIDE);
  const salen = writeSockaddrInany(SA_SCRATCH, flows.addrs, 0, flows.eaddrOff(tgt));
  const n = sendto(pingSock[flow]!, msg, msg.byteLength, MSG_NOSIGNAL, SA_SCRATCH, salen);
  if (n < 0) {
    ctx.stats.drop("icmpSendFailed");
    warnLimited(`ping: sendto ${inanyToString(flows.addrs, flows.eaddrOff(tgt))}: ${errnoName(-n)}`);
  }
}

/**
 * Returns the index of a new PING4/PING6 flow for the request from srcAny
 * to dstAny with echo id `id`, with its socket open and registered, or -1
 * (drop counted) if the table is full, the destination cannot be reached
 * or the socket cannot be opened.
 * @syscalls socket bind setsockopt epoll_ctl close
 */
function pingNew(ctx: Ctx, loop: Loop, type: number, proto: number, id: number): number {
  const stats = ctx.stats;
  if (!natFromTap(ctx, proto, dstAny, id, tgtAny)) {
    stats.drop("icmpNoRoute");
    return -1;
  }
  const f = flows.alloc();
  if (f < 0) {
    stats.drop("flowTableFull");
    return -1;
  }
  hostBindAddr(ctx, tgtAny, bindAny);
  flows.setSide(f, INISIDE, Pif.TAP, srcAny, id, dstAny, id);
  flows.setSide(f, TGTSIDE, Pif.HOST, tgtAny, id, bindAny, id);
  flows.setType(f, type);

  const v4 = type === FlowType.PING4;
  const fd = socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6);
  if (fd < 0) {
    if ((fd === -Errno.EACCES || fd === -Errno.EPERM) && !pingDeniedLogged) {
      pingDeniedLogged = true;
      log.warn("Cannot open \"ping\" socket. You might need to:");
      log.warn("  sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"");
      log.warn("...echo requests/replies will fail.");
    }
    stats.drop(fd === -Errno.EACCES || fd === -Errno.EPERM ? "icmpPingDenied" : "icmpSocketFailed");
    flows.free(f);
    return -1;
  }
  let r = bindOutboundIf(ctx, fd, v4);
  if (r >= 0) {
    // The socket's port is the echo id on the wire: ask for the guest's, else any.
    r = bind(fd, SA_SCRATCH, writeSockaddrInany(SA_SCRATCH, bindAny, id));
    if (r === -Errno.EADDRINUSE) r = bind(fd, SA_SCRATCH, writeSockaddrInany(SA_SCRATCH, bindAny, 0));
  }
  if (r >= 0) r = loop.add(fd, EPOLLIN, EpollType.PING, f);
  if (r < 0) {
    warnLimited(`ping: socket setup: ${errnoName(-r)}`);
    stats.drop("icmpSocketFailed");
    close(fd);
    flows.free(f);
    return -1;
  }
  pingSock[f] = fd;
  pingSeq[f] = -1;
  flows.hashInsert(sidxOf(f, INISIDE));
  flows.activate(f);
  if (log.debugEnabled) {
    log.debug(`ping: new flow ${f}, id ${id}, ${inanyToString(srcAny)} -> ${inanyToString(dstAny)} (host ${inanyToString(tgtAny)})`);
  }
  return f;
}

/** Closes ping flow `flow`: its socket, its hash entry, its table entry. */
function pingClose(loop: Loop, flow: number): void {
  const fd = pingSock[flow]!;
  if (fd >= 0) {
    loop.del(fd);
    close(fd);
  }
  pingSock[flow] = -1;
  flows.free(flow);
}

/**
 * Reads echo replies from the ping socket of `flow` and sends them to the
 * guest; never throws.  @syscalls recvfrom
 */
function pingSockHandler(ctx: Ctx, tap: TapSink, flow: number, _events: number, fd: number): void {
  const type = flows.type[flow];
  if (pingSock[flow] !== fd || (type !== FlowType.PING4 && type !== FlowType.PING6)) return;
  const v4 = type === FlowType.PING4;
  const ini = sidxOf(flow, INISIDE);
  const guestId = flows.eport[ini]!;
  for (let k = 0; k < READS_PER_EVENT; k++) {
    const rx = v4 ? rx4 : rx6;
    const n = recvfrom(fd, rx, rx.byteLength, 0, null, null);
    if (n === -Errno.EAGAIN || n === -Errno.EINTR) return;
    if (n < 0) {
      warnLimited(`ping: recvfrom: ${errnoName(-n)}`);
      return;
    }
    const msg = rx.subarray(0, n);
    let seq: number;
    if (v4) {
      const icmp = reply4.wrap(msg);
      if (icmp === null || icmp.type !== IcmpType.ECHO_REPLY) {
        ctx.stats.drop("icmpUnexpectedReply");
        continue;
      }
      seq = icmp.sequenceNumber;
      icmp.identifier = guestId;
    } else {
      const icmp = reply6.wrap(msg);
      if (icmp === null || icmp.type !== Icmpv6Type.ECHO_REPLY) {
        ctx.stats.drop("icmpUnexpectedReply");
        continue;
      }
      seq = icmp.sequenceNumber;
      icmp.identifier = guestId;
    }
    if (ctx.mode === "pasta") {
      if (pingSeq[flow] === seq) continue;
      pingSeq[flow] = seq;
    }
    const oOff = flows.oaddrOff(ini), eOff = flows.eaddrOff(ini);
    let len: number;
    if (v4) {
      for (let i = 0; i < 4; i++) {
        src4[i] = flows.addrs[oOff + 12 + i]!;
        dst4[i] = flows.addrs[eOff + 12 + i]!;
      }
      reply4.fillChecksum();
      len = ipv4Frame(ctx, frame, src4, dst4, IpProtocol.ICMP, n);
    } else {
      for (let i = 0; i < 16; i++) {
        src6[i] = flows.addrs[oOff + i]!;
        dst6[i] = flows.addrs[eOff + i]!;
      }
      reply6.fillChecksum(src6, dst6);
      len = ipv6Frame(ctx, frame, src6, dst6, IpProtocol.ICMPV6, n);
    }
    if (tap.send(frame.subarray(0, len))) ctx.stats.framesOut++;
  }
}
