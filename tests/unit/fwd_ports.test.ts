// SPDX-License-Identifier: GPL-2.0-or-later
// fwd_ports.test.ts - PortSet, the sparse port set of automatic forwarding

import { describe, expect, test } from "bun:test";
import { TEST_SEED } from "../harness/setup.ts";
import { PORT_COUNT, PortSet } from "../../src/fwd_ports.ts";

/** The members in list order (not sorted): what a walk over the set sees. */
function listed(s: PortSet): number[] {
  return Array.from(s.list.subarray(0, s.count));
}

describe("PortSet", () => {
  test("add() lists each port once, in the order added, and has() finds them", () => {
    const s = new PortSet();
    for (const p of [8080, 22, 0, 65535, 22]) s.add(p);
    expect(s.count).toBe(4);
    expect(listed(s)).toEqual([8080, 22, 0, 65535]);
    expect([s.has(0), s.has(22), s.has(8080), s.has(65535)]).toEqual([true, true, true, true]);
    expect([s.has(1), s.has(23), s.has(65534)]).toEqual([false, false, false]);
  });

  test("clear() empties the set without resetting the index, and stale entries are not members", () => {
    const s = new PortSet();
    s.add(5);
    s.add(6);
    s.clear();
    expect(s.count).toBe(0);
    expect([s.has(5), s.has(6)]).toEqual([false, false]);
    // 6 now sits at list[0], where the stale index of 5 still points.
    s.add(6);
    expect([s.has(5), s.has(6)]).toEqual([false, true]);
    expect(listed(s)).toEqual([6]);
  });

  test("delete() moves the last member into the hole, and a deleted port can come back", () => {
    const s = new PortSet();
    for (const p of [10, 20, 30, 40]) s.add(p);
    s.delete(20);
    expect(listed(s)).toEqual([10, 40, 30]);
    expect(s.has(20)).toBe(false);
    s.delete(20); // absent: no-op
    s.delete(30); // the last one
    expect(listed(s)).toEqual([10, 40]);
    s.add(20);
    expect(listed(s)).toEqual([10, 40, 20]);
    expect([s.has(10), s.has(20), s.has(30), s.has(40)]).toEqual([true, true, false, true]);
  });

  test("a set over [first, last] takes only that range: has() is false outside, add() throws RangeError", () => {
    const s = new PortSet(1000, 1009);
    s.add(1000);
    s.add(1009);
    expect(s.toArray()).toEqual([1000, 1009]);
    expect([s.has(999), s.has(1010), s.has(0), s.has(-1), s.has(70000)]).toEqual([false, false, false, false, false]);
    expect(() => s.add(999)).toThrow(RangeError);
    expect(() => s.add(1010)).toThrow(RangeError);
    expect(() => new PortSet(10, 9)).toThrow(RangeError);
    expect(() => new PortSet(0, PORT_COUNT)).toThrow(RangeError);
    expect(() => new PortSet(-1, 10)).toThrow(RangeError);
  });

  test("addAll(), deleteAll() and deleteMarked() combine sets", () => {
    const a = new PortSet(), b = new PortSet();
    for (const p of [1, 2, 3, 4]) a.add(p);
    for (const p of [3, 4, 5]) b.add(p);
    a.addAll(b);
    expect(a.toArray()).toEqual([1, 2, 3, 4, 5]);
    const c = new PortSet();
    c.add(2);
    c.add(5);
    a.deleteAll(c);
    expect(a.toArray()).toEqual([1, 3, 4]);
    expect([a.has(2), a.has(5)]).toEqual([false, false]);
    const marked = new Uint8Array(PORT_COUNT).fill(1, 3, 4);
    a.deleteMarked(marked);
    expect(a.toArray()).toEqual([1, 4]);
    a.add(3); // the index stays right after compaction
    expect([a.has(1), a.has(3), a.has(4)]).toEqual([true, true, true]);
  });

  test("sort() orders the list ascending and keeps every member findable", () => {
    const s = new PortSet(100, 200);
    for (const p of [150, 101, 200, 100, 120]) s.add(p);
    s.sort();
    expect(listed(s)).toEqual([100, 101, 120, 150, 200]);
    s.delete(101);
    expect(s.toArray()).toEqual([100, 120, 150, 200]);
    for (const p of [100, 120, 150, 200]) expect(s.has(p)).toBe(true);
  });

  test(`PortSet agrees with a Set through 20000 random operations (seed ${TEST_SEED})`, () => {
    const s = new PortSet(), ref = new Set<number>();
    let x = TEST_SEED;
    const next = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
    for (let i = 0; i < 20000; i++) {
      const port = next() % 64; // a small range, so that ports come back often
      const op = next() % 16;
      if (op < 8) {
        s.add(port);
        ref.add(port);
      } else if (op < 14) {
        s.delete(port);
        ref.delete(port);
      } else if (op < 15) {
        s.sort();
      } else {
        s.clear();
        ref.clear();
      }
      expect(s.has(port)).toBe(ref.has(port));
      expect(s.count).toBe(ref.size);
    }
    expect(s.toArray()).toEqual([...ref].sort((a, b) => a - b));
  });
});
