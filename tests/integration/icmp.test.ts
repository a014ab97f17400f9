// SPDX-License-Identifier: GPL-2.0-or-later
// icmp.test.ts - ICMP echo through real ping sockets, in a private network namespace
//
// Ping sockets need the process's group in net.ipv4.ping_group_range, which
// defaults to "1 0" (nobody). So the echo tests re-run this file inside
// `unshare -n` (root only), where the range is set to "0 0" for that namespace
// alone, the way pasta sets it in the namespaces it creates.

import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { Loop } from "../../src/loop/mod.ts";
import { icmpFlowCount, icmpInit } from "../../src/proto/icmp.ts";
import { flows } from "../../src/flow/table.ts";
import { L3_OFFSET, L4_OFFSET4, L4_OFFSET6, ipv4Frame, ipv6Frame } from "../../src/tap/frame.ts";
import { parseIp } from "../../src/wire/addr.ts";
import { IcmpType, IcmpView } from "../../src/wire/icmp.ts";
import { Icmpv6Type, Icmpv6View } from "../../src/wire/icmpv6.ts";
import { IpProtocol, Ipv4View } from "../../src/wire/ipv4.ts";
import { Ipv6View } from "../../src/wire/ipv6.ts";
import { expectFrame, FakeTap } from "../harness/fake_tap.ts";
import { testCtx } from "../harness/ctx.ts";

const IN_CHILD = process.env.ICMP_NETNS_CHILD === "1";
const GUEST4 = parseIp("198.51.100.10")!;
const GW4 = parseIp("198.51.100.1")!;
const GUEST6 = parseIp("2001:db8::10")!;
const GW6 = parseIp("fe80::1")!;
const DATA = new TextEncoder().encode("passt-ts echo payload 0123456789");

function setRange(range: string): void {
  writeFileSync("/proc/sys/net/ipv4/ping_group_range", range);
}

function echo4(id: number, seq: number) {
  const frame = new Uint8Array(L4_OFFSET4 + 8 + DATA.byteLength);
  frame.set(DATA, L4_OFFSET4 + 8);
  IcmpView.emitEcho(frame, L4_OFFSET4, { type: IcmpType.ECHO_REQUEST, identifier: id, sequenceNumber: seq, payloadLength: DATA.byteLength });
  ipv4Frame(testCtx(), frame, GUEST4, GW4, IpProtocol.ICMP, 8 + DATA.byteLength);
  const ip = Ipv4View.parse(frame.subarray(L3_OFFSET))!;
  return { ip, l4: ip.payload };
}
function echo6(id: number, seq: number) {
  const frame = new Uint8Array(L4_OFFSET6 + 8 + DATA.byteLength);
  frame.set(DATA, L4_OFFSET6 + 8);
  Icmpv6View.emitEcho(frame, L4_OFFSET6, {
    type: Icmpv6Type.ECHO_REQUEST, identifier: id, sequenceNumber: seq, src: GUEST6, dst: GW6, payloadLength: DATA.byteLength,
  });
  ipv6Frame(testCtx(), frame, GUEST6, GW6, IpProtocol.ICMPV6, 8 + DATA.byteLength);
  const ip = Ipv6View.parse(frame.subarray(L3_OFFSET))!;
  return { ip, l4: ip.upperLayerPayload };
}

function runUntil(loop: Loop, done: () => boolean, maxMs = 2000): boolean {
  const end = performance.now() + maxMs;
  loop.onTurn(() => {
    if (done() || performance.now() > end) loop.stop();
  });
  if (!done()) loop.run(10);
  loop.onTurn(null);
  return done();
}

describe.skipIf(IN_CHILD)("ICMP (parent)", () => {
  const canUnshare = process.getuid?.() === 0 && Bun.which("unshare") !== null && Bun.which("ip") !== null;
  test.skipIf(!canUnshare)("the echo tests pass inside a private network namespace", () => {
    const r = Bun.spawnSync({
      cmd: ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" test "$1"', process.execPath, import.meta.path],
      env: { ...process.env, ICMP_NETNS_CHILD: "1" },
      stdout: "pipe", stderr: "pipe",
    });
    const out = r.stdout.toString() + r.stderr.toString();
    if (r.exitCode !== 0) console.error(out);
    expect(r.exitCode).toBe(0);
    expect(out).toMatch(/ 5 pass/);
    expect(out).toMatch(/ 0 fail/);
  }, 30_000);
});

describe.skipIf(!IN_CHILD)("ICMP echo (in a private namespace)", () => {
  test("a ping to the gateway is answered from the gateway with the guest's id and sequence", () => {
    setRange("0 0");
    const ctx = testCtx();
    const loop = new Loop();
    const tap = new FakeTap(ctx);
    const h = icmpInit(ctx, loop, tap);
    const e = echo4(0x1234, 7);
    h.icmp4(e.ip, e.l4);
    expect(runUntil(loop, () => tap.sent.length >= 1)).toBe(true);
    const body = expectFrame(tap.sent[0])
      .ipv4({ src: "198.51.100.1", dst: "198.51.100.10", protocol: IpProtocol.ICMP })
      .icmp({ type: IcmpType.ECHO_REPLY, identifier: 0x1234, sequence: 7 })
      .payload();
    expect(Buffer.from(body.subarray(8)).equals(Buffer.from(DATA))).toBe(true);
    expect(ctx.stats.dropped()).toBe(0);
  });

  test("a second ping with the same id uses the same flow and socket", () => {
    setRange("0 0");
    const ctx = testCtx();
    const loop = new Loop();
    const tap = new FakeTap(ctx);
    const h = icmpInit(ctx, loop, tap);
    const e1 = echo4(0x4321, 1);
    h.icmp4(e1.ip, e1.l4);
    const open = icmpFlowCount();
    const e2 = echo4(0x4321, 2);
    h.icmp4(e2.ip, e2.l4);
    expect(icmpFlowCount()).toBe(open);
    expect(runUntil(loop, () => tap.sent.length >= 2)).toBe(true);
    expectFrame(tap.sent[1]).ipv4({ src: "198.51.100.1" }).icmp({ identifier: 0x4321, sequence: 2 });
  });

  test("an IPv6 ping to fe80::1 reaches ::1 and is answered from fe80::1", () => {
    setRange("0 0");
    const ctx = testCtx();
    const loop = new Loop();
    const tap = new FakeTap(ctx);
    const h = icmpInit(ctx, loop, tap);
    const e = echo6(0xbeef, 9);
    h.icmp6(e.ip, e.l4);
    expect(runUntil(loop, () => tap.sent.length >= 1)).toBe(true);
    const checker = expectFrame(tap.sent[0]).ipv6({ src: "fe80::1", dst: "2001:db8::10", nextHeader: IpProtocol.ICMPV6 });
    checker.icmpv6({ type: Icmpv6Type.ECHO_REPLY });
    const l4 = Ipv6View.parse(tap.sent[0]!.subarray(L3_OFFSET))!.upperLayerPayload;
    const icmp = Icmpv6View.parse(l4)!;
    expect(icmp.identifier).toBe(0xbeef);
    expect(icmp.sequenceNumber).toBe(9);
    expect(icmp.verifyChecksum(GW6, GUEST6)).toBe(true);
  });

  test("an idle ping flow is closed after 60 s", () => {
    setRange("0 0");
    const ctx = testCtx();
    const loop = new Loop();
    const tap = new FakeTap(ctx);
    const h = icmpInit(ctx, loop, tap);
    const e = echo4(0x7777, 1);
    h.icmp4(e.ip, e.l4);
    const open = icmpFlowCount();
    expect(open).toBeGreaterThan(0);
    flows.runTimers(performance.now() + 30_000);
    expect(icmpFlowCount()).toBe(open);
    flows.runTimers(performance.now() + 61_000);
    expect(icmpFlowCount()).toBe(0);
  });

  test("when ping_group_range forbids ping sockets, requests are dropped and counted", () => {
    setRange("1 0");
    const ctx = testCtx();
    const loop = new Loop();
    const tap = new FakeTap(ctx);
    const h = icmpInit(ctx, loop, tap);
    const e = echo4(0x5555, 1);
    h.icmp4(e.ip, e.l4);
    h.icmp4(e.ip, e.l4);
    expect(ctx.stats.drops.get("icmpPingDenied")).toBe(2);
    runUntil(loop, () => false, 50);
    expect(tap.sent.length).toBe(0);
  });
});
