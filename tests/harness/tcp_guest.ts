// SPDX-License-Identifier: GPL-2.0-or-later
// tcp_guest.ts - a scripted guest TCP peer, a fake tap, and non-blocking host sockets for in-process TCP tests
//
// The guest side: FakeTap collects the frames src/proto/tcp.ts sends (copies,
// since the sender reuses its buffers), optionally dropping some; GuestStack
// parses them (checking every checksum), hands each to the TcpGuest it belongs
// to, and feeds the guests' segments back through tcp4()/tcp6(), calling
// tcpBatchEnd() after each round, as tap/input.ts does for a batch.
//
// A TcpGuest is a deliberately simple TCP: it keeps the in-order stream it
// received (out-of-order segments are dropped and answered with a duplicate
// ACK), sends its data within the peer's window in MSS-sized segments and,
// when nothing is acknowledged for RETRANSMIT_MS, goes back to the first
// unacknowledged byte (go-back-N). That is enough to show that the translator
// delivers every byte exactly once, in order, and recovers from a loss.
//
// The host side: HostSock wraps a non-blocking socket registered in the same
// Loop (everything runs on one thread: Bun's own event loop does not run
// while the Loop blocks), accumulating what it receives and writing a queued
// buffer as the socket takes it.

import { createHash } from "node:crypto";
import {
  accept4, bind, close, connect, getsockname, listen, recv, send, setsockopt, setsockoptInt, shutdown, socket,
  writeSockaddrIn, writeSockaddrIn6, arena, errnoName, Errno,
  AF_INET, AF_INET6, EPOLLIN, EPOLLOUT, EPOLLRDHUP, MSG_DONTWAIT, MSG_NOSIGNAL, SHUT_WR, SOCK_CLOEXEC, SOCK_NONBLOCK,
  SOCK_STREAM, SOL_SOCKET, SO_LINGER, SO_REUSEADDR,
} from "../../syscalls/mod.ts";
import { Stats, type Ctx, type Ip4Ctx, type Ip6Ctx } from "../../src/ctx.ts";
import { parseArgs } from "../../src/conf.ts";
import type { Loop } from "../../src/loop/loop.ts";
import { ipv4Frame, ipv6Frame, L4_OFFSET4, L4_OFFSET6, type TapSink } from "../../src/tap/frame.ts";
import { completeChecksum } from "../../src/wire/virtio_net.ts";
import { tcp4, tcp6, tcpBatchEnd } from "../../src/proto/tcp.ts";
import { IpProtocol, Ipv4View } from "../../src/wire/ipv4.ts";
import { Ipv6View } from "../../src/wire/ipv6.ts";
import { TcpFlag, TcpOptions, TcpView, type TcpFields } from "../../src/wire/tcp.ts";

/** Guest-side addresses of the test context. */
export const GUEST4 = Uint8Array.of(203, 0, 113, 5);
export const GW4 = Uint8Array.of(198, 51, 100, 1);
export const GUEST6 = Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5);
export const GUEST6_LL = Uint8Array.of(0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5);
export const GW6 = Uint8Array.of(0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);

/** Returns a context as pasta would build it: guest 203.0.113.5 / 2001:db8::5, gateway (= map-host-loopback) 198.51.100.1 / fe80::1. */
export function makeTcpCtx(argv: string[] = [], mtu = 65520): Ctx {
  const ip4: Ip4Ctx = {
    addr: GUEST4, prefixLen: 24, gw: GW4, addrSeen: GUEST4.slice(), mapHostLoopback: GW4, mapGuestAddr: null,
    ourTapAddr: GW4, dns: [], dnsMatch: null, dnsHost: null, ifindex: 1,
  };
  const ip6: Ip6Ctx = {
    addr: GUEST6, prefixLen: 64, gw: GW6, addrSeen: GUEST6.slice(), addrLlSeen: GUEST6_LL.slice(),
    ourTapLl: GW6, mapHostLoopback: GW6, mapGuestAddr: null, dns: [], dnsMatch: null, dnsHost: null, ifindex: 1,
  };
  return {
    conf: parseArgs("pasta", argv), mode: "pasta", ourMac: Uint8Array.of(0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55),
    guestMac: Uint8Array.of(2, 0, 0, 0, 0, 1), ip4, ip6, mtu, search: [], hostname: null, fqdn: null, stats: new Stats(),
  };
}

/** A TapSink that keeps copies of the frames sent, and can drop frames chosen by a predicate. */
export class FakeTap implements TapSink {
  readonly queue: Uint8Array[] = [];
  /** Frames dropped by `dropIf`. */
  dropped = 0;
  /** Every frame sent, dropped or not. */
  sent = 0;
  /** Called for each frame: return true to lose it. */
  dropIf: ((frame: Uint8Array) => boolean) | null = null;

  /**
   * Set before tcpInit() to act as pasta's tap with offload: a frame sent with a gsoSize
   * carries the pseudo-header sum in its checksum field, which send() records and then
   * completes, as the kernel would (frames are not cut: the guest takes them whole).
   */
  tso = false;
  /** The gsoSize of each frame sent, in order. */
  readonly gsoSizes: number[] = [];
  /** The TCP checksum field of each frame sent with a gsoSize, before send() completed it. */
  readonly partialSums: number[] = [];

  send(frame: Uint8Array, gsoSize = 0): boolean {
    this.sent++;
    this.gsoSizes.push(gsoSize);
    if (this.dropIf !== null && this.dropIf(frame)) {
      this.dropped++;
      return true;
    }
    const copy = frame.slice();
    if (gsoSize > 0) {
      if (!this.tso) throw new Error("FakeTap: a frame with a gsoSize, but the tap has no offload");
      const l4 = copy[12] === 0x86 ? L4_OFFSET6 : L4_OFFSET4;
      this.partialSums.push((copy[l4 + 16]! << 8) | copy[l4 + 17]!);
      completeChecksum(copy, l4, 16);
    }
    this.queue.push(copy);
    return true;
  }
}

/** A parsed frame from the translator, as the guest sees it. */
export interface GuestSegment {
  v6: boolean;
  src: Uint8Array;
  dst: Uint8Array;
  tcp: TcpView;
}

/**
 * Returns the TCP segment in an Ethernet frame, or null if it holds none.
 * Counts a bad TCP checksum in `stats.badChecksum` (tests expect none).
 */
export function parseFrame(frame: Uint8Array, stats: { badChecksum: number }): GuestSegment | null {
  const etherType = (frame[12]! << 8) | frame[13]!;
  if (etherType === 0x0800) {
    const ip = Ipv4View.parse(frame.subarray(14));
    if (ip === null || ip.protocol !== IpProtocol.TCP) return null;
    const l4 = frame.subarray(14 + ip.headerLength, 14 + ip.totalLength);
    const tcp = TcpView.parse(l4);
    if (tcp === null) return null;
    if (!tcp.verifyChecksum(ip.srcAddr, ip.dstAddr)) stats.badChecksum++;
    return { v6: false, src: ip.srcAddr.slice(), dst: ip.dstAddr.slice(), tcp };
  }
  if (etherType === 0x86dd) {
    const ip = Ipv6View.parse(frame.subarray(14));
    if (ip === null || ip.nextHeader !== IpProtocol.TCP) return null;
    const l4 = frame.subarray(14 + 40, 14 + 40 + ip.payloadLength);
    const tcp = TcpView.parse(l4);
    if (tcp === null) return null;
    if (!tcp.verifyChecksum(ip.srcAddr, ip.dstAddr)) stats.badChecksum++;
    return { v6: true, src: ip.srcAddr.slice(), dst: ip.dstAddr.slice(), tcp };
  }
  return null;
}

/** Go-back-N timeout of the scripted guest. */
export const RETRANSMIT_MS = 300;

function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}
function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** Options for a TcpGuest. */
export interface TcpGuestOptions {
  /** MSS we announce. Default 1460. */
  mss?: number;
  /** Window scale we announce; null for none. Default 7. */
  ws?: number | null;
  /** Window we advertise, unscaled. Default 65535. */
  window?: number;
  /** Send as if the peer's window had no end (a guest racing a shrinking window). Default false. */
  ignoreWindow?: boolean;
}

/** One guest TCP endpoint: active (connect()) or passive (created on a SYN to a listening port). */
export class TcpGuest {
  /** Bytes received in order. */
  readonly received: Uint8Array[] = [];
  receivedBytes = 0;
  /** Times a byte arrived that had been received already (must stay 0 after the handshake). */
  duplicateBytes = 0;
  /** Segments that arrived out of order (dropped, answered with a duplicate ACK). */
  outOfOrder = 0;
  synAckReceived = false;
  established = false;
  finReceived = false;
  /** Sequence number of the first FIN seen from the peer, to check it never moves. */
  finSeq = -1;
  rstReceived = false;
  /** Data received after the FIN (must never happen). */
  dataAfterFin = 0;
  /** Peer's MSS from its SYN or SYN-ACK. */
  peerMss = 536;
  peerWs = 0;
  peerWnd = 0;
  private iss: number;
  private irs = 0;
  /** Next byte we expect from the peer. */
  rcvNxt = 0;
  private sndUna: number;
  private sndNxt: number;
  private out: Uint8Array = new Uint8Array(0);
  private finWanted = false;
  private finSent = false;
  finAcked = false;
  private needAck = false;
  private lastProgressMs = performance.now();
  private readonly mss: number;
  private readonly ws: number | null;
  /** Window we advertise from now on, unscaled; changing it sends no window update by itself. */
  window: number;
  private readonly ignoreWindow: boolean;

  constructor(
    private readonly stack: GuestStack,
    readonly v6: boolean,
    readonly peerAddr: Uint8Array,
    readonly port: number,
    readonly peerPort: number,
    o: TcpGuestOptions = {},
    /** Our own address in this connection (4 or 16 bytes). */
    readonly localAddr: Uint8Array = v6 ? stack.ctx.ip6!.addr : stack.ctx.ip4!.addr,
  ) {
    this.mss = o.mss ?? 1460;
    this.ws = o.ws === undefined ? 7 : o.ws;
    this.window = o.window ?? 65535;
    this.ignoreWindow = o.ignoreWindow ?? false;
    this.iss = (Math.random() * 0xffffffff) >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
  }

  /** Returns all bytes received, concatenated. */
  data(): Uint8Array {
    const out = new Uint8Array(this.receivedBytes);
    let at = 0;
    for (const c of this.received) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }

  /** Sends our SYN (active open). */
  connect(): void {
    this.emit(TcpFlag.SYN, this.iss, 0, true);
    this.sndNxt = seqAdd(this.iss, 1);
  }

  /** Queues `data` to send (after anything queued before). */
  write(data: Uint8Array): void {
    const merged = new Uint8Array(this.out.byteLength + data.byteLength);
    merged.set(this.out);
    merged.set(data, this.out.byteLength);
    this.out = merged;
  }

  /** Sends FIN once all queued data is sent. */
  close(): void {
    this.finWanted = true;
  }

  /** Sends RST now. */
  reset(): void {
    this.emit(TcpFlag.RST | TcpFlag.ACK, this.sndNxt, this.rcvNxt, false);
  }

  /** Next sequence number we send. */
  get sendNext(): number {
    return this.sndNxt;
  }

  /** True when everything we queued (and our FIN, if any) was acknowledged. */
  get allAcked(): boolean {
    return seqDiff(this.sndUna, seqAdd(this.iss, 1 + this.out.byteLength + (this.finWanted ? 1 : 0))) === 0;
  }

  /** Handles one segment of this connection from the translator. */
  input(s: GuestSegment): void {
    const t = s.tcp;
    if (t.rst) {
      this.rstReceived = true;
      return;
    }
    if (t.syn) {
      const o = new TcpOptions();
      t.readOptions(o);
      this.peerMss = o.mss ?? 536;
      this.peerWs = o.windowScale !== null && this.ws !== null ? o.windowScale : 0;
      this.irs = t.seqNumber;
      this.rcvNxt = seqAdd(t.seqNumber, 1);
      this.peerWnd = t.window;
      if (t.ack) {
        // SYN-ACK to our SYN
        this.synAckReceived = true;
        this.sndUna = t.ackNumber;
        this.established = true;
        this.emit(TcpFlag.ACK, this.sndNxt, this.rcvNxt, false);
      } else {
        // SYN to a listening port: answer SYN-ACK
        this.emit(TcpFlag.SYN | TcpFlag.ACK, this.iss, this.rcvNxt, true);
        this.sndNxt = seqAdd(this.iss, 1);
      }
      return;
    }
    if (t.ack) {
      if (!this.established && t.ackNumber === this.sndNxt) this.established = true;
      if (seqDiff(t.ackNumber, this.sndUna) > 0 && seqDiff(t.ackNumber, this.sndNxt) <= 0) {
        this.sndUna = t.ackNumber;
        this.lastProgressMs = performance.now();
        if (this.finSent && t.ackNumber === this.sndNxt) this.finAcked = true;
      }
      this.peerWnd = t.window * 2 ** this.peerWs;
    }
    const len = t.payload.byteLength;
    if (len === 0 && !t.fin && seqDiff(t.seqNumber, this.rcvNxt) < 0) {
      // Not acceptable (RFC 9293 3.10.7.4), e.g. a window probe: answer with an ACK.
      this.needAck = true;
      return;
    }
    if (len > 0 || t.fin) {
      const off = seqDiff(this.rcvNxt, t.seqNumber);
      if (off < 0) {
        this.outOfOrder++;
        this.emit(TcpFlag.ACK, this.sndNxt, this.rcvNxt, false); // duplicate ACK
        return;
      }
      if (this.finReceived && len > 0) this.dataAfterFin++;
      if (off > 0) this.duplicateBytes += Math.min(off, len);
      if (off < len) {
        const fresh = t.payload.slice(off);
        this.received.push(fresh);
        this.receivedBytes += fresh.byteLength;
        this.rcvNxt = seqAdd(this.rcvNxt, fresh.byteLength);
      }
      if (t.fin && seqDiff(this.rcvNxt, seqAdd(t.seqNumber, len)) === 0 && !this.finReceived) {
        this.finReceived = true;
        this.finSeq = seqAdd(t.seqNumber, len);
        this.rcvNxt = seqAdd(this.rcvNxt, 1);
      }
      this.needAck = true;
    }
  }

  /** Sends what the window allows, the FIN, a pending ACK, and retransmits after RETRANSMIT_MS without progress. */
  pump(): void {
    if (!this.established) return;
    const base = seqAdd(this.iss, 1);
    const outstanding = seqDiff(this.sndNxt, this.sndUna);
    if (outstanding > 0 && performance.now() - this.lastProgressMs > RETRANSMIT_MS) {
      this.sndNxt = this.sndUna; // go back N
      if (this.finSent && !this.finAcked) this.finSent = false;
      this.lastProgressMs = performance.now();
    }
    for (;;) {
      const off = seqDiff(this.sndNxt, base);
      if (off >= this.out.byteLength) break;
      const room = this.ignoreWindow ? Infinity : this.peerWnd - seqDiff(this.sndNxt, this.sndUna);
      const len = Math.min(this.peerMss, this.out.byteLength - off, room);
      if (len <= 0) break;
      this.emit(TcpFlag.ACK | TcpFlag.PSH, this.sndNxt, this.rcvNxt, false, this.out.subarray(off, off + len));
      this.sndNxt = seqAdd(this.sndNxt, len);
      this.needAck = false;
    }
    if (this.finWanted && !this.finSent && seqDiff(this.sndNxt, base) === this.out.byteLength) {
      this.emit(TcpFlag.FIN | TcpFlag.ACK, this.sndNxt, this.rcvNxt, false);
      this.sndNxt = seqAdd(this.sndNxt, 1);
      this.finSent = true;
      this.needAck = false;
    }
    if (this.needAck) {
      this.emit(TcpFlag.ACK, this.sndNxt, this.rcvNxt, false);
      this.needAck = false;
    }
  }

  /** Sends a raw segment with arbitrary fields (tests of odd input). */
  emitRaw(flags: number, seq: number, ack: number, payload?: Uint8Array, corruptChecksum = false): void {
    this.emit(flags, seq, ack, false, payload, corruptChecksum);
  }

  private emit(flags: number, seq: number, ack: number, syn: boolean, payload?: Uint8Array, corrupt = false): void {
    this.stack.transmit(this, flags, seq, ack, syn ? this.mss : undefined, syn && this.ws !== null ? this.ws : undefined, this.window, payload, corrupt);
  }
}

/** The guest: its TCP endpoints, the fake tap between it and the translator. */
export class GuestStack {
  readonly tap = new FakeTap();
  readonly guests: TcpGuest[] = [];
  /** Ports that accept SYNs (passive opens), with the options of the guests they create. */
  readonly listening = new Map<number, TcpGuestOptions>();
  readonly stats = { badChecksum: 0, unmatched: 0, rstUnmatched: 0 };
  private readonly frame = new Uint8Array(70000);
  private readonly ipv4 = new Ipv4View();
  private readonly ipv6 = new Ipv6View();
  private nextPort = 40000 + Math.floor(Math.random() * 20000);

  constructor(readonly ctx: Ctx) {}

  /** Returns a new guest endpoint connecting to `peer` (4 or 16 bytes) port `peerPort`; call connect(). */
  open(peer: Uint8Array, peerPort: number, o: TcpGuestOptions = {}): TcpGuest {
    const g = new TcpGuest(this, peer.byteLength === 16, peer, this.nextPort++, peerPort, o);
    this.guests.push(g);
    return g;
  }

  /** Builds a segment from guest `g` and hands it to tcp4()/tcp6(). */
  transmit(
    g: TcpGuest, flags: number, seq: number, ack: number, mss: number | undefined, ws: number | undefined,
    window: number, payload: Uint8Array | undefined, corrupt: boolean,
  ): boolean {
    const l4off = g.v6 ? L4_OFFSET6 : L4_OFFSET4;
    const plen = payload?.byteLength ?? 0;
    const fields: TcpFields = { srcPort: g.port, dstPort: g.peerPort, seqNumber: seq, ackNumber: ack, flags, window };
    if (mss !== undefined) fields.mss = mss;
    if (ws !== undefined) fields.windowScale = ws;
    const hlen = TcpView.headerLengthFor(fields);
    if (payload) this.frame.set(payload, l4off + hlen);
    fields.payloadLength = plen;
    const src = g.localAddr;
    fields.src = src;
    fields.dst = g.peerAddr;
    TcpView.emit(this.frame, l4off, fields);
    if (corrupt) this.frame[l4off + 16]! ^= 0x5a;
    const total = g.v6
      ? ipv6Frame(this.ctx, this.frame, src, g.peerAddr, IpProtocol.TCP, hlen + plen)
      : ipv4Frame(this.ctx, this.frame, src, g.peerAddr, IpProtocol.TCP, hlen + plen);
    const l4 = this.frame.subarray(l4off, total);
    return g.v6
      ? tcp6(this.ipv6.wrap(this.frame.subarray(14, total))!, l4)
      : tcp4(this.ipv4.wrap(this.frame.subarray(14, total))!, l4);
  }

  /**
   * Delivers every queued frame to its guest endpoint, lets every endpoint
   * send, ends the batch, and repeats until no frame is left.
   */
  drain(): void {
    for (let round = 0; round < 1000; round++) {
      const frames = this.tap.queue.splice(0);
      for (const f of frames) this.deliver(f);
      for (const g of this.guests) g.pump();
      tcpBatchEnd();
      if (this.tap.queue.length === 0) return;
    }
  }

  private deliver(frame: Uint8Array): void {
    const s = parseFrame(frame, this.stats);
    if (s === null) return;
    const t = s.tcp;
    let g = this.guests.find((x) => x.port === t.dstPort && x.peerPort === t.srcPort && x.v6 === s.v6);
    if (g === undefined) {
      const o = this.listening.get(t.dstPort);
      if (t.syn && !t.ack && o !== undefined) {
        g = new TcpGuest(this, s.v6, s.src, t.dstPort, t.srcPort, o, s.dst);
        this.guests.push(g);
      } else {
        if (t.rst) this.stats.rstUnmatched++;
        this.stats.unmatched++;
        return;
      }
    }
    g.input(s);
  }
}

// Host side ------------------------------------------------------------------------

const SA = arena(28, 8);
const RX = arena(1 << 20, 16);
const lingerZero = arena(8, 4);
lingerZero[0] = 1;

/** A connected non-blocking host socket driven by the test Loop. */
export class HostSock {
  readonly hash = createHash("sha256");
  receivedBytes = 0;
  /** The last bytes received (up to 64 KiB), for small checks. */
  tail = new Uint8Array(0);
  eof = false;
  /** Negative errno of a failed recv/send (-ECONNRESET...), 0 if none. */
  error = 0;
  private out: Uint8Array = new Uint8Array(0);
  private outOff = 0;
  private closeAfterSend = false;
  closed = false;

  constructor(readonly loop: Loop, readonly fd: number, readonly type: number, readonly index: number) {
    loop.add(fd, EPOLLIN | EPOLLRDHUP, type, index);
  }

  /** Queues `data` and, if `thenClose`, closes once it is all written. */
  write(data: Uint8Array, thenClose = false): void {
    this.out = data;
    this.outOff = 0;
    this.closeAfterSend = thenClose;
    this.flush();
  }

  /** Closes with SO_LINGER 0: the peer sees RST. */
  abort(): void {
    setsockopt(this.fd, SOL_SOCKET, SO_LINGER, lingerZero, 8);
    this.close();
  }

  /** Sends our FIN (write shutdown). */
  shutdownWrite(): void {
    shutdown(this.fd, SHUT_WR);
  }

  close(): void {
    if (this.closed) return;
    this.loop.del(this.fd);
    close(this.fd);
    this.closed = true;
  }

  private flush(): void {
    while (this.outOff < this.out.byteLength) {
      const n = send(this.fd, this.out.subarray(this.outOff), this.out.byteLength - this.outOff, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n === -Errno.EAGAIN) {
        this.loop.mod(this.fd, EPOLLIN | EPOLLRDHUP | EPOLLOUT, this.type, this.index);
        return;
      }
      if (n < 0) {
        this.error = n;
        return;
      }
      this.outOff += n;
    }
    if (!this.closed) this.loop.mod(this.fd, EPOLLIN | EPOLLRDHUP, this.type, this.index);
    if (this.closeAfterSend) this.close();
  }

  /** Loop handler body. */
  handle(events: number): void {
    if (this.closed) return;
    if (events & EPOLLOUT) this.flush();
    if (this.closed) return;
    for (;;) {
      const n = recv(this.fd, RX, RX.byteLength, MSG_DONTWAIT);
      if (n === -Errno.EAGAIN) break;
      if (n < 0) {
        this.error = n;
        this.loop.del(this.fd);
        break;
      }
      if (n === 0) {
        this.eof = true;
        this.loop.mod(this.fd, 0, this.type, this.index);
        break;
      }
      const chunk = RX.subarray(0, n);
      this.hash.update(chunk);
      this.receivedBytes += n;
      const keep = Math.min(65536, this.tail.byteLength + n);
      const t = new Uint8Array(keep);
      const fromOld = keep - n > 0 ? keep - n : 0;
      t.set(this.tail.subarray(this.tail.byteLength - fromOld), 0);
      t.set(n > keep ? chunk.subarray(n - keep) : chunk, fromOld);
      this.tail = t;
    }
  }
}

/** Returns a non-blocking listening socket on loopback (127.0.0.1 or ::1) and its port. */
export function listenLoopback(v6: boolean, port = 0): { fd: number; port: number } {
  const fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`socket: ${errnoName(fd)}`);
  setsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  const addr = v6 ? Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1) : Uint8Array.of(127, 0, 0, 1);
  const len = v6 ? writeSockaddrIn6(SA, addr, port) : writeSockaddrIn(SA, addr, port);
  let r = bind(fd, SA, len);
  if (r === 0) r = listen(fd, 16);
  if (r < 0) throw new Error(`bind/listen: ${errnoName(r)}`);
  getsockname(fd, SA);
  return { fd, port: (SA[2]! << 8) | SA[3]! };
}

/** Returns an unused TCP port on loopback (bound then closed). */
export function freePort(v6: boolean): number {
  const l = listenLoopback(v6);
  close(l.fd);
  return l.port;
}

/** Accepts one connection on `lfd`, or returns -errno (-EAGAIN if none is pending). */
export function acceptOne(lfd: number): number {
  return accept4(lfd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

/** Starts a non-blocking connect to loopback port `port`; returns the socket. */
export function connectLoopback(v6: boolean, port: number): number {
  const fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const addr = v6 ? Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1) : Uint8Array.of(127, 0, 0, 1);
  const len = v6 ? writeSockaddrIn6(SA, addr, port) : writeSockaddrIn(SA, addr, port);
  const r = connect(fd, SA, len);
  if (r < 0 && r !== -Errno.EINPROGRESS) throw new Error(`connect: ${errnoName(r)}`);
  return fd;
}

/**
 * Runs `loop` until `done()` holds (returns true) or `timeoutMs` passes
 * (returns false). After every epoll wait, the guest stack drains its frames
 * and `tick` (if any) runs.
 */
export function runUntil(loop: Loop, stack: GuestStack, done: () => boolean, timeoutMs: number, tick?: () => void): boolean {
  const deadline = performance.now() + timeoutMs;
  let ok = false;
  loop.onTurn(() => {
    stack.drain();
    tick?.();
    stack.drain();
    if (done()) {
      ok = true;
      loop.stop(0);
    } else if (performance.now() > deadline) {
      loop.stop(1);
    }
  });
  stack.drain();
  if (done()) return true;
  loop.run(10);
  loop.onTurn(null);
  return ok;
}
