// SPDX-License-Identifier: GPL-2.0-or-later
// table.test.ts - the flow table: allocation, sides, hashed lookup, timers

import { describe, expect, test } from "bun:test";
import {
  FlowState, FlowTable, FlowType, FLOW_MAX, FLOW_TIMER_INTERVAL_MS, INISIDE, Pif, TGTSIDE,
  flowProto, sidxFlow, sidxOf, sidxSide,
} from "../../../src/flow/table.ts";
import { inanyFrom4, inanyFrom6 } from "../../../src/inany.ts";
import { IpProtocol } from "../../../src/wire/ipv4.ts";

const KEY = Uint32Array.of(1, 2, 3, 4);

function v4(a: number, b: number, c: number, d: number): Uint8Array {
  return inanyFrom4(Uint8Array.of(a, b, c, d), new Uint8Array(16));
}
function v6(last: number): Uint8Array {
  const a = new Uint8Array(16);
  a[0] = 0x20; a[1] = 0x01; a[2] = 0x0d; a[3] = 0xb8; a[15] = last;
  return inanyFrom6(a, new Uint8Array(16));
}

/** Allocates a UDP flow guest:sport -> dst:dport with both sides hashed. */
function udpFlow(t: FlowTable, guest: Uint8Array, sport: number, dst: Uint8Array, dport: number): number {
  const f = t.alloc();
  t.setSide(f, INISIDE, Pif.TAP, guest, sport, dst, dport);
  t.setSide(f, TGTSIDE, Pif.HOST, dst, dport, v4(0, 0, 0, 0), sport);
  t.setType(f, FlowType.UDP);
  t.hashInsert(sidxOf(f, INISIDE));
  t.hashInsert(sidxOf(f, TGTSIDE));
  t.activate(f);
  return f;
}

describe("FlowTable", () => {
  test("the default size holds at least 65,536 flows", () => {
    expect(FLOW_MAX).toBeGreaterThanOrEqual(65536);
  });

  test("alloc() hands out every index once and returns -1 when full", () => {
    const t = new FlowTable(256, KEY);
    const seen = new Set<number>();
    for (let i = 0; i < 256; i++) {
      const f = t.alloc();
      expect(f).toBeGreaterThanOrEqual(0);
      expect(f).toBeLessThan(256);
      expect(t.state[f]).toBe(FlowState.NEW);
      seen.add(f);
    }
    expect(seen.size).toBe(256);
    expect(t.count).toBe(256);
    expect(t.alloc()).toBe(-1);
    t.free(77);
    expect(t.count).toBe(255);
    expect(t.alloc()).toBe(77);
    expect(t.alloc()).toBe(-1);
  });

  test("alloc() starts from the lowest index", () => {
    const t = new FlowTable(64, KEY);
    expect(t.alloc()).toBe(0);
    expect(t.alloc()).toBe(1);
  });

  test("free() of a free flow throws (a bug)", () => {
    const t = new FlowTable(32, KEY);
    const f = t.alloc();
    t.free(f);
    expect(() => t.free(f)).toThrow(RangeError);
  });

  test("setSide() moves NEW to INI to TGT and setType() to TYPED", () => {
    const t = new FlowTable(32, KEY);
    const f = t.alloc();
    t.setSide(f, INISIDE, Pif.TAP, v4(198, 51, 100, 10), 1000, v4(198, 51, 100, 1), 53);
    expect(t.state[f]).toBe(FlowState.INI);
    t.setSide(f, TGTSIDE, Pif.HOST, v4(127, 0, 0, 1), 53, v4(0, 0, 0, 0), 1000);
    expect(t.state[f]).toBe(FlowState.TGT);
    t.setType(f, FlowType.UDP);
    expect(t.state[f]).toBe(FlowState.TYPED);
    expect(t.proto[f]).toBe(IpProtocol.UDP);
    t.activate(f);
    expect(t.state[f]).toBe(FlowState.ACTIVE);
    expect(t.pif[sidxOf(f, TGTSIDE)]).toBe(Pif.HOST);
    expect(t.eport[sidxOf(f, TGTSIDE)]).toBe(53);
    const out = new Uint8Array(16);
    t.copyEaddr(sidxOf(f, TGTSIDE), out);
    expect(Array.from(out)).toEqual(Array.from(v4(127, 0, 0, 1)));
    t.copyOaddr(sidxOf(f, INISIDE), out);
    expect(Array.from(out)).toEqual(Array.from(v4(198, 51, 100, 1)));
  });

  test("sidx helpers pack flow and side", () => {
    expect(sidxOf(5, TGTSIDE)).toBe(11);
    expect(sidxFlow(11)).toBe(5);
    expect(sidxSide(11)).toBe(TGTSIDE);
    expect(flowProto(FlowType.PING6)).toBe(IpProtocol.ICMPV6);
    expect(flowProto(FlowType.TCP_SPLICE)).toBe(IpProtocol.TCP);
  });

  test("lookup() finds each hashed side and nothing else", () => {
    const t = new FlowTable(64, KEY);
    const guest = v4(198, 51, 100, 10), gw = v4(198, 51, 100, 1);
    const f = udpFlow(t, guest, 40000, gw, 53);
    expect(t.lookup(IpProtocol.UDP, Pif.TAP, guest, 40000, gw, 53)).toBe(sidxOf(f, INISIDE));
    expect(t.lookup(IpProtocol.UDP, Pif.HOST, gw, 53, v4(0, 0, 0, 0), 40000)).toBe(sidxOf(f, TGTSIDE));
    // Any field different: no match.
    expect(t.lookup(IpProtocol.TCP, Pif.TAP, guest, 40000, gw, 53)).toBe(-1);
    expect(t.lookup(IpProtocol.UDP, Pif.HOST, guest, 40000, gw, 53)).toBe(-1);
    expect(t.lookup(IpProtocol.UDP, Pif.TAP, guest, 40001, gw, 53)).toBe(-1);
    expect(t.lookup(IpProtocol.UDP, Pif.TAP, guest, 40000, gw, 54)).toBe(-1);
    expect(t.lookup(IpProtocol.UDP, Pif.TAP, v4(198, 51, 100, 11), 40000, gw, 53)).toBe(-1);
    expect(t.lookup(IpProtocol.UDP, Pif.TAP, guest, 40000, v4(198, 51, 100, 2), 53)).toBe(-1);
  });

  test("lookup() reads addresses at the given offsets", () => {
    const t = new FlowTable(32, KEY);
    const guest = v6(10), peer = v6(99);
    const f = udpFlow(t, guest, 1, peer, 2);
    const packed = new Uint8Array(40);
    packed.set(guest, 3);
    packed.set(peer, 21);
    expect(t.lookup(IpProtocol.UDP, Pif.TAP, packed, 1, packed, 2, 3, 21)).toBe(sidxOf(f, INISIDE));
  });

  test("lookup() still finds the others after removals (backward-shift deletion)", () => {
    const t = new FlowTable(4096, KEY);
    const gw = v4(198, 51, 100, 1);
    const ids: number[] = [];
    for (let i = 0; i < 3000; i++) ids.push(udpFlow(t, v4(198, 51, 100, 10), 1024 + i, gw, 53));
    // Remove every third flow.
    for (let i = 0; i < 3000; i += 3) t.free(ids[i]!);
    for (let i = 0; i < 3000; i++) {
      const found = t.lookup(IpProtocol.UDP, Pif.TAP, v4(198, 51, 100, 10), 1024 + i, gw, 53);
      expect(found).toBe(i % 3 === 0 ? -1 : sidxOf(ids[i]!, INISIDE));
    }
    expect(t.count).toBe(2000);
  });

  test("hashRemove() unhashes one side and free() the rest", () => {
    const t = new FlowTable(32, KEY);
    const guest = v4(198, 51, 100, 10), gw = v4(198, 51, 100, 1);
    const f = udpFlow(t, guest, 5, gw, 6);
    t.hashRemove(sidxOf(f, INISIDE));
    expect(t.isHashed(sidxOf(f, INISIDE))).toBe(false);
    expect(t.lookup(IpProtocol.UDP, Pif.TAP, guest, 5, gw, 6)).toBe(-1);
    expect(t.lookup(IpProtocol.UDP, Pif.HOST, gw, 6, v4(0, 0, 0, 0), 5)).toBe(sidxOf(f, TGTSIDE));
    t.free(f);
    expect(t.lookup(IpProtocol.UDP, Pif.HOST, gw, 6, v4(0, 0, 0, 0), 5)).toBe(-1);
  });

  test("hashInsert() refuses an untyped flow and a side hashed twice", () => {
    const t = new FlowTable(32, KEY);
    const f = t.alloc();
    expect(() => t.hashInsert(sidxOf(f, INISIDE))).toThrow(RangeError);
    t.setType(f, FlowType.PING4);
    t.hashInsert(sidxOf(f, INISIDE));
    expect(() => t.hashInsert(sidxOf(f, INISIDE))).toThrow(RangeError);
  });

  test("a full table of 65,536 flows stays reachable by lookup", () => {
    const t = new FlowTable(65536, KEY);
    const gw = v4(198, 51, 100, 1);
    for (let i = 0; i < 65536; i++) {
      const f = t.alloc();
      t.setSide(f, INISIDE, Pif.TAP, v4(198, 51, 100, 10 + (i >> 16)), i & 0xffff, gw, 7);
      t.setType(f, FlowType.UDP);
      t.hashInsert(sidxOf(f, INISIDE));
    }
    expect(t.alloc()).toBe(-1);
    for (let i = 0; i < 65536; i += 997) {
      expect(sidxFlow(t.lookup(IpProtocol.UDP, Pif.TAP, v4(198, 51, 100, 10), i, gw, 7))).toBe(i);
    }
  });

  test("expire() calls back only flows whose deadline passed", () => {
    const t = new FlowTable(128, KEY);
    const a = t.alloc(), b = t.alloc(), c = t.alloc();
    for (let i = 0; i < 40; i++) t.alloc(); // c + 40 crosses a bitmap word
    const d = t.alloc();
    t.deadlineMs[a] = 100;
    t.deadlineMs[b] = 300;
    t.deadlineMs[c] = 0;
    t.deadlineMs[d] = 150;
    const got: number[] = [];
    expect(t.expire(200, (f) => got.push(f))).toBe(2);
    expect(got).toEqual([a, d]);
  });

  test("expire() skips freed flows and lets the callback free", () => {
    const t = new FlowTable(64, KEY);
    const a = t.alloc(), b = t.alloc();
    t.deadlineMs[a] = 1;
    t.deadlineMs[b] = 1;
    t.free(a);
    const got: number[] = [];
    t.expire(10, (f) => { got.push(f); t.free(f); });
    expect(got).toEqual([b]);
    expect(t.count).toBe(0);
    expect(t.expire(10, () => { throw new Error("nothing left"); })).toBe(0);
  });

  test("runTimers() dispatches by type at most once per interval", () => {
    const t = new FlowTable(32, KEY);
    const u = t.alloc(), p = t.alloc();
    t.setType(u, FlowType.UDP);
    t.setType(p, FlowType.PING4);
    t.deadlineMs[u] = 5;
    t.deadlineMs[p] = 5;
    const udp: number[] = [];
    t.onExpire(FlowType.UDP, (f) => { udp.push(f); t.deadlineMs[f] = 0; });
    expect(t.runTimers(10)).toBe(2);
    expect(udp).toEqual([u]);
    // PING4 had no handler: its deadline was cleared.
    expect(t.deadlineMs[p]).toBe(0);
    t.deadlineMs[u] = 20;
    expect(t.runTimers(10 + FLOW_TIMER_INTERVAL_MS - 1)).toBe(0);
    expect(t.runTimers(10 + FLOW_TIMER_INTERVAL_MS)).toBe(1);
  });

  test("the constructor refuses sizes that are not multiples of 32", () => {
    expect(() => new FlowTable(100)).toThrow(RangeError);
    expect(() => new FlowTable(0)).toThrow(RangeError);
  });
});
