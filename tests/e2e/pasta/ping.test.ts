// SPDX-License-Identifier: GPL-2.0-or-later
// ping.test.ts - ICMP and ICMPv6 echo from pasta's namespace to the gateway and a remote host

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ADDR, Topology, explain, pastaBinaries, suiteSkipReason } from "../../harness/netns.ts";

const TARGETS = [
  { what: "the remote host 203.0.113.5", argv: ["ping", "-c1", "-W2", ADDR.remote4], from: ADDR.remote4 },
  { what: "the remote host 2001:db8:1::5", argv: ["ping", "-6", "-c1", "-W2", ADDR.remote6], from: ADDR.remote6 },
  { what: "the gateway 198.51.100.1", argv: ["ping", "-c1", "-W2", ADDR.gw4], from: ADDR.gw4 },
  { what: "the gateway 2001:db8::1", argv: ["ping", "-6", "-c1", "-W2", ADDR.gw6], from: ADDR.gw6 },
] as const;

describe.each(pastaBinaries().map((b) => [b.name, b] as const))("pasta ICMP echo (%s)", (_name, bin) => {
  const skip = suiteSkipReason(bin, ["ping"]);
  let topo: Topology;

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
  });
  afterAll(async () => topo?.stop());

  test.skipIf(!!skip).each(TARGETS.map((t) => [t.what, t] as const))("ping from the namespace to %s gets a reply", async (_what, t) => {
    const r = await topo.run([bin.path, "--config-net", "--", ...t.argv], { timeoutMs: 15_000 });
    expect(r.code, explain(`pasta -- ${t.argv.join(" ")}`, r)).toBe(0);
    expect(r.stdout).toMatch(/1 packets transmitted, 1 received/);
    expect(r.stdout).toContain(`from ${t.from}`);
  }, 20_000);

  test.skipIf(!!skip)("ping to an address nobody holds gets no reply", async () => {
    // 203.0.113.77 is routed to the router but not assigned: the echo must not be answered by pasta.
    const r = await topo.run([bin.path, "--config-net", "--", "ping", "-c1", "-W1", "203.0.113.77"], { timeoutMs: 15_000 });
    expect(r.code, explain("pasta -- ping 203.0.113.77", r)).not.toBe(0);
    expect(r.stdout).toMatch(/1 packets transmitted, 0 received/);
  }, 20_000);

  test.skipIf(!!skip)("a ping of 3 echoes gets 3 replies with sequence numbers 1 to 3", async () => {
    const r = await topo.run([bin.path, "--config-net", "--", "ping", "-c3", "-i0.2", "-W2", ADDR.remote4], { timeoutMs: 15_000 });
    expect(r.code, explain("pasta -- ping -c3", r)).toBe(0);
    const seqs = [...r.stdout.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1]));
    expect(seqs).toEqual([1, 2, 3]);
  }, 20_000);
});
