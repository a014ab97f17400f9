// SPDX-License-Identifier: GPL-2.0-or-later
// udp.ts - UDP L2-L4 translation: guest datagrams to host sockets and back (passt udp.c, udp_flow.c)
//
// Theory of operation
//
// Every UDP conversation is one UDP flow in the flow table, with exactly one
// host socket, bound and connected, so the kernel demultiplexes replies for
// us and each socket event belongs to one flow (its epoll index).
//
// Outbound (the guest initiates): INISIDE is the guest (pif TAP; eaddr:eport
// = guest address and source port, oaddr:oport = the destination it used),
// TGTSIDE the host (pif HOST; eaddr = destination after natFromTap(), so
// the gateway means host loopback and --dns-forward goes to the resolver;
// eport = same port; oaddr = -o address or unspecified; oport = the guest's
// source port, which we bind so the peer sees it, as upstream does,
// falling back to an ephemeral port when it is taken).
//
// Inbound (-u): for each forwarded port a listening socket is bound on the
// host (UDP_LISTEN). A datagram from a peer with no flow creates one: INISIDE
// is the peer (pif HOST; eaddr:eport = peer, oaddr:oport = listening
// address and port), TGTSIDE the guest (pif TAP; oaddr = the peer address as
// natToTap() presents it, e.g. 127.0.0.1 as the gateway; oport = the peer's
// port; eaddr = the rule's target address or the guest's observed address;
// eport = the rule's target port, first -> toFirst). The flow gets its own
// socket, bound to the listening address and port (SO_REUSEADDR) and
// connected to the peer: later datagrams from that peer arrive there, and
// the guest's replies leave from the forwarded port.
//
// Both sides are in the hash: the tap side for guest datagrams
// (udp4/udp6 -> lookup(UDP, TAP, guest, sport, dst, dport)), the host side
// for datagrams still queued on a listener.
//
// Guest -> host: payloads are copied into one of UDP_BATCH arena slots and
// sent with one sendmmsg() per run of consecutive frames of the same flow, at
// the latest when the tap batch ends (batchEnd()). Within that call, a run of
// datagrams of one size (the last one may be shorter) is one message with
// UDP_SEGMENT: the host's kernel takes it through its stack once and cuts it
// into datagrams at the end (for loopback, when it queues them on the
// receiving socket), which costs about a quarter of separate sends. A USO
// frame from the guest (tap.ts: gso_type UDP_L4, when an application there
// uses UDP_SEGMENT) takes one slot and goes on with UDP_SEGMENT as it came.
// Where the kernel refuses UDP_SEGMENT (datagrams larger than the route's
// MTU, more than it cuts at once, IPsec), the flow falls back to one datagram
// per message for good (udpGsoOk), USO frames cut apart by us. Truncated
// datagrams and bad checksums are dropped and counted (Stats.drops).
//
// Host -> guest: recvmmsg() reads up to UDP_BATCH datagrams straight into
// frame buffers in wasm memory, at the UDP payload offset; the UDP, IP and
// Ethernet headers are then written in front and the frame goes to
// tap.send(). Where the sink has UDP segmentation offload (tap.uso: pasta on
// Linux 6.2+), consecutive datagrams of one length, and a last shorter one,
// share one frame: headers once, in front of the first, with the lengths of
// the whole; the other payloads are gathered from where recvmmsg() put them
// (rxTail), and the guest's kernel cuts them apart again. Where the sink
// completes checksums (tap.tso), the UDP checksum is left partial, so nobody
// sums the payload. Datagrams too big for a frame (MSG_TRUNC) are dropped and
// counted.
//
// Flow sockets ask for UDP_SOCK_BUF_BYTES of buffer each way: the host's
// sender and the guest's keep going while we wait for the CPU.
//
// Timeouts (upstream, after nf_conntrack): a flow that has only seen one
// direction expires UDP_TIMEOUT_MS after its last datagram; once both
// directions have been seen, UDP_TIMEOUT_STREAM_MS. Expiry closes the socket
// and frees the flow (flows.runTimers()).
//
// Listeners of `-u auto` and `-u all` rules are opened and closed by
// fwd_auto.ts through udpListenOpen() / udpListenClose().
//
// In pasta, datagrams from the host's loopback to a forwarded port reach
// listeners of udp_splice.ts bound to 127.0.0.1 / ::1 instead, and skip the tap.

import type { Ctx } from "../ctx.ts";
import type { PortRule } from "../conf.ts";
import { FlowType, INISIDE, Pif, TGTSIDE, flows, sidxOf } from "../flow/table.ts";
import { bindToDevice, flowSock } from "../flow/sock.ts";
import { guestDst, hostBindAddr, natFromTap, natToTap } from "../fwd.ts";
import {
  INANY_ANY4, INANY_ANY6, inanyFrom, inanyIs4, inanyToString,
} from "../inany.ts";
import { log, rateLimited } from "../log.ts";
import { EpollType, type Loop } from "../loop/mod.ts";
import { L4_OFFSET4, L4_OFFSET6, allocFrame, ipv4Frame, ipv6Frame, type TapSink } from "../tap/frame.ts";
import { tapFrameMeta } from "../tap/input.ts";
import { IpProtocol, type Ipv4View } from "../wire/ipv4.ts";
import type { Ipv6View } from "../wire/ipv6.ts";
import { UdpView, type UdpFields } from "../wire/udp.ts";
import {
  AF_INET, AF_INET6, EPOLLIN, Errno, IPPROTO_UDP, IovecList, MMSGHDR, MSG_DONTWAIT, MSG_NOSIGNAL, MSG_TRUNC, MmsgBatch,
  SOCKADDR_IN, SOCKADDR_IN6, SOCK_DGRAM, SOL_SOCKET, SO_RCVBUF, SO_SNDBUF, UdpSendBatch, arena, close, errnoName, recvmmsg,
  sendmmsg, setsockoptInt, sockaddrFamily,
} from "../../syscalls/mod.ts";

/** Idle timeout of a flow seen in one direction only, in ms (nf_conntrack_udp_timeout, 30 s). */
export const UDP_TIMEOUT_MS = 30_000;
/** Idle timeout once both directions were seen, in ms (nf_conntrack_udp_timeout_stream, 120 s). */
export const UDP_TIMEOUT_STREAM_MS = 120_000;
/** Datagrams per sendmmsg()/recvmmsg() call (upstream UDP_MAX_FRAMES). */
export const UDP_BATCH = 32;
/** Largest UDP payload over IPv4: 65535 - 20 - 8 bytes. */
export const UDP_MAX_PAYLOAD = 65507;
/**
 * Most datagrams in one segmentation-offload send, to the tap (USO) or to a host
 * socket (UDP_SEGMENT): the kernel's UDP_MAX_SEGMENTS (64 until Linux 6.11).
 */
export const UDP_GSO_MAX_SEGMENTS = 64;
/**
 * SO_RCVBUF and SO_SNDBUF asked for on flow sockets; the kernel caps them at
 * net.core.rmem_max and wmem_max (212992 by default: then nothing changes).
 * The default receive buffer holds about 90 datagrams of 1400 bytes, 1 ms at
 * 1 Gbit/s: shorter than a time slice we may wait for on a busy machine.
 */
export const UDP_SOCK_BUF_BYTES = 4 << 20;

const UDP_HLEN = UdpView.HEADER_LEN;

/** Direction bits in udpSeen. */
const SEEN_FROM_TAP = 1;
const SEEN_FROM_HOST = 2;

// Per-flow state (valid for UDP flows only; see flow/table.ts) ----------------

/** The flow's host socket, -1 when none. */
const udpSock = new Int32Array(flows.max).fill(-1);
/** Which side of the flow is the host socket's: TGTSIDE (outbound) or INISIDE (inbound). */
const udpHostSide = new Uint8Array(flows.max);
/** SEEN_FROM_TAP | SEEN_FROM_HOST: directions seen so far. */
const udpSeen = new Uint8Array(flows.max);
/** 1 while the host socket takes UDP_SEGMENT sends; 0 once one failed (see txFlush()). */
const udpGsoOk = new Uint8Array(flows.max);

// Buffers, allocated once ------------------------------------------------------

/**
 * Guest -> host: copies of pending payloads, one slot per guest frame: one
 * datagram, or several of txSeg bytes each (a USO frame from the guest).
 */
const txBufs: Uint8Array[] = [];
for (let i = 0; i < UDP_BATCH; i++) txBufs.push(arena(65536, 64));
/** Payload bytes in each slot. */
const txLen = new Uint32Array(UDP_BATCH);
/** Datagram size of each slot: its length, or the guest's gso_size for a USO frame. */
const txSeg = new Uint32Array(UDP_BATCH);
/** Flow whose datagrams are pending in the slots, or -1. */
let txFlow = -1;
let txCount = 0;
/** Messages of one sendmmsg(): at most one per datagram of a full batch of slots, sent in parts. */
const TX_MESSAGES = UDP_BATCH;
const txSend = new UdpSendBatch(TX_MESSAGES, UDP_BATCH + TX_MESSAGES);
/** First slot of each message in txSend. */
const txMsgSlot = new Uint32Array(TX_MESSAGES);
/** Datagrams each message in txSend carries. */
const txMsgDatagrams = new Uint32Array(TX_MESSAGES);

/** Host -> guest: frames in wasm memory; two batch views, at the IPv4 and IPv6 payload offsets. */
const frames: Uint8Array[] = [];
for (let i = 0; i < UDP_BATCH; i++) frames.push(allocFrame());
const PAYLOAD4 = L4_OFFSET4 + UDP_HLEN;
const PAYLOAD6 = L4_OFFSET6 + UDP_HLEN;
const rxBatch4 = new MmsgBatch(frames.map((f) => f.subarray(PAYLOAD4, PAYLOAD4 + Math.min(UDP_MAX_PAYLOAD, f.byteLength - PAYLOAD4))));
const rxBatch6 = new MmsgBatch(frames.map((f) => f.subarray(PAYLOAD6, f.byteLength)));

/** Scratch inany addresses. */
const srcAny = new Uint8Array(16);
const dstAny = new Uint8Array(16);
/** Their last four bytes: the IPv4 address in an IPv4-mapped inany. */
const srcAny4 = srcAny.subarray(12);
const dstAny4 = dstAny.subarray(12);
const tgtAny = new Uint8Array(16);
const bindAny = new Uint8Array(16);
const peerAny = new Uint8Array(16);
const tapSrcAny = new Uint8Array(16);
const guestAny = new Uint8Array(16);
const src4 = new Uint8Array(4);
const dst4 = new Uint8Array(4);
const src6 = new Uint8Array(16);
const dst6 = new Uint8Array(16);
const udpFields: UdpFields = { srcPort: 0, dstPort: 0, payloadLength: 0, src: src4, dst: dst4, partial: false };
/** Host -> guest: the payloads after the first of a USO frame, where recvmmsg() put them. */
const rxTail = new IovecList(UDP_GSO_MAX_SEGMENTS);
const guestUdp = new UdpView();

const warnLimited = rateLimited("warn");

// Listeners ---------------------------------------------------------------------

/** One listening socket for inbound forwarding. */
interface Listener {
  /** The socket. */
  readonly fd: number;
  /** Bound address, inany (unspecified for a wildcard). */
  readonly addr: Uint8Array;
  /** Bound port. */
  readonly port: number;
  /** The rule it serves. */
  readonly rule: PortRule;
}

const listeners: Listener[] = [];

/** UDP handlers for guest frames, as tap/input.ts calls them. */
export interface UdpHandlers {
  /** Handles one UDP datagram from the guest over IPv4 (the IP payload); never throws. */
  udp4(ip: Ipv4View, l4: Uint8Array): void;
  /** Handles one UDP datagram from the guest over IPv6 (the upper-layer payload); never throws. */
  udp6(ip: Ipv6View, l4: Uint8Array): void;
  /** Sends what the tap batch queued; call once the batch of guest frames is handled. */
  batchEnd(): void;
}

/** Result of udpInit(): the tap handlers and how many listening sockets were opened. */
export interface UdpInit extends UdpHandlers {
  /** Listening sockets opened for -u rules. */
  readonly listeners: number;
  /** Closes every listener and flow (tests, shutdown). */
  close(): void;
}

/**
 * Returns the UDP tap handlers after registering the UDP and UDP_LISTEN
 * socket handlers in `loop`, the UDP flow timeout, and opening listening
 * sockets for ctx.conf.fwd.udpIn. A port that cannot be bound is logged and
 * skipped (upstream gives up on the rule; the lead decides whether to die).
 * @syscalls socket setsockopt bind epoll_ctl
 */
export function udpInit(ctx: Ctx, loop: Loop, tap: TapSink): UdpInit {
  loop.on(EpollType.UDP, (flow, events, fd) => udpSockHandler(ctx, tap, flow, events, fd));
  loop.on(EpollType.UDP_LISTEN, (index, events, fd) => udpListenHandler(ctx, loop, tap, index, events, fd));
  flows.onExpire(FlowType.UDP, (flow) => udpFlowClose(loop, flow));
  if (!ctx.conf.noUdp) openListeners(ctx, loop);
  return {
    udp4: (ip, l4) => {
      mapped4(srcAny);
      mapped4(dstAny);
      ip.copySrcAddr(srcAny, 12);
      ip.copyDstAddr(dstAny, 12);
      udpFromTap(ctx, loop, srcAny4, dstAny4, l4, ip.isFragment);
    },
    udp6: (ip, l4) => udpFromTap(ctx, loop, ip.copySrcAddr(srcAny), ip.copyDstAddr(dstAny), l4, ip.isFragment),
    batchEnd: () => txFlush(ctx),
    listeners: listeners.length,
    close: () => udpCloseAll(loop),
  };
}

function openListeners(ctx: Ctx, loop: Loop): void {
  for (const rule of ctx.conf.fwd.udpIn.rules) {
    if (rule.auto || rule.all) continue; // fwd_auto.ts opens these (udpListenOpen)
    for (let port = rule.first; port <= rule.last; port++) {
      if (rule.exclude.some((r) => port >= r.first && port <= r.last)) continue;
      const addrs: Uint8Array[] = [];
      if (rule.bindAddr !== null) addrs.push(inanyFrom(rule.bindAddr, new Uint8Array(16)));
      else {
        if (ctx.ip4 !== null) addrs.push(INANY_ANY4);
        if (ctx.ip6 !== null) addrs.push(INANY_ANY6);
      }
      for (const addr of addrs) {
        if (inanyIs4(addr) ? ctx.ip4 === null : ctx.ip6 === null) continue;
        const fd = flowSock(ctx, SOCK_DGRAM, IPPROTO_UDP, addr, port, null, 0, { reuseAddr: true, outboundIf: false });
        if (fd < 0) {
          log.warn(`Listen failed for UDP port ${inanyToString(addr)}/${port}: ${errnoName(-fd)}`);
          continue;
        }
        if (rule.ifname !== null) {
          const r = bindToDevice(fd, rule.ifname);
          if (r < 0) log.warn(`SO_BINDTODEVICE ${rule.ifname} for UDP port ${port}: ${errnoName(-r)}`);
        }
        const r = loop.add(fd, EPOLLIN, EpollType.UDP_LISTEN, listeners.length);
        if (r < 0) {
          close(fd);
          log.warn(`epoll_ctl for UDP port ${port}: ${errnoName(-r)}`);
          continue;
        }
        listeners.push({ fd, addr, port, rule });
      }
    }
  }
}

/** Indices of closed entries of `listeners`, reused by udpListenOpen(). */
const freeListeners: number[] = [];

/**
 * Returns the index of a new listening socket for `port` of `rule`, bound to
 * `addr` (inany) and registered as UDP_LISTEN, or -errno. fwd_auto.ts opens
 * and closes the ports of `auto` and `all` rules with it.
 * @syscalls socket setsockopt bind epoll_ctl close
 */
export function udpListenOpen(ctx: Ctx, loop: Loop, rule: PortRule, addr: Uint8Array, port: number): number {
  const fd = flowSock(ctx, SOCK_DGRAM, IPPROTO_UDP, addr, port, null, 0, { reuseAddr: true, outboundIf: false });
  if (fd < 0) return fd;
  const r = rule.ifname === null ? 0 : bindToDevice(fd, rule.ifname);
  const index = freeListeners.pop() ?? listeners.length;
  const e = r < 0 ? r : loop.add(fd, EPOLLIN, EpollType.UDP_LISTEN, index);
  if (e < 0) {
    close(fd);
    if (index < listeners.length) freeListeners.push(index);
    return e;
  }
  listeners[index] = { fd, addr: new Uint8Array(addr), port, rule };
  return index;
}

/** Closes listening socket `index` of udpListenOpen(); flows it started keep their own sockets. */
export function udpListenClose(loop: Loop, index: number): void {
  const lis = listeners[index];
  if (lis === undefined || lis.fd < 0) return;
  loop.del(lis.fd);
  close(lis.fd);
  listeners[index] = { ...lis, fd: -1 };
  freeListeners.push(index);
}

/** Returns the timeout for flow `flow` in ms, by the directions seen. */
function timeoutMs(flow: number): number {
  return udpSeen[flow] === (SEEN_FROM_TAP | SEEN_FROM_HOST) ? UDP_TIMEOUT_STREAM_MS : UDP_TIMEOUT_MS;
}

// Guest -> host -----------------------------------------------------------------

/** Writes the prefix of an IPv4-mapped inany (::ffff:0:0/96) into `a`. */
function mapped4(a: Uint8Array): void {
  for (let i = 0; i < 10; i++) a[i] = 0;
  a[10] = a[11] = 0xff;
}

/**
 * Handles one UDP datagram from the guest, from `src` to `dst` (4 or 16
 * bytes), already in srcAny and dstAny as inany (srcAny4 and dstAny4 for
 * IPv4): finds or creates its flow and queues the payload for sendmmsg.
 * Never throws; drops are counted.
 */
function udpFromTap(ctx: Ctx, loop: Loop, src: Uint8Array, dst: Uint8Array, l4: Uint8Array, fragment: boolean): void {
  const stats = ctx.stats;
  if (ctx.conf.noUdp) return void stats.drop("udpDisabled");
  if (fragment) return void stats.drop("udpFragment");
  const udp = guestUdp.wrap(l4);
  if (udp === null) return void stats.drop("udpTruncated");
  if (!tapFrameMeta.l4ChecksumOk && !udp.verifyChecksum(src, dst)) return void stats.drop("udpChecksum");
  const sport = udp.srcPort, dport = udp.dstPort;
  if (dport === 0 || sport === 0) return void stats.drop("udpPortZero");
  const sidx = flows.lookup(IpProtocol.UDP, Pif.TAP, srcAny, sport, dstAny, dport);
  const flow = sidx >= 0 ? sidx >>> 1 : udpFlowOutbound(ctx, loop, sport, dport);
  if (flow < 0) return;
  udpSeen[flow]! |= SEEN_FROM_TAP;
  flows.deadlineMs[flow] = performance.now() + timeoutMs(flow);

  if (txFlow !== flow || txCount === UDP_BATCH) txFlush(ctx);
  const payload = udp.payload;
  const len = payload.byteLength;
  // A USO frame (gso_type UDP_L4) holds datagrams of udpGsoSize bytes, the last one possibly shorter.
  const gso = tapFrameMeta.udpGsoSize;
  txBufs[txCount]!.set(payload);
  txLen[txCount] = len;
  txSeg[txCount] = gso > 0 && gso < len ? gso : len;
  txFlow = flow;
  txCount++;
}

/**
 * Returns a new outbound UDP flow from srcAny:sport to dstAny:dport with its
 * host socket, or -1 (drop counted).  @syscalls socket setsockopt bind connect epoll_ctl close
 */
function udpFlowOutbound(ctx: Ctx, loop: Loop, sport: number, dport: number): number {
  const stats = ctx.stats;
  if (!natFromTap(ctx, IpProtocol.UDP, dstAny, dport, tgtAny)) {
    stats.drop("udpNoRoute");
    return -1;
  }
  const f = flows.alloc();
  if (f < 0) {
    stats.drop("flowTableFull");
    return -1;
  }
  hostBindAddr(ctx, tgtAny, bindAny);
  flows.setSide(f, INISIDE, Pif.TAP, srcAny, sport, dstAny, dport);
  flows.setSide(f, TGTSIDE, Pif.HOST, tgtAny, dport, bindAny, sport);
  flows.setType(f, FlowType.UDP);
  const opts = { reuseAddr: true, outboundIf: true };
  // Keep the guest's source port if we can (REFERENCE.md §2), else any.
  let fd = flowSock(ctx, SOCK_DGRAM, IPPROTO_UDP, bindAny, sport, tgtAny, dport, opts);
  if (fd === -Errno.EADDRINUSE || fd === -Errno.EACCES) {
    fd = flowSock(ctx, SOCK_DGRAM, IPPROTO_UDP, bindAny, 0, tgtAny, dport, opts);
  }
  if (fd < 0) {
    warnLimited(`UDP: socket to ${inanyToString(tgtAny)}:${dport}: ${errnoName(-fd)}`);
    stats.drop("udpSocketFailed");
    flows.free(f);
    return -1;
  }
  return udpFlowActivate(ctx, loop, f, fd, TGTSIDE);
}

/**
 * Registers `fd` for flow `f` with large socket buffers, hashes both sides and
 * activates it; returns `f`, or -1 (freed).  @syscalls setsockopt epoll_ctl close
 */
function udpFlowActivate(ctx: Ctx, loop: Loop, f: number, fd: number, hostSide: number): number {
  // Best effort: a smaller buffer only costs datagrams under load.
  setsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, UDP_SOCK_BUF_BYTES);
  setsockoptInt(fd, SOL_SOCKET, SO_SNDBUF, UDP_SOCK_BUF_BYTES);
  const r = loop.add(fd, EPOLLIN, EpollType.UDP, f);
  if (r < 0) {
    warnLimited(`UDP: epoll_ctl: ${errnoName(-r)}`);
    ctx.stats.drop("udpSocketFailed");
    close(fd);
    flows.free(f);
    return -1;
  }
  udpSock[f] = fd;
  udpHostSide[f] = hostSide;
  udpSeen[f] = 0;
  udpGsoOk[f] = 1;
  flows.hashInsert(sidxOf(f, INISIDE));
  flows.hashInsert(sidxOf(f, TGTSIDE));
  flows.activate(f);
  if (log.debugEnabled) {
    const ini = sidxOf(f, INISIDE), tgt = sidxOf(f, TGTSIDE);
    log.debug(`UDP flow ${f}: ${inanyToString(flows.addrs, flows.eaddrOff(ini))}:${flows.eport[ini]} -> ` +
      `${inanyToString(flows.addrs, flows.oaddrOff(ini))}:${flows.oport[ini]} => ` +
      `${inanyToString(flows.addrs, flows.oaddrOff(tgt))}:${flows.oport[tgt]} -> ` +
      `${inanyToString(flows.addrs, flows.eaddrOff(tgt))}:${flows.eport[tgt]}`);
  }
  return f;
}

/** Returns the datagrams slot `k` holds. */
function slotDatagrams(k: number): number {
  const seg = txSeg[k]!;
  return seg === 0 ? 1 : Math.ceil(txLen[k]! / seg);
}

/**
 * Sends the datagrams pending in the slots on their flow's socket and empties
 * them. While the socket takes it, a run of datagrams of one size (the last
 * one possibly shorter), or a USO frame from the guest, goes as one message
 * with UDP_SEGMENT: the host's kernel then passes it through its stack once
 * and cuts it into datagrams at the end (at the receiving socket, for
 * loopback), instead of once per datagram. If the kernel refuses that (the
 * path's MTU is smaller than the datagrams, IPsec, a kernel older than 4.18),
 * the flow sends one datagram per message from then on.
 * @syscalls sendmmsg
 */
function txFlush(ctx: Ctx): void {
  const n = txCount, flow = txFlow;
  txCount = 0;
  txFlow = -1;
  if (n === 0 || flow < 0) return;
  const fd = udpSock[flow]!;
  let k = 0, off = 0;
  while (k < n) {
    txSend.clear();
    const gso = udpGsoOk[flow] === 1;
    // Fill txSend from slot k (byte `off` of it) on.
    while (k < n && txSend.fits(gso ? n - k : 1)) {
      const m = txSend.count;
      txMsgSlot[m] = k;
      const seg = txSeg[k]!, len = txLen[k]!;
      if (!gso || seg === 0) {
        // One datagram per message, cut from the slot at `off`.
        const l = Math.min(seg, len - off);
        txSend.push(txBufs[k]!, off, l);
        txSend.end();
        txMsgDatagrams[m] = 1;
        off += l;
        if (off >= len) k++, off = 0;
        continue;
      }
      txSend.push(txBufs[k]!, 0, len);
      let datagrams = Math.ceil(len / seg), total = len;
      k++;
      // A whole datagram: the slots after it with datagrams of its size, and a last shorter one, join it.
      while (len === seg && k < n && datagrams < UDP_GSO_MAX_SEGMENTS) {
        const l = txLen[k]!;
        if (txSeg[k] !== l || l > seg || l === 0 || total + l > UDP_MAX_PAYLOAD) break;
        txSend.push(txBufs[k]!, 0, l);
        total += l;
        datagrams++;
        k++;
        if (l < seg) break;
      }
      txSend.end(datagrams > 1 ? seg : 0);
      txMsgDatagrams[m] = datagrams;
    }
    const failed = txSendAll(fd, flow);
    if (failed < 0) continue;
    // Message `failed` was refused: if UDP_SEGMENT was the reason, resend from its first
    // slot without; otherwise drop the rest of the batch.
    if (udpGsoOk[flow] === 1 && txMsgDatagrams[failed]! > 1 && segmentRefused(txError)) {
      udpGsoOk[flow] = 0;
      k = txMsgSlot[failed]!;
      off = 0;
      continue;
    }
    let lost = 0;
    for (let m = failed; m < txSend.count; m++) lost += txMsgDatagrams[m]!;
    if (k < n && off > 0) lost += Math.ceil((txLen[k]! - off) / txSeg[k]!), k++;
    for (; k < n; k++) lost += slotDatagrams(k);
    for (let i = 0; i < lost; i++) ctx.stats.drop("udpSendFailed");
    return;
  }
}

/** Returns true if -errno `e` from a send with UDP_SEGMENT may mean the kernel refuses that, not the datagrams. */
function segmentRefused(e: number): boolean {
  return e === -Errno.EINVAL || e === -Errno.EIO || e === -Errno.EMSGSIZE || e === -Errno.ENOPROTOOPT || e === -Errno.EOPNOTSUPP;
}

/** -errno of the last refusal txSendAll() returned. */
let txError = 0;

/**
 * Sends every message of txSend on `fd`; returns -1 once all went, else the
 * index of the first message the kernel refused (logged, not counted), with
 * its -errno in txError.
 * @syscalls sendmmsg
 */
function txSendAll(fd: number, flow: number): number {
  const count = txSend.count;
  let done = 0, retried = false;
  while (done < count) {
    const hdrs = done === 0 ? txSend.hdrs : txSend.hdrs.subarray(done * MMSGHDR.SIZE);
    const r = sendmmsg(fd, hdrs, count - done, MSG_NOSIGNAL);
    if (r > 0) {
      done += r;
      continue;
    }
    // A pending ICMP error (ECONNREFUSED) fails one call and is then cleared: retry once.
    if (r === -Errno.ECONNREFUSED && !retried) {
      retried = true;
      continue;
    }
    if (r === -Errno.EINTR) continue;
    txError = r;
    if (udpGsoOk[flow] === 1 && txMsgDatagrams[done]! > 1 && segmentRefused(r)) {
      if (log.debugEnabled) log.debug(`UDP flow ${flow}: sendmmsg with UDP_SEGMENT: ${errnoName(-r)}, sending datagrams one by one`);
    } else {
      warnLimited(`UDP: sendmmsg: ${errnoName(-r)}`);
    }
    return done;
  }
  return -1;
}

// Host -> guest -----------------------------------------------------------------

/**
 * Builds a frame around datagram `i` (already at the payload offset of
 * frames[i]) and the `count - 1` after it, `total` payload bytes in all, for
 * flow `flow` and sends it to the guest. With more than one datagram (only on
 * a sink with USO), they all have the length of the first but the last, which
 * may be shorter, and the frame asks the sink to cut them apart; their payloads
 * stay where they are, gathered through rxTail. On a sink that completes
 * checksums (tso), the UDP checksum is left partial.
 */
function toGuest(ctx: Ctx, tap: TapSink, flow: number, batch: MmsgBatch, i: number, count: number, total: number): void {
  const tapSide = sidxOf(flow, 1 - udpHostSide[flow]!);
  const frame = frames[i]!;
  const len = batch.msgLen(i);
  const oOff = flows.oaddrOff(tapSide), eOff = flows.eaddrOff(tapSide);
  const addrs = flows.addrs;
  // A zero-length datagram has no gso_size to give: its checksum is ours to fill.
  const partial = tap.tso === true && len > 0;
  udpFields.srcPort = flows.oport[tapSide]!;
  udpFields.dstPort = flows.eport[tapSide]!;
  udpFields.payloadLength = total;
  udpFields.partial = partial;
  let payloadOff: number;
  if (inanyIs4(addrs, oOff)) {
    for (let k = 0; k < 4; k++) {
      src4[k] = addrs[oOff + 12 + k]!;
      dst4[k] = addrs[eOff + 12 + k]!;
    }
    udpFields.src = src4;
    udpFields.dst = dst4;
    UdpView.emit(frame, L4_OFFSET4, udpFields);
    ipv4Frame(ctx, frame, src4, dst4, IpProtocol.UDP, UDP_HLEN + total);
    payloadOff = PAYLOAD4;
  } else {
    for (let k = 0; k < 16; k++) {
      src6[k] = addrs[oOff + k]!;
      dst6[k] = addrs[eOff + k]!;
    }
    udpFields.src = src6;
    udpFields.dst = dst6;
    UdpView.emit(frame, L4_OFFSET6, udpFields);
    ipv6Frame(ctx, frame, src6, dst6, IpProtocol.UDP, UDP_HLEN + total);
    payloadOff = PAYLOAD6;
  }
  let tail: IovecList | null = null;
  if (count > 1) {
    tail = rxTail;
    tail.clear();
    for (let k = i + 1; k < i + count; k++) tail.push(frames[k]!, payloadOff, batch.msgLen(k));
  }
  if (tap.send(frame.subarray(0, payloadOff + len), partial ? len : 0, tail)) {
    ctx.stats.framesOut++;
  } else {
    for (let k = 0; k < count; k++) ctx.stats.drop("udpTapFull");
  }
}

/** Returns the receive batch for a socket of flow `flow`: by the IP version of its tap side. */
function rxBatchFor(flow: number): MmsgBatch {
  const tapSide = sidxOf(flow, 1 - udpHostSide[flow]!);
  return inanyIs4(flows.addrs, flows.oaddrOff(tapSide)) ? rxBatch4 : rxBatch6;
}

/**
 * Reads up to UDP_BATCH datagrams from the socket of `flow` and sends them
 * to the guest; never throws.  @syscalls recvmmsg
 */
function udpSockHandler(ctx: Ctx, tap: TapSink, flow: number, _events: number, fd: number): void {
  if (udpSock[flow] !== fd || flows.type[flow] !== FlowType.UDP) return;
  const batch = rxBatchFor(flow);
  batch.prepareRecv();
  const n = recvmmsg(fd, batch.hdrs, UDP_BATCH, MSG_DONTWAIT);
  if (n === -Errno.EAGAIN || n === -Errno.EINTR) return;
  if (n < 0) {
    // ICMP errors from the peer (ECONNREFUSED...): reading consumed them.
    if (log.debugEnabled) log.debug(`UDP flow ${flow}: recvmmsg: ${errnoName(-n)}`);
    return;
  }
  if (n === 0) return;
  udpSeen[flow]! |= SEEN_FROM_HOST;
  flows.deadlineMs[flow] = performance.now() + timeoutMs(flow);
  const uso = tap.uso === true;
  for (let i = 0; i < n; ) {
    if (batch.flags(i) & MSG_TRUNC) {
      ctx.stats.drop("udpTooBig");
      i++;
      continue;
    }
    // With USO, datagrams of the first one's length, and a last shorter one, share one frame.
    const len = batch.msgLen(i);
    let count = 1, total = len;
    while (uso && len > 0 && i + count < n && count < UDP_GSO_MAX_SEGMENTS) {
      const l = batch.msgLen(i + count);
      if (batch.flags(i + count) & MSG_TRUNC || l > len || l === 0 || total + l > UDP_MAX_PAYLOAD) break;
      total += l;
      count++;
      if (l < len) break;
    }
    toGuest(ctx, tap, flow, batch, i, count, total);
    i += count;
  }
}

/**
 * Reads datagrams from listening socket `index`, creating inbound flows for
 * new peers, and sends them to the guest; never throws.  @syscalls recvmmsg
 */
function udpListenHandler(ctx: Ctx, loop: Loop, tap: TapSink, index: number, _events: number, fd: number): void {
  const lis = listeners[index];
  if (lis === undefined || lis.fd !== fd) return;
  const batch = inanyIs4(lis.addr) ? rxBatch4 : rxBatch6;
  batch.prepareRecv();
  const n = recvmmsg(fd, batch.hdrs, UDP_BATCH, MSG_DONTWAIT);
  if (n <= 0) return;
  const names = batch.names;
  for (let i = 0; i < n; i++) {
    if (batch.flags(i) & MSG_TRUNC) {
      ctx.stats.drop("udpTooBig");
      continue;
    }
    const off = i * 128;
    const family = sockaddrFamily(names.subarray(off, off + 2));
    const peerPort = (names[off + 2]! << 8) | names[off + 3]!;
    if (family === AF_INET) {
      peerAny.fill(0, 0, 10);
      peerAny[10] = 0xff;
      peerAny[11] = 0xff;
      for (let k = 0; k < 4; k++) peerAny[12 + k] = names[off + SOCKADDR_IN.ADDR + k]!;
    } else if (family === AF_INET6) {
      for (let k = 0; k < 16; k++) peerAny[k] = names[off + SOCKADDR_IN6.ADDR + k]!;
    } else {
      ctx.stats.drop("udpBadPeer");
      continue;
    }
    const sidx = flows.lookup(IpProtocol.UDP, Pif.HOST, peerAny, peerPort, lis.addr, lis.port);
    const flow = sidx >= 0 ? sidx >>> 1 : udpFlowInbound(ctx, loop, lis, peerPort);
    if (flow < 0) continue;
    udpSeen[flow]! |= SEEN_FROM_HOST;
    flows.deadlineMs[flow] = performance.now() + timeoutMs(flow);
    // The frame layout follows the flow's tap side; the listener's batch must match it.
    if (rxBatchFor(flow) !== batch) {
      ctx.stats.drop("udpFamilyMismatch");
      continue;
    }
    toGuest(ctx, tap, flow, batch, i, 1, batch.msgLen(i));
  }
}

/**
 * Returns a new inbound flow from peerAny:peerPort through listener `lis`,
 * with its connected socket, or -1 (drop counted).
 * @syscalls socket setsockopt bind connect epoll_ctl close
 */
function udpFlowInbound(ctx: Ctx, loop: Loop, lis: Listener, peerPort: number): number {
  const stats = ctx.stats;
  const rule = lis.rule;
  if (!natToTap(ctx, peerAny, tapSrcAny)) {
    stats.drop("udpNoTapSource");
    return -1;
  }
  if (rule.toAddr !== null) {
    inanyFrom(rule.toAddr, guestAny);
    if (inanyIs4(guestAny) !== inanyIs4(tapSrcAny)) {
      stats.drop("udpFamilyMismatch");
      return -1;
    }
  } else if (!guestDst(ctx, tapSrcAny, guestAny)) {
    stats.drop("udpNoGuestAddr");
    return -1;
  }
  const f = flows.alloc();
  if (f < 0) {
    stats.drop("flowTableFull");
    return -1;
  }
  const guestPort = rule.toFirst + (lis.port - rule.first);
  flows.setSide(f, INISIDE, Pif.HOST, peerAny, peerPort, lis.addr, lis.port);
  flows.setSide(f, TGTSIDE, Pif.TAP, guestAny, guestPort, tapSrcAny, peerPort);
  flows.setType(f, FlowType.UDP);
  const fd = flowSock(ctx, SOCK_DGRAM, IPPROTO_UDP, lis.addr, lis.port, peerAny, peerPort, { reuseAddr: true, outboundIf: false });
  if (fd < 0) {
    warnLimited(`UDP: reply socket for ${inanyToString(peerAny)}:${peerPort}: ${errnoName(-fd)}`);
    stats.drop("udpSocketFailed");
    flows.free(f);
    return -1;
  }
  return udpFlowActivate(ctx, loop, f, fd, INISIDE);
}

// Closing -----------------------------------------------------------------------

/** Closes UDP flow `flow`: its socket and its table entry (hash entries go with it). */
function udpFlowClose(loop: Loop, flow: number): void {
  if (txFlow === flow) {
    txFlow = -1;
    txCount = 0;
  }
  const fd = udpSock[flow]!;
  if (fd >= 0) {
    loop.del(fd);
    close(fd);
  }
  udpSock[flow] = -1;
  flows.free(flow);
}

/** Closes every UDP flow and listener (tests, shutdown). */
function udpCloseAll(loop: Loop): void {
  for (let f = 0; f < flows.max; f++) {
    if (udpSock[f]! >= 0 && flows.type[f] === FlowType.UDP) udpFlowClose(loop, f);
  }
  for (const lis of listeners) {
    if (lis.fd < 0) continue;
    loop.del(lis.fd);
    close(lis.fd);
  }
  listeners.length = 0;
  freeListeners.length = 0;
}

/** Returns the number of open UDP flows (tests and statistics). */
export function udpFlowCount(): number {
  let n = 0;
  for (let f = 0; f < flows.max; f++) if (udpSock[f]! >= 0) n++;
  return n;
}
