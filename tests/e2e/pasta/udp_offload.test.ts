// SPDX-License-Identifier: GPL-2.0-or-later
// udp_offload.test.ts - datagram boundaries through pasta's UDP segmentation offload (USO), both ways
//
// Ours offers USO on its tap (Linux 6.2+): to the namespace it writes one frame for a run of
// datagrams of one flow, and the namespace's kernel must cut it back into the very datagrams the
// host sent; from the namespace it may get such frames (an application using UDP_SEGMENT) and
// must send the host separate datagrams, and it passes runs on to host sockets with
// UDP_SEGMENT itself, falling back to one datagram per send where the kernel refuses that.
// Whatever the offloads, an application must see exactly the datagrams the other end sent:
//
//   host -> namespace   a client in pasta's namespace asks a server on the host (through the
//                       gateway) or on the router for a burst: groups of datagrams of one size,
//                       each group sent at once with UDP_SEGMENT so that they queue together on
//                       pasta's socket, with shorter, empty, 1-byte and 9000-byte datagrams between.
//                       The client reports length and sha256 of every datagram, in order.
//   namespace -> host   a client in the namespace sends n bytes in one sendto() with UDP_SEGMENT;
//                       the server reports the datagrams it got. To the router over IPv6 the
//                       datagrams (2000 bytes) exceed the host's 1500-byte route: pasta's own
//                       UDP_SEGMENT send fails there and it must fall back to single datagrams,
//                       which the host's kernel fragments.
//
// Both pastas run these (Debian's has no offloads: the same datagrams must arrive). For ours,
// pasta's --pcap shows that the offload took place: UDP frames carrying more than one datagram
// in each direction (without USO there are none), every checksum good once the capture
// completes the partial ones.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ADDR, Topology, explain, pastaBinaries, suiteSkipReason } from "../../harness/netns.ts";
import { L4 } from "./_l4.ts";

const PORT_BURST = 9160;
const PORT_RECORD = 9161;
/** Groups of the burst, "size:count"; the largest single datagram is 9000 bytes. */
const GROUPS = ["1400:30", "600:1", "0:1", "1:1", "3000:4", "100:40", "9000:2", "2999:1"];
const LARGEST_DATAGRAM = 9000;

const TARGETS = [
  { what: "host 127.0.0.1 through the gateway 198.51.100.1", addr: ADDR.gw4, ns: "host", listen: "127.0.0.1", in2023: true },
  { what: "the router's 2001:db8:1::5", addr: ADDR.remote6, ns: "router", listen: ADDR.remote6, in2023: true },
] as const;

/** UDP_SEGMENT sends from the namespace: segment size and bytes, per target. */
const GSO_SENDS = [
  { size: 1200, n: 1200 * 10 + 500 },
  // Larger than the host's 1500-byte route to the router: pasta cannot pass UDP_SEGMENT on.
  { size: 2000, n: 2000 * 11 + 500 },
] as const;

describe.each(pastaBinaries().map((b) => [b.name, b] as const))("pasta UDP segmentation offload (%s)", (_name, bin) => {
  const skip = suiteSkipReason(bin, bin.upstream2023 ? [] : ["tshark"]);
  let topo: Topology;
  let l4: L4;

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
    l4 = await L4.setup(topo, 1 << 20);
    for (const t of TARGETS) {
      await l4.udpServer("udp-burst", t.ns, t.listen, PORT_BURST);
      await l4.udpServer("udp-record", t.ns, t.listen, PORT_RECORD);
    }
  }, 60_000);
  afterAll(async () => topo?.stop());

  /** Returns the UDP frames of `pcap` as [source address, UDP length, checksum status (1: good)]. */
  async function udpFrames(pcap: string, v6: boolean): Promise<string[][]> {
    const src = v6 ? "ipv6.src" : "ip.src";
    const shark = await topo.run(
      ["tshark", "-r", pcap, "-o", "udp.check_checksum:TRUE", "-Y", "udp", "-T", "fields", "-e", src, "-e", "udp.length", "-e", "udp.checksum.status"],
      { user: "root", timeoutMs: 60_000 },
    );
    expect(shark.code, explain("tshark", shark)).toBe(0);
    return shark.stdout.trim().split("\n").filter(Boolean).map((l) => l.split("\t"));
  }

  test.skipIf(!!skip).each(TARGETS.map((t, i) => [t.what, t, GSO_SENDS[i]!] as const))(
    "%s: a burst to the namespace and UDP_SEGMENT sends from it arrive as the very datagrams sent",
    async (_what, t, gso) => {
      const v6 = t.addr.includes(":");
      const pcap = join(topo.dir, `udp-offload-${bin.name}-${v6 ? 6 : 4}.pcap`);
      const { run, results } = await l4.clientInPasta(bin, [
        { op: "udp-burst", addr: t.addr, port: PORT_BURST, seed: 11, groups: GROUPS },
        { op: "udp-gso-send", addr: t.addr, port: PORT_RECORD, size: gso.size, n: gso.n },
      ], { args: bin.upstream2023 ? [] : ["--pcap", pcap] });
      expect(run.code, explain("pasta", run)).toBe(0);
      const [burst, sent] = results;
      expect(burst?.error, explain("udp-burst", run)).toBeUndefined();
      expect(burst?.got.length, explain("udp-burst", run)).toBe(burst?.expected.length);
      expect(burst?.got).toEqual(burst?.expected);
      expect(sent?.error, explain("udp-gso-send", run)).toBeUndefined();
      expect(sent?.got.length, explain("udp-gso-send", run)).toBe(Math.ceil(gso.n / gso.size));
      expect(sent?.got).toEqual(sent?.expected);
      if (bin.upstream2023) return;

      const frames = await udpFrames(pcap, v6);
      const fromNs = frames.filter((f) => f[0] !== t.addr);
      const toNs = frames.filter((f) => f[0] === t.addr);
      // More payload than the largest datagram: one frame, several datagrams.
      expect(toNs.filter((f) => Number(f[1]) > 8 + LARGEST_DATAGRAM).length, "USO frames to the namespace").toBeGreaterThan(0);
      expect(fromNs.filter((f) => Number(f[1]) > 8 + gso.size).length, "USO frames from the namespace").toBeGreaterThan(0);
      // udp.checksum.status: 1 good, 0 bad, 2 not verified (none: IPv4 may leave it out).
      expect(frames.filter((f) => f[2] === "0").slice(0, 5), "frames whose checksum is bad").toEqual([]);
    },
    60_000,
  );
});
