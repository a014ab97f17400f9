// SPDX-License-Identifier: GPL-2.0-or-later
// udp.test.ts - UDP through real loopback sockets and a real epoll loop, with a fake tap

import { afterEach, describe, expect, test } from "bun:test";
import { flows } from "../../src/flow/table.ts";
import { Loop, EpollType } from "../../src/loop/mod.ts";
import { udpFlowCount, udpInit, type UdpInit } from "../../src/proto/udp.ts";
import { L3_OFFSET, L4_OFFSET4, L4_OFFSET6, ipv4Frame, ipv6Frame } from "../../src/tap/frame.ts";
import { parseIp } from "../../src/wire/addr.ts";
import { IpProtocol, Ipv4View } from "../../src/wire/ipv4.ts";
import { Ipv6View } from "../../src/wire/ipv6.ts";
import { UdpView } from "../../src/wire/udp.ts";
import {
  AF_INET, AF_INET6, EPOLLIN, MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK,
  bind, close, getsockname, recvfrom, sendto, socket, sockaddrPort, writeSockaddrIn, writeSockaddrIn6,
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
