// SPDX-License-Identifier: GPL-2.0-or-later
// tcp_iperf3.test.ts - iperf3 through pasta in both directions; throughput printed, never asserted
//
// `iperf3 -s` listens on the host's 127.0.0.1; the client runs in pasta's namespace against the
// gateway address 198.51.100.1 (map-host-loopback), once sending (-c) and once receiving (-R),
// for ITERATION_S seconds each. The test asserts only that both runs complete with a
// throughput above zero; the Gbit/s of each binary are printed side by side at the end.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ADDR, Topology, explain, pastaBinaries, suiteSkipReason, waitUntil } from "../../harness/netns.ts";

const PORT = 5201;
const ITERATION_S = 3;
const SEP = "@@@";

/** Gbit/s per binary name: namespace to host (upload) and host to namespace (download, -R). */
const measured = new Map<string, { up: number; down: number }>();

afterAll(() => {
  if (measured.size === 0) return;
  const rows = [...measured].map(([name, r]) => `  ${name.padEnd(8)} ${r.up.toFixed(2).padStart(8)} ${r.down.toFixed(2).padStart(8)}`);
  console.log(`[iperf3] Gbit/s, ${ITERATION_S} s each, namespace client to the host's 127.0.0.1 via ${ADDR.gw4}\n  binary       up     down (-R)\n${rows.join("\n")}`);
});

/** Returns the receiver's Gbit/s from `iperf3 -J` output, or NaN if it is not there. */
function gbits(json: string): number {
  try {
    return JSON.parse(json).end.sum_received.bits_per_second / 1e9;
  } catch {
    return NaN;
  }
}

describe.each(pastaBinaries().map((b) => [b.name, b] as const))("pasta iperf3 (%s)", (name, bin) => {
  const skip = suiteSkipReason(bin, ["iperf3", "ss"]);
  let topo: Topology;

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
    topo.spawn(["iperf3", "-s", "-B", "127.0.0.1", "-p", String(PORT)], { user: "root", timeoutMs: 600_000 });
    const up = await waitUntil(() => topo.run(["ss", "-Hltn", `sport = :${PORT}`], { user: "root" }), (r) => r.stdout.includes(`:${PORT}`));
    if (!up.stdout.includes(`:${PORT}`)) throw new Error(explain("iperf3 -s did not listen", up));
  }, 30_000);
  afterAll(async () => topo?.stop());

  test.skipIf(!!skip)(`iperf3 from the namespace to ${ADDR.gw4} completes in both directions`, async () => {
    const client = (reverse: string) => `iperf3 -c ${ADDR.gw4} -p ${PORT} -t ${ITERATION_S} -J ${reverse}`;
    const r = await topo.run([bin.path, "--config-net", "--", "sh", "-c", `${client("")}; echo ${SEP}; ${client("-R")}`], { timeoutMs: 60_000 });
    expect(r.code, explain("pasta -- iperf3", r)).toBe(0);
    const [upJson, downJson] = r.stdout.split(SEP);
    const up = gbits(upJson ?? ""), down = gbits(downJson ?? "");
    expect(up, explain("iperf3 upload", r)).toBeGreaterThan(0);
    expect(down, explain("iperf3 -R download", r)).toBeGreaterThan(0);
    measured.set(name, { up, down });
    console.log(`[${name}] iperf3: up ${up.toFixed(2)} Gbit/s, down (-R) ${down.toFixed(2)} Gbit/s`);
  }, 60_000);
});
