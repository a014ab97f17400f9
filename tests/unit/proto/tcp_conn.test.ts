// SPDX-License-Identifier: GPL-2.0-or-later
// tcp_conn.test.ts - connection state bits, sequence arithmetic and RFC 6528 initial sequence numbers

import { describe, expect, test } from "bun:test";
import {
  CONN_STATE_BITS, TcpConns, TcpEvent, seqAdd, seqDiff, tcpConnFromRef, tcpConnNewGen, tcpConnRef, tcpEventsName, tcpIsnHash,
} from "../../../src/proto/tcp_conn.ts";
import { MAX_INDEX } from "../../../src/loop/loop.ts";
import { flows } from "../../../src/flow/table.ts";

const A = new Uint8Array(16).fill(1);
const B = new Uint8Array(16).fill(2);
const KEY = Uint32Array.of(0x01234567, 0x89abcdef);

describe("sequence arithmetic", () => {
  test("seqAdd() wraps modulo 2^32", () => {
    expect(seqAdd(0xffffffff, 1)).toBe(0);
    expect(seqAdd(0xfffffff0, 0x20)).toBe(0x10);
  });
  test("seqDiff() is signed across the wrap", () => {
    expect(seqDiff(0x10, 0xfffffff0)).toBe(0x20);
    expect(seqDiff(0xfffffff0, 0x10)).toBe(-0x20);
  });
});

describe("events", () => {
  test("test_established_state_bit: setting a state bit replaces every other event", () => {
    const c = new TcpConns(4);
    c.setEvent(1, TcpEvent.TAP_SYN_RCVD);
    c.setEvent(1, TcpEvent.TAP_SYN_ACK_SENT);
    expect(c.has(1, TcpEvent.TAP_SYN_RCVD | TcpEvent.TAP_SYN_ACK_SENT)).toBe(true);
    c.setEvent(1, TcpEvent.ESTABLISHED);
    expect(c.events[1]).toBe(TcpEvent.ESTABLISHED);
    expect(CONN_STATE_BITS & TcpEvent.ESTABLISHED).not.toBe(0);
  });
  test("test_established_fin_events: FIN events accumulate and name themselves", () => {
    const c = new TcpConns(2);
    c.setEvent(0, TcpEvent.ESTABLISHED);
    expect(c.setEvent(0, TcpEvent.TAP_FIN_RCVD)).toBe(true);
    expect(c.setEvent(0, TcpEvent.TAP_FIN_RCVD)).toBe(false);
    c.setEvent(0, TcpEvent.SOCK_FIN_SENT);
    expect(tcpEventsName(c.events[0]!)).toBe("ESTABLISHED|SOCK_FIN_SENT|TAP_FIN_RCVD");
    c.reset(0);
    expect(tcpEventsName(c.events[0]!)).toBe("CLOSED");
    expect(c.sock[0]).toBe(-1);
  });
});

describe("tcpIsnHash()", () => {
  test("is deterministic for one key and connection-id", () => {
    expect(tcpIsnHash(A, 0, 80, B, 0, 40000, KEY)).toBe(tcpIsnHash(A, 0, 80, B, 0, 40000, KEY));
  });
  test("changes with every part of the connection-id and with the key", () => {
    const base = tcpIsnHash(A, 0, 80, B, 0, 40000, KEY);
    const others = [
      tcpIsnHash(A, 0, 81, B, 0, 40000, KEY),
      tcpIsnHash(A, 0, 80, B, 0, 40001, KEY),
      tcpIsnHash(B, 0, 80, A, 0, 40000, KEY),
      tcpIsnHash(A, 0, 80, B, 0, 40000, Uint32Array.of(1, 2)),
    ];
    for (const o of others) expect(o).not.toBe(base);
  });
  test("spreads consecutive ports over the 32-bit space", () => {
    const seen = new Set<number>();
    let high = 0;
    for (let p = 0; p < 1000; p++) {
      const h = tcpIsnHash(A, 0, p, B, 0, 443, KEY);
      seen.add(h);
      if (h >= 0x80000000) high++;
    }
    expect(seen.size).toBe(1000);
    expect(high).toBeGreaterThan(400);
    expect(high).toBeLessThan(600);
  });
});

describe("epoll references", () => {
  test("tcpConnFromRef() returns the entry of a current reference", () => {
    tcpConnNewGen(5);
    expect(tcpConnFromRef(tcpConnRef(5))).toBe(5);
  });
  test("tcpConnFromRef() refuses a reference from before the entry was reused", () => {
    tcpConnNewGen(7);
    const old = tcpConnRef(7);
    tcpConnNewGen(7);
    expect(tcpConnFromRef(old)).toBe(-1);
    expect(tcpConnFromRef(tcpConnRef(7))).toBe(7);
  });
  test("tcpConnRef() fits the loop's 24-bit index through every generation", () => {
    const last = flows.max - 1;
    for (let k = 0; k < 300; k++) {
      tcpConnNewGen(last);
      const ref = tcpConnRef(last);
      expect(ref).toBeLessThanOrEqual(MAX_INDEX);
      expect(tcpConnFromRef(ref)).toBe(last);
    }
  });
});
