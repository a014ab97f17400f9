// SPDX-License-Identifier: GPL-2.0-or-later
// offload.test.ts - TCP segmentation and checksum offload on pasta's tap, at MTU 1500
//
// Ours only: no upstream pasta opens its tap with IFF_VNET_HDR. At MTU 1500 the namespace's
// TCP hands pasta frames of up to 64 KiB (TSO) with partial checksums, and pasta sends it frames
// of up to 64 KiB that the tap cuts into 1500-byte segments. The test moves data both ways,
// over IPv4 and IPv6, checks it by sha256, and reads pasta's --pcap with tshark: there must be
// TCP frames larger than the MTU in both directions (without the offload there are none), and
// every one of them must carry a correct checksum (the capture completes partial checksums).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ADDR, Topology, explain, pastaBinaries, suiteSkipReason, type SpawnHandle } from "../../harness/netns.ts";
import { L4 } from "./_l4.ts";

const PORT = 9150;
const BYTES = 16 << 20;
const MTU = 1500;
/** Largest Ethernet frame at MTU 1500. */
const MTU_FRAME = MTU + 14;

const TARGETS = [
  { what: "IPv4, host 127.0.0.1 through the gateway", addr: ADDR.gw4, ns: "host", listen: "127.0.0.1" },
  { what: "IPv6, the router's 2001:db8:1::5", addr: ADDR.remote6, ns: "router", listen: ADDR.remote6 },
] as const;

describe.each(pastaBinaries().filter((b) => !b.upstream2023).map((b) => [b.name, b] as const))(
  "pasta TCP offload on the tap (%s)",
  (_name, bin) => {
    const skip = suiteSkipReason(bin, ["tshark"]);
    let topo: Topology;
    let l4: L4;
    const servers: SpawnHandle[] = [];

    beforeAll(async () => {
      if (skip) return;
      topo = await Topology.start();
      l4 = await L4.setup(topo, BYTES);
      for (const t of TARGETS) servers.push(await l4.tcpServer(t.ns, t.listen, PORT));
    }, 60_000);
    afterAll(async () => topo?.stop());

    test.skipIf(!!skip).each(TARGETS.map((t) => [t.what, t] as const))(
      "%s at MTU 1500: 16 MiB each way arrive intact in frames of up to 64 KiB, checksums complete in the capture",
      async (_what, t) => {
        const pcap = join(topo.dir, `offload-${t.addr.includes(":") ? 6 : 4}.pcap`);
        const { run, results } = await l4.clientInPasta(bin, [
          { op: "put", addr: t.addr, port: PORT, n: BYTES },
          { op: "get", addr: t.addr, port: PORT, n: BYTES },
        ], { args: ["-m", String(MTU), "--pcap", pcap] });
        expect(run.code, explain("pasta", run)).toBe(0);
        expect(results[0], explain("upload", run)).toMatchObject({ bytes: BYTES, sha256: l4.sha(BYTES) });
        expect(results[1], explain("download", run)).toMatchObject({ bytes: BYTES, sha256: l4.sha(BYTES) });

        const v6 = t.addr.includes(":");
        const src = v6 ? "ipv6.src" : "ip.src";
        const shark = await topo.run(
          ["tshark", "-r", pcap, "-o", "tcp.check_checksum:TRUE", "-Y", `tcp && frame.len > ${MTU_FRAME}`,
            "-T", "fields", "-e", src, "-e", "frame.len", "-e", "tcp.checksum.status"],
          { user: "root", timeoutMs: 60_000 },
        );
        expect(shark.code, explain("tshark", shark)).toBe(0);
        const rows = shark.stdout.trim().split("\n").filter(Boolean).map((l) => l.split("\t"));
        const up = rows.filter((r) => r[0] !== t.addr);
        const down = rows.filter((r) => r[0] === t.addr);
        // Without the offload no frame exceeds the MTU; with it, most data frames do.
        expect(up.length, "frames above the MTU from the namespace").toBeGreaterThan(BYTES / 65536 / 4);
        expect(down.length, "frames above the MTU to the namespace").toBeGreaterThan(BYTES / 65536 / 4);
        expect(Math.max(...rows.map((r) => Number(r[1])))).toBeLessThanOrEqual(65535 + 14);
        // tcp.checksum.status: 1 good, 0 bad, 2 not verified.
        expect(rows.filter((r) => r[2] !== "1").slice(0, 5), "frames whose checksum is not good").toEqual([]);
      },
      120_000,
    );
  },
);
