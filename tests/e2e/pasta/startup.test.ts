// SPDX-License-Identifier: GPL-2.0-or-later
// startup.test.ts - pasta's start-up failures are one clear line, and --pcap captures both directions

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ADDR, Topology, explain, pastaBinaries, suiteSkipReason } from "../../harness/netns.ts";

describe.each(pastaBinaries().map((b) => [b.name, b] as const))("pasta --pcap (%s)", (_name, bin) => {
  const skip = suiteSkipReason(bin, ["tshark", "ping"]);
  let topo: Topology;

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
  });
  afterAll(async () => topo?.stop());

  test.skipIf(!!skip)("--pcap writes frames of both directions in a file tshark reads", async () => {
    const pcap = join(topo.dir, "session.pcap");
    const r = await topo.run([bin.path, "--config-net", "--pcap", pcap, "--", "ping", "-c1", "-W2", ADDR.remote4], {
      timeoutMs: 15_000,
    });
    expect(r.code, explain("pasta --pcap -- ping", r)).toBe(0);
    const t = await topo.run(["tshark", "-r", pcap, "-Y", "icmp", "-T", "fields", "-e", "icmp.type", "-e", "ip.src"], {
      user: "root",
    });
    expect(t.code, explain("tshark -r", t)).toBe(0);
    const rows = t.stdout.trim().split("\n").map((l) => l.split("\t"));
    // An echo request from the namespace and the reply towards it.
    expect(rows).toContainEqual(["8", ADDR.host4]);
    expect(rows).toContainEqual(["0", ADDR.remote4]);
  }, 20_000);
});

describe.each(pastaBinaries().filter((b) => !b.upstream2023).map((b) => [b.name, b] as const))(
  "pasta start-up failures (%s)",
  (_name, bin) => {
    const skip = suiteSkipReason(bin);
    let topo: Topology;

    beforeAll(async () => {
      if (skip) return;
      topo = await Topology.start();
    });
    afterAll(async () => topo?.stop());

    /** Returns the processes nobody still has in the topology, as `ps` lines. */
    async function leftovers(): Promise<string> {
      const ps = await topo.run(["ps", "-u", "65534", "-o", "pid=,args="], { user: "root" });
      return ps.stdout.trim();
    }

    test.skipIf(!!skip)("a /dev/net/tun we may not open is one line naming it, exit 1, nothing left", async () => {
      await topo.run(["chmod", "600", "/dev/net/tun"], { user: "root" });
      const r = await topo.run([bin.path, "--config-net", "--", "true"], { timeoutMs: 10_000 });
      await topo.run(["chmod", "666", "/dev/net/tun"], { user: "root" });
      expect(r.code, explain("pasta with a 0600 tun", r)).toBe(1);
      const lines = r.stderr.trim().split("\n");
      expect(lines.at(-1)).toBe("open /dev/net/tun: Permission denied");
      expect(await leftovers()).toBe("");
    }, 20_000);

    test.skipIf(!!skip)("a missing /dev/net/tun is one line naming it, exit 1, nothing left", async () => {
      await topo.run(["mv", "/dev/net/tun", "/dev/net/tun.away"], { user: "root" });
      const r = await topo.run([bin.path, "--config-net", "--", "true"], { timeoutMs: 10_000 });
      await topo.run(["mv", "/dev/net/tun.away", "/dev/net/tun"], { user: "root" });
      expect(r.code, explain("pasta without tun", r)).toBe(1);
      expect(r.stderr.trim().split("\n").at(-1)).toBe("open /dev/net/tun: No such file or directory");
      expect(await leftovers()).toBe("");
    }, 20_000);

    test.skipIf(!!skip)("a command that cannot be run exits 127 with one line naming it", async () => {
      const r = await topo.run([bin.path, "--config-net", "--", "/nonexistent/cmd"], { timeoutMs: 10_000 });
      expect(r.code, explain("pasta -- /nonexistent/cmd", r)).toBe(127);
      expect(r.stderr).toContain("/nonexistent/cmd");
      expect(await leftovers()).toBe("");
    }, 20_000);
  },
);

// Newest upstream: with no interface to copy, a local-only network (REFERENCE.md §2); 2023 gave up.
describe.each(pastaBinaries().filter((b) => !b.upstream2023).map((b) => [b.name, b] as const))(
  "pasta without an upstream interface (%s)",
  (_name, bin) => {
    const skip = suiteSkipReason(bin);
    let topo: Topology;

    beforeAll(async () => {
      if (skip) return;
      topo = await Topology.start();
      await topo.run(["ip", "route", "del", "default"], { user: "root" });
      await topo.run(["ip", "-6", "route", "del", "default"], { user: "root" });
    });
    afterAll(async () => topo?.stop());

    test.skipIf(!!skip)("falls back to local mode: 169.254.2.1/16 via 169.254.2.2, IPv6 router fe80::1, on tap0", async () => {
      const r = await topo.run([bin.path, "--config-net", "--", "sh", "-c", "ip -j addr show dev tap0; ip -j route; ip -j -6 route"]);
      expect(r.code, explain("pasta in local mode", r)).toBe(0);
      const [addr, routes4, routes6] = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      expect(addr[0].addr_info.filter((a: any) => a.family === "inet").map((a: any) => `${a.local}/${a.prefixlen}`)).toEqual([
        "169.254.2.1/16",
      ]);
      expect(routes4.find((x: any) => x.dst === "default")?.gateway).toBe("169.254.2.2");
      expect(routes6.find((x: any) => x.dst === "default")?.gateway).toBe("fe80::1");
    }, 20_000);
  },
);

// Upstream drops to nobody (or --runas) once set up when started as root.
describe.each(pastaBinaries().filter((b) => !b.upstream2023).map((b) => [b.name, b] as const))(
  "pasta started as root (%s)",
  (_name, bin) => {
    const skip = suiteSkipReason(bin, ["ping"]);
    let topo: Topology;

    beforeAll(async () => {
      if (skip) return;
      topo = await Topology.start();
    });
    afterAll(async () => topo?.stop());

    /**
     * Starts pasta as root with `opts`, reads its ids from outside its user namespace (from
     * inside, ids it does not map show as the overflow id) and pings through it.
     */
    async function idsOfPasta(opts: string[]): Promise<{ status: string; ping: string }> {
      const pidFile = join(topo.dir, `pasta-root-${opts.length}.pid`);
      const pasta = topo.spawn(
        [bin.path, "--config-net", "-P", pidFile, ...opts, "--", "sh", "-c", `sleep 1; ping -c1 -W2 ${ADDR.remote4} >/dev/null && echo ping-ok; sleep 1`],
        { user: "root" },
      );
      try {
        await Bun.sleep(700);
        const pid = (await topo.run(["cat", pidFile], { user: "root" })).stdout.trim();
        const status = await topo.run(["grep", "-E", "^(Uid|Gid):", `/proc/${pid}/status`], { user: "root" });
        const r = await pasta.wait(10_000);
        return { status: status.stdout, ping: r.stdout };
      } finally {
        await pasta.kill("SIGKILL");
      }
    }

    test.skipIf(!!skip)("runs as nobody once set up, and keeps serving the namespace", async () => {
      const r = await idsOfPasta([]);
      expect(r.status).toMatch(/^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
      expect(r.status).toMatch(/^Gid:\s+65534\s+65534\s+65534\s+65534$/m);
      expect(r.ping).toContain("ping-ok");
    }, 20_000);

    test.skipIf(!!skip)("--runas UID:GID picks whom it becomes", async () => {
      const r = await idsOfPasta(["--runas", "4242:4343"]);
      expect(r.status).toMatch(/^Uid:\s+4242\s+4242\s+4242\s+4242$/m);
      expect(r.status).toMatch(/^Gid:\s+4343\s+4343\s+4343\s+4343$/m);
      expect(r.ping).toContain("ping-ok");
    }, 20_000);

    test.skipIf(!!skip)("--runas with a user that does not exist is one line naming it, exit 1", async () => {
      const r = await topo.run([bin.path, "--config-net", "--runas", "no-such-user-x", "--", "true"], { user: "root" });
      expect(r.code, explain("pasta --runas no-such-user-x", r)).toBe(1);
      expect(r.stderr).toContain("no-such-user-x");
    }, 20_000);
  },
);
