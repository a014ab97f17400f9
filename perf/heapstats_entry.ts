// SPDX-License-Identifier: GPL-2.0-or-later
// heapstats_entry.ts - entry point of the heap-statistics debug build (perf/heapstats.ts)
//
// Wraps src/main.ts: the loop calls Bun.gc(false) once a second (src/loop/loop.ts); this
// replaces Bun.gc with a version that, every second call, appends one JSON line of
// `heapStats()` (bun:jsc) to $PASTA_HEAPSTATS_DIR/heap-PID.jsonl (default /tmp): heap size and
// capacity, external memory, object count, the top object types (all types every 20th call).
// With PASTA_HEAPSTATS_FULL_EVERY=N, every Nth collection is a full one (Bun.gc(true)).
// The file is opened before main() starts, so the sandbox does not stand in the way.

import { heapStats } from "bun:jsc";
import { openSync, writeSync } from "node:fs";

const dir = process.env.PASTA_HEAPSTATS_DIR ?? "/tmp";
const fd = openSync(`${dir}/heap-${process.pid}.jsonl`, "a");
const fullEvery = Number(process.env.PASTA_HEAPSTATS_FULL_EVERY ?? 0);
const gc = Bun.gc.bind(Bun);
let n = 0;

(Bun as unknown as { gc: (force: boolean) => void }).gc = (force: boolean) => {
  const full = fullEvery > 0 && (n + 1) % fullEvery === 0;
  gc(full || force);
  if (++n % 2 === 0) {
    const h = heapStats();
    const types = Object.entries(h.objectTypeCounts).sort((a, b) => b[1] - a[1]);
    const line = {
      n, t: performance.now() / 1000, full,
      heapSize: h.heapSize, heapCapacity: h.heapCapacity, extra: h.extraMemorySize, objects: h.objectCount,
      types: n % 20 === 0 ? Object.fromEntries(types) : Object.fromEntries(types.slice(0, 3)),
    };
    writeSync(fd, JSON.stringify(line) + "\n");
  }
};

await import("../src/main.ts");
