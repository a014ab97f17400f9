// SPDX-License-Identifier: GPL-2.0-or-later
// attach.test.ts - `pasta PID` and `pasta --netns PATH --userns PATH` join a namespace made beforehand

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ADDR, Topology, explain, pastaBinaries, suiteSkipReason, waitUntil } from "../../harness/netns.ts";

describe.each(pastaBinaries().map((b) => [b.name, b] as const))("pasta attached to an existing namespace (%s)", (_name, bin) => {
  const skip = suiteSkipReason(bin, ["ping"]);
  let topo: Topology;

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
  });
  afterAll(async () => topo?.stop());

  /** Waits until the namespace's vA carries the host's IPv4 and IPv6 addresses; returns `ip -j addr`. */
  async function configured(enter: (argv: string[]) => string[]) {
    return waitUntil(
      () => topo.run(enter(["ip", "-j", "addr", "show", "dev", ADDR.hostIf])),
      // pasta adds the IPv4 addresses first, then the IPv6 ones: wait for both.
      (r) => r.code === 0 && r.stdout.includes(`"${ADDR.host4}"`) && r.stdout.includes(`"${ADDR.host6}"`),
    );
  }

  test.skipIf(!!skip)("pasta -f --config-net PID configures the namespace of PID and forwards ping", async () => {
    const ns = await topo.holdNamespace();
    const pasta = topo.spawn([bin.path, "-f", "--config-net", String(ns.pid)]);
    try {
      const addr = await configured(ns.enter);
      expect(addr.code, explain("ip addr in the attached namespace", addr) + explain("\npasta", { code: -1, ...pasta.output() })).toBe(0);
      const [l] = JSON.parse(addr.stdout);
      const global = l.addr_info.filter((a: any) => a.scope === "global").map((a: any) => `${a.local}/${a.prefixlen}`);
      expect(global).toEqual([`${ADDR.host4}/24`, `${ADDR.host6}/64`]);
      expect(l.mtu).toBe(65520);

      const ping4 = await topo.run(ns.enter(["ping", "-c1", "-W2", ADDR.remote4]));
      expect(ping4.code, explain("ping 203.0.113.5 in the attached namespace", ping4)).toBe(0);
      const ping6 = await topo.run(ns.enter(["ping", "-6", "-c1", "-W2", ADDR.remote6]));
      expect(ping6.code, explain("ping 2001:db8:1::5 in the attached namespace", ping6)).toBe(0);
      expect(pasta.alive(), explain("pasta exited", { code: -1, ...pasta.output() })).toBe(true);
    } finally {
      await pasta.kill("SIGTERM");
      await ns.handle.kill("SIGKILL");
    }
  }, 30_000);

  test.skipIf(!!skip)("without -f, pasta PID returns 0 at once, writes its PID file and keeps serving", async () => {
    const ns = await topo.holdNamespace();
    const pidFile = join(topo.dir, "pasta-bg.pid");
    try {
      const r = await topo.run([bin.path, "--config-net", "-P", pidFile, String(ns.pid)], { timeoutMs: 10_000 });
      expect(r.code, explain("pasta PID (background)", r)).toBe(0);
      expect(existsSync(pidFile)).toBe(true);
      const pastaPid = Number(readFileSync(pidFile, "utf8").trim());
      expect(pastaPid).toBeGreaterThan(1);
      const addr = await configured(ns.enter);
      expect(addr.stdout).toContain(`"${ADDR.host4}"`);
      const ping = await topo.run(ns.enter(["ping", "-c1", "-W2", ADDR.gw4]));
      expect(ping.code, explain("ping the gateway", ping)).toBe(0);
      const stop = await topo.run(["kill", String(pastaPid)]);
      expect(stop.code, explain("kill the background pasta (as nobody, its owner)", stop)).toBe(0);
    } finally {
      await ns.handle.kill("SIGKILL");
    }
  }, 30_000);

  test.skipIf(!!skip)("pasta --netns /proc/PID/ns/net --userns /proc/PID/ns/user serves that namespace over IPv6", async () => {
    const ns = await topo.holdNamespace();
    const pasta = topo.spawn([
      bin.path, "-f", "--config-net",
      "--netns", `/proc/${ns.pid}/ns/net`, "--userns", `/proc/${ns.pid}/ns/user`,
    ]);
    try {
      const addr = await configured(ns.enter);
      expect(addr.code, explain("ip addr", addr) + explain("\npasta", { code: -1, ...pasta.output() })).toBe(0);
      expect(addr.stdout).toContain(`"${ADDR.host6}"`);
      const ping6 = await topo.run(ns.enter(["ping", "-6", "-c1", "-W2", ADDR.remote6]));
      expect(ping6.code, explain("ping 2001:db8:1::5 in the --netns namespace", ping6)).toBe(0);
      const route = await topo.run(ns.enter(["ip", "-j", "-6", "route", "show", "default"]));
      expect(JSON.parse(route.stdout).map((x: any) => x.gateway)).toEqual([ADDR.gw6]);
    } finally {
      await pasta.kill("SIGTERM");
      await ns.handle.kill("SIGKILL");
    }
  }, 30_000);

  // Newest upstream quits once the namespace is gone (--no-netns-quit keeps it); 2023 did not with PID.
  test.skipIf(!!skip || bin.upstream2023)("pasta -f PID exits 0 within seconds of the namespace going away", async () => {
    const ns = await topo.holdNamespace();
    const pasta = topo.spawn([bin.path, "-f", "--config-net", String(ns.pid)]);
    try {
      await configured(ns.enter);
      await ns.handle.kill("SIGKILL");
      const r = await pasta.wait(5_000);
      expect(r.code, explain("pasta after its namespace went away", r)).toBe(0);
    } finally {
      await pasta.kill("SIGTERM");
    }
  }, 30_000);

  test.skipIf(!!skip)("pasta exits with an error when PID does not exist", async () => {
    const r = await topo.run([bin.path, "-f", "--config-net", "999999"], { timeoutMs: 10_000 });
    expect(r.code, explain("pasta 999999", r)).not.toBe(0);
    expect(r.code).not.toBe(137); // a clean error, not our timeout
  }, 30_000);
});
