// SPDX-License-Identifier: GPL-2.0-or-later
// udp.test.ts - UDP through real loopback sockets and a real epoll loop, with a fake tap

import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { flows } from "../../src/flow/table.ts";
import { Loop, EpollType } from "../../src/loop/mod.ts";
import { udpFlowCount, udpInit, type UdpInit } from "../../src/proto/udp.ts";
import { L3_OFFSET, L4_OFFSET4, L4_OFFSET6, ipv4Frame, ipv6Frame, type TapSink } from "../../src/tap/frame.ts";
import { tapFrameMeta } from "../../src/tap/input.ts";
import { completeChecksum } from "../../src/wire/virtio_net.ts";
import { parseIp } from "../../src/wire/addr.ts";
import { IpProtocol, Ipv4View } from "../../src/wire/ipv4.ts";
import { Ipv6View } from "../../src/wire/ipv6.ts";
import { UdpView } from "../../src/wire/udp.ts";
import {
  AF_INET, AF_INET6, EPOLLIN, MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SOL_SOCKET, SOL_UDP, SO_RCVBUF,
  bind, close, getsockname, recv, recvfrom, sendto, setsockoptInt, socket, sockaddrPort, writeSockaddrIn, writeSockaddrIn6,
  type IovecList,
} from "../../syscalls/mod.ts";
import { expectFrame, FakeTap } from "../harness/fake_tap.ts";
import { testCtx } from "../harness/ctx.ts";

const LO4 = parseIp("127.0.0.1")!;
const LO6 = parseIp("::1")!;
const GUEST4 = parseIp("198.51.100.10")!;
const GW4 = parseIp("198.51.100.1")!;
const GUEST6 = parseIp("2001:db8::10")!;
const GW6 = parseIp("fe80::1")!;

const sa = new Uint8Array(128);
const salen = new Uint32Array(1);

/** Returns a bound non-blocking UDP socket on loopback (port 0: any) and its port. */
function udpSocket(v4: boolean, port = 0): { fd: number; port: number } {
  const fd = socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  expect(fd).toBeGreaterThanOrEqual(0);
  const len = v4 ? writeSockaddrIn(sa, LO4, port) : writeSockaddrIn6(sa, LO6, port);
  expect(bind(fd, sa, len)).toBe(0);
  expect(getsockname(fd, sa)).toBeGreaterThan(0);
  return { fd, port: sockaddrPort(sa) };
}

/** Returns a UDP port that was free a moment ago on loopback. */
function freePort(v4: boolean): number {
  const s = udpSocket(v4);
  close(s.fd);
  return s.port;
}

/** Deterministic payload of `n` bytes. */
function payload(n: number, seed: number): Uint8Array {
  const p = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    p[i] = x >>> 24;
  }
  return p;
}

/** Builds a guest frame carrying a UDP datagram and returns the parsed IP view and L4 bytes. */
function guestUdp4(src: Uint8Array, sport: number, dst: Uint8Array, dport: number, data: Uint8Array) {
  const ctx = testCtx();
  const frame = new Uint8Array(L4_OFFSET4 + 8 + data.byteLength);
  frame.set(data, L4_OFFSET4 + 8);
  UdpView.emit(frame, L4_OFFSET4, { srcPort: sport, dstPort: dport, payloadLength: data.byteLength, src, dst });
  ipv4Frame(ctx, frame, src, dst, IpProtocol.UDP, 8 + data.byteLength);
  const ip = Ipv4View.parse(frame.subarray(L3_OFFSET))!;
  return { ip, l4: ip.payload, frame };
}
function guestUdp6(src: Uint8Array, sport: number, dst: Uint8Array, dport: number, data: Uint8Array) {
  const ctx = testCtx();
  const frame = new Uint8Array(L4_OFFSET6 + 8 + data.byteLength);
  frame.set(data, L4_OFFSET6 + 8);
  UdpView.emit(frame, L4_OFFSET6, { srcPort: sport, dstPort: dport, payloadLength: data.byteLength, src, dst });
  ipv6Frame(ctx, frame, src, dst, IpProtocol.UDP, 8 + data.byteLength);
  const ip = Ipv6View.parse(frame.subarray(L3_OFFSET))!;
  return { ip, l4: ip.upperLayerPayload, frame };
}

/** Runs `loop` until `done()` or `maxMs` passed; returns whether done() became true. */
function runUntil(loop: Loop, done: () => boolean, maxMs = 2000): boolean {
  const end = performance.now() + maxMs;
  loop.onTurn(() => {
    if (done() || performance.now() > end) loop.stop();
  });
  if (!done()) loop.run(10);
  loop.onTurn(null);
  return done();
}

/** An echo server on loopback, served by `loop` (type TIMER, unused otherwise in these tests). */
function echoServer(loop: Loop, v4: boolean) {
  const s = udpSocket(v4);
  const buf = new Uint8Array(65536);
  const peerPorts: number[] = [];
  loop.on(EpollType.TIMER, (_i, _e, fd) => {
    for (;;) {
      salen[0] = 128;
      const n = recvfrom(fd, buf, buf.byteLength, MSG_DONTWAIT, sa, salen);
      if (n < 0) return;
      peerPorts.push(sockaddrPort(sa));
      sendto(fd, buf, n, 0, sa, salen[0]!);
    }
  });
  expect(loop.add(s.fd, EPOLLIN, EpollType.TIMER, 0)).toBe(0);
  return { ...s, peerPorts };
}

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.reverse()) c();
  cleanup = [];
});

function setup(argv: string[] = []): { loop: Loop; tap: FakeTap; udp: UdpInit; ctx: ReturnType<typeof testCtx> } {
  const ctx = testCtx({ argv });
  const loop = new Loop();
  const tap = new FakeTap(ctx);
  const udp = udpInit(ctx, loop, tap);
  cleanup.push(() => { udp.close(); loop.close(); });
  return { loop, tap, udp, ctx };
}

describe("UDP guest to host", () => {
  test.each([1200, 60000])("an IPv4 datagram of %d bytes to the gateway reaches host 127.0.0.1 and the reply comes from the gateway", (size) => {
    const { loop, tap, udp, ctx } = setup();
    const echo = echoServer(loop, true);
    cleanup.push(() => close(echo.fd));
    const sport = freePort(true);
    const data = payload(size, size);
    const g = guestUdp4(GUEST4, sport, GW4, echo.port, data);
    udp.udp4(g.ip, g.l4);
    udp.batchEnd();
    expect(runUntil(loop, () => tap.sent.length >= 1)).toBe(true);
    tap.check(`udp4-${size}`, () => {
      const body = expectFrame(tap.sent[0])
        .ipv4({ src: "198.51.100.1", dst: "198.51.100.10", protocol: IpProtocol.UDP })
        .udp({ srcPort: echo.port, dstPort: sport, checksum: "valid" })
        .payload();
      expect(body.byteLength).toBe(size);
      expect(Buffer.from(body).equals(Buffer.from(data))).toBe(true);
    });
    // The guest's source port was kept on the host side.
    expect(echo.peerPorts).toEqual([sport]);
    expect(ctx.stats.dropped()).toBe(0);
  });

  test.each([1200, 60000])("an IPv6 datagram of %d bytes to fe80::1 reaches host ::1 and the reply comes from fe80::1", (size) => {
    const { loop, tap, udp, ctx } = setup();
    const echo = echoServer(loop, false);
    cleanup.push(() => close(echo.fd));
    const sport = freePort(false);
    const data = payload(size, size + 1);
    const g = guestUdp6(GUEST6, sport, GW6, echo.port, data);
    udp.udp6(g.ip, g.l4);
    udp.batchEnd();
    expect(runUntil(loop, () => tap.sent.length >= 1)).toBe(true);
    tap.check(`udp6-${size}`, () => {
      const body = expectFrame(tap.sent[0])
        .ipv6({ src: "fe80::1", dst: "2001:db8::10", nextHeader: IpProtocol.UDP })
        .udp({ srcPort: echo.port, dstPort: sport, checksum: "valid" })
        .payload();
      expect(Buffer.from(body).equals(Buffer.from(data))).toBe(true);
    });
    expect(echo.peerPorts).toEqual([sport]);
    expect(ctx.stats.dropped()).toBe(0);
  });

  test("several datagrams of one flow share a flow and a batch, and arrive in order", () => {
    const { loop, tap, udp } = setup();
    const echo = echoServer(loop, true);
    cleanup.push(() => close(echo.fd));
    const sport = freePort(true);
    const before = udpFlowCount();
    for (let i = 0; i < 5; i++) {
      const g = guestUdp4(GUEST4, sport, GW4, echo.port, payload(100, i));
      udp.udp4(g.ip, g.l4);
    }
    udp.batchEnd();
    expect(udpFlowCount()).toBe(before + 1);
    expect(runUntil(loop, () => tap.sent.length >= 5)).toBe(true);
    for (let i = 0; i < 5; i++) {
      const body = expectFrame(tap.sent[i]).ipv4({ src: "198.51.100.1" }).udp({ checksum: "valid" }).payload();
      expect(Buffer.from(body).equals(Buffer.from(payload(100, i)))).toBe(true);
    }
  });

  test("a datagram with a bad checksum is dropped and counted", () => {
    const { udp, ctx } = setup();
    const g = guestUdp4(GUEST4, 40000, GW4, 9, payload(10, 1));
    g.l4[6]! ^= 0x55;
    const before = udpFlowCount();
    udp.udp4(g.ip, g.l4);
    udp.batchEnd();
    expect(ctx.stats.drops.get("udpChecksum")).toBe(1);
    expect(udpFlowCount()).toBe(before);
  });

  test("a truncated datagram is dropped and counted", () => {
    const { udp, ctx } = setup();
    const g = guestUdp4(GUEST4, 40000, GW4, 9, payload(10, 1));
    udp.udp4(g.ip, g.l4.subarray(0, 12));
    udp.udp4(g.ip, g.l4.subarray(0, 5));
    expect(ctx.stats.drops.get("udpTruncated")).toBe(2);
  });

  test("an expired flow is closed by the flow timer", () => {
    const { loop, tap, udp } = setup();
    const echo = echoServer(loop, true);
    cleanup.push(() => close(echo.fd));
    const g = guestUdp4(GUEST4, freePort(true), GW4, echo.port, payload(10, 3));
    udp.udp4(g.ip, g.l4);
    udp.batchEnd();
    expect(runUntil(loop, () => tap.sent.length >= 1)).toBe(true);
    const open = udpFlowCount();
    // Both directions seen: the stream timeout (120 s) applies, not 30 s.
    flows.runTimers(performance.now() + 60_000);
    expect(udpFlowCount()).toBe(open);
    flows.runTimers(performance.now() + 121_000);
    expect(udpFlowCount()).toBe(open - 1);
  });
});

describe("UDP inbound forwarding (-u)", () => {
  test("a datagram to a forwarded port reaches the guest from the gateway, and the guest's reply reaches the sender", () => {
    const listen = freePort(true);
    const guestPort = 6000;
    const { loop, tap, udp, ctx } = setup(["-u", `${listen}:${guestPort}`]);
    expect(udp.listeners).toBeGreaterThanOrEqual(1);
    const sender = udpSocket(true);
    cleanup.push(() => close(sender.fd));
    const data = payload(1200, 7);
    const salenTo = writeSockaddrIn(sa, LO4, listen);
    expect(sendto(sender.fd, data, data.byteLength, 0, sa, salenTo)).toBe(1200);
    expect(runUntil(loop, () => tap.sent.length >= 1)).toBe(true);
    tap.check("udp-inbound", () => {
      const body = expectFrame(tap.sent[0])
        .ipv4({ src: "198.51.100.1", dst: "198.51.100.10", protocol: IpProtocol.UDP })
        .udp({ srcPort: sender.port, dstPort: guestPort, checksum: "valid" })
        .payload();
      expect(Buffer.from(body).equals(Buffer.from(data))).toBe(true);
    });

    // The guest answers from its port to the address and port it saw.
    const reply = payload(300, 8);
    const g = guestUdp4(GUEST4, guestPort, GW4, sender.port, reply);
    udp.udp4(g.ip, g.l4);
    udp.batchEnd();
    const buf = new Uint8Array(2048);
    let n = -1;
    runUntil(loop, () => {
      if (n >= 0) return true;
      salen[0] = 128;
      n = recvfrom(sender.fd, buf, buf.byteLength, MSG_DONTWAIT, sa, salen);
      return n >= 0;
    });
    expect(ctx.stats.dropped()).toBe(0);
    expect(n).toBe(300);
    expect(Buffer.from(buf.subarray(0, n)).equals(Buffer.from(reply))).toBe(true);
    // From the forwarded port on the host.
    expect(sockaddrPort(sa)).toBe(listen);

    // A second datagram from the same sender uses the same flow.
    const flowsBefore = udpFlowCount();
    expect(sendto(sender.fd, data, 10, 0, sa, writeSockaddrIn(sa, LO4, listen))).toBe(10);
    expect(runUntil(loop, () => tap.sent.length >= 2)).toBe(true);
    expect(udpFlowCount()).toBe(flowsBefore);
    expectFrame(tap.sent[1]).ipv4({ src: "198.51.100.1" }).udp({ srcPort: sender.port, dstPort: guestPort, checksum: "valid" });
  });
});

/** SOL_UDP option UDP_GRO (linux/udp.h): the socket takes segmentation-offload packets whole. */
const UDP_GRO = 104;

/** Returns every datagram waiting on `fd`, as copies. */
function drain(fd: number): Uint8Array[] {
  const buf = new Uint8Array(65536);
  const got: Uint8Array[] = [];
  for (;;) {
    const n = recv(fd, buf, buf.byteLength, MSG_DONTWAIT);
    if (n < 0) return got;
    got.push(buf.slice(0, n));
  }
}

/** A host socket on 127.0.0.1 with a 2 MiB receive buffer; with `gro`, UDP_GRO set. */
function hostReceiver(gro = false): { fd: number; port: number } {
  const s = udpSocket(true);
  expect(setsockoptInt(s.fd, SOL_SOCKET, SO_RCVBUF, 2 << 20)).toBe(0);
  if (gro) expect(setsockoptInt(s.fd, SOL_UDP, UDP_GRO, 1)).toBe(0);
  cleanup.push(() => close(s.fd));
  return s;
}

describe("UDP segmentation offload, guest to host", () => {
  /** Sends `datagrams` from the guest to 127.0.0.1:port through the gateway in one tap batch. */
  function fromGuest(udp: UdpInit, port: number, datagrams: Uint8Array[]): void {
    const sport = freePort(true);
    for (const d of datagrams) {
      const g = guestUdp4(GUEST4, sport, GW4, port, d);
      udp.udp4(g.ip, g.l4);
    }
    udp.batchEnd();
  }

  const RUN = [...Array.from({ length: 10 }, (_, i) => payload(1000, i)), payload(300, 99)];

  test("a run of datagrams of one size and a last shorter one arrives as the same datagrams", () => {
    const { udp, ctx } = setup();
    const rx = hostReceiver();
    fromGuest(udp, rx.port, RUN);
    expect(drain(rx.fd)).toEqual(RUN);
    expect(ctx.stats.dropped()).toBe(0);
  });

  test("such a run goes to the host's kernel in one UDP_SEGMENT send: a UDP_GRO socket gets it whole", () => {
    const { udp } = setup();
    const rx = hostReceiver(true);
    fromGuest(udp, rx.port, RUN);
    const got = drain(rx.fd);
    expect(got.map((d) => d.byteLength)).toEqual([10 * 1000 + 300]);
    expect(got[0]).toEqual(Uint8Array.from(RUN.flatMap((d) => [...d])));
  });

  test("datagrams of different sizes are not joined where a longer one follows a shorter one", () => {
    const { udp } = setup();
    const rx = hostReceiver(true);
    const mixed = [payload(500, 1), payload(1000, 2), payload(1000, 3), payload(0, 4), payload(1000, 5)];
    fromGuest(udp, rx.port, mixed);
    // 500 alone; 1000 + 1000 together; the empty one alone; 1000 alone.
    expect(drain(rx.fd).map((d) => d.byteLength)).toEqual([500, 2000, 0, 1000]);
  });

  /** Hands udp.ts one guest USO frame: `data` to be cut into datagrams of `gsoSize` bytes. */
  function usoFromGuest(udp: UdpInit, port: number, data: Uint8Array, gsoSize: number, sport = freePort(true)): void {
    const g = guestUdp4(GUEST4, sport, GW4, port, data);
    tapFrameMeta.l4ChecksumOk = true;
    tapFrameMeta.udpGsoSize = gsoSize;
    try {
      udp.udp4(g.ip, g.l4);
    } finally {
      tapFrameMeta.l4ChecksumOk = false;
      tapFrameMeta.udpGsoSize = 0;
    }
    udp.batchEnd();
  }

  test("a USO frame from the guest reaches the host as separate datagrams of gso_size bytes, the last one shorter", () => {
    const { udp, ctx } = setup();
    const rx = hostReceiver();
    const data = payload(3 * 1200 + 500, 7);
    usoFromGuest(udp, rx.port, data, 1200);
    const got = drain(rx.fd);
    expect(got.map((d) => d.byteLength)).toEqual([1200, 1200, 1200, 500]);
    expect(got).toEqual([0, 1200, 2400, 3600].map((o) => data.slice(o, o + 1200)));
    expect(ctx.stats.dropped()).toBe(0);
  });

  test("where the host's kernel refuses UDP_SEGMENT (more datagrams than it cuts), the datagrams go one by one", () => {
    const { udp, ctx } = setup();
    const rx = hostReceiver();
    // 150 datagrams: above the kernel's UDP_MAX_SEGMENTS (64, or 128 since Linux 6.11).
    const data = payload(150 * 100, 8);
    const sport = freePort(true);
    usoFromGuest(udp, rx.port, data, 100, sport);
    const got = drain(rx.fd);
    expect(got.length).toBe(150);
    expect(got).toEqual(Array.from({ length: 150 }, (_, i) => data.slice(i * 100, i * 100 + 100)));
    expect(ctx.stats.dropped()).toBe(0);
    // The flow goes on one by one: a later frame reaches the socket, now with UDP_GRO, in pieces.
    expect(setsockoptInt(rx.fd, SOL_UDP, UDP_GRO, 1)).toBe(0);
    usoFromGuest(udp, rx.port, data.subarray(0, 300), 100, sport);
    expect(drain(rx.fd).map((d) => d.byteLength)).toEqual([100, 100, 100]);
  });
});

/** A sink with USO, as pasta's tap on Linux 6.2+: keeps each frame whole, tail included, with its gsoSize. */
class UsoSink implements TapSink {
  readonly tso = true;
  readonly uso = true;
  readonly frames: { bytes: Uint8Array; gsoSize: number }[] = [];
  send(frame: Uint8Array, gsoSize = 0, tail: IovecList | null = null): boolean {
    const bytes = new Uint8Array(frame.byteLength + (tail?.bytes ?? 0));
    bytes.set(frame);
    tail?.copyTo(bytes, frame.byteLength);
    this.frames.push({ bytes, gsoSize });
    return true;
  }
}

describe("UDP segmentation offload, host to guest", () => {
  test("datagrams queued on a flow socket reach the guest in USO frames that cut back into the same datagrams", () => {
    const ctx = testCtx();
    const loop = new Loop();
    const sink = new UsoSink();
    const udp = udpInit(ctx, loop, sink);
    cleanup.push(() => { udp.close(); loop.close(); });
    // The guest opens the flow to a host socket; that socket then answers with a burst.
    const host = hostReceiver();
    const sport = freePort(true);
    const g = guestUdp4(GUEST4, sport, GW4, host.port, payload(10, 1));
    udp.udp4(g.ip, g.l4);
    udp.batchEnd();
    salen[0] = 128;
    expect(recvfrom(host.fd, new Uint8Array(64), 64, 0, sa, salen)).toBe(10);
    const burst = [
      ...Array.from({ length: 5 }, (_, i) => payload(1000, 10 + i)), payload(300, 20),
      payload(1000, 21), payload(1000, 22), payload(0, 23), payload(1400, 24),
    ];
    for (const d of burst) expect(sendto(host.fd, d, d.byteLength, 0, sa, salen[0]!)).toBe(d.byteLength);
    const datagrams = () => sink.frames.reduce((n, f) => n + Math.max(1, Math.ceil((f.bytes.byteLength - L4_OFFSET4 - 8) / (f.gsoSize || Infinity))), 0);
    expect(runUntil(loop, () => datagrams() >= burst.length)).toBe(true);

    // Five of 1000 and the 300 after them share a frame; the two of 1000 another; the empty
    // datagram and the 1400 after it (longer) are alone.
    expect(sink.frames.map((f) => [f.bytes.byteLength - L4_OFFSET4 - 8, f.gsoSize])).toEqual([[5300, 1000], [2000, 1000], [0, 0], [1400, 1400]]);
    const cut: Uint8Array[] = [];
    for (const f of sink.frames) {
      const ip = Ipv4View.parse(f.bytes.subarray(L3_OFFSET))!;
      expect(ip.totalLength).toBe(f.bytes.byteLength - L3_OFFSET);
      const udpView = UdpView.parse(ip.payload)!;
      expect(udpView.length).toBe(ip.payload.byteLength);
      // The partial checksum, completed over the whole frame, is that of the whole datagram.
      if (f.gsoSize > 0) expect(completeChecksum(f.bytes, L4_OFFSET4, 6)).toBe(true);
      expect(udpView.verifyChecksum(ip.srcAddr, ip.dstAddr)).toBe(true);
      const body = udpView.payload;
      if (f.gsoSize === 0) cut.push(body.slice());
      for (let o = 0; o < body.byteLength && f.gsoSize > 0; o += f.gsoSize) cut.push(body.slice(o, o + f.gsoSize));
    }
    expect(cut).toEqual(burst);
    expect(ctx.stats.dropped()).toBe(0);
  });
});

describe("UDP flow socket buffers", () => {
  const rmemMax = Number(readFileSync("/proc/sys/net/core/rmem_max", "utf8"));
  // The kernel caps SO_RCVBUF at rmem_max: below 2 MiB here the test would prove nothing.
  test.skipIf(rmemMax < 2 << 20)("a burst of 1 MiB queued on a flow socket before we read reaches the guest whole", () => {
    const ctx = testCtx();
    const loop = new Loop();
    const sink = new UsoSink();
    const udp = udpInit(ctx, loop, sink);
    cleanup.push(() => { udp.close(); loop.close(); });
    const host = hostReceiver();
    const g = guestUdp4(GUEST4, freePort(true), GW4, host.port, payload(10, 1));
    udp.udp4(g.ip, g.l4);
    udp.batchEnd();
    salen[0] = 128;
    expect(recvfrom(host.fd, new Uint8Array(64), 64, 0, sa, salen)).toBe(10);
    // 750 datagrams of 1400 bytes: about 1.6 MiB of buffer with their overhead, eight times the
    // default receive buffer (212992 bytes).
    const d = payload(1400, 2);
    for (let i = 0; i < 750; i++) expect(sendto(host.fd, d, d.byteLength, 0, sa, salen[0]!)).toBe(1400);
    const datagrams = () => sink.frames.reduce((n, f) => n + Math.ceil((f.bytes.byteLength - L4_OFFSET4 - 8) / f.gsoSize), 0);
    runUntil(loop, () => datagrams() >= 750, 3000);
    expect(datagrams()).toBe(750);
  });
});
