// SPDX-License-Identifier: GPL-2.0-or-later
// harness.test.ts - the topology's own promises that benchmarks rely on (tests/harness/netns.ts)

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Topology, topologyUnavailable } from "../harness/netns.ts";

const skip = topologyUnavailable();
if (skip) console.warn(`[e2e] skipping harness tests: ${skip}`);

describe("Topology.holdNamespace", () => {
  let topo: Topology;

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
  });
  afterAll(async () => topo?.stop());

  // perf/soak.ts keeps a session for longer than spawn()'s default 300 s: the holder must
  // live as long as asked, or the forwarder attached to it loses its namespace mid-run.
  test.skipIf(!!skip)("the holder lives for the timeout given, not spawn()'s default", async () => {
    const short = await topo.holdNamespace(1500);
    const long = await topo.holdNamespace(60_000);
    try {
      expect(short.handle.alive()).toBe(true);
      const r = await short.handle.wait(10_000);
      expect(r.code).toBe(128 + 9); // timeout -s KILL
      expect(long.handle.alive()).toBe(true);
    } finally {
      await short.handle.kill("SIGKILL");
      await long.handle.kill("SIGKILL");
    }
  }, 20_000);
});
