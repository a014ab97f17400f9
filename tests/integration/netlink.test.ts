// SPDX-License-Identifier: GPL-2.0-or-later
// netlink.test.ts - rtnetlink against the kernel: read a faked host, configure a namespace tap

import { describe, expect, test } from "bun:test";

const isRoot = process.getuid?.() === 0;

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  nexthops?: { gateway: string; dev: string; weight: number }[];
}

describe.skipIf(!isRoot)("rtnetlink in a namespace made by the test", async () => {
  // One run of the child does all the kernel work; the tests below check parts of its report.
  const proc = Bun.spawn(["unshare", "-n", process.execPath, "run", "tests/integration/ns/netlink_child.ts"], {
    stdout: "pipe",
    stderr: "pipe",
    timeout: 60_000,
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`netlink_child exited ${code}: ${stderr}`);
  const report = JSON.parse(stdout);
  const { host, guest } = report;

  test("the template is the interface with the default route, per IP version", () => {
    expect(host.v4.ifindex).toBe(host.dummyIndex);
    expect(host.v6.ifindex).toBe(host.dummyIndex);
    expect([host.v4.name, host.v4.mtu]).toEqual(["dummy0", 1400]);
  });

  test("the template's addresses and gateways are read back", () => {
    expect(host.v4.addrs).toEqual(["198.51.100.10/24"]);
    expect(host.v6.addrs[0]).toBe("2001:db8::10/64");
    expect(host.v6.addrs.slice(1).every((a: string) => a.startsWith("fe80:"))).toBe(true);
    expect([host.v4.gateway, host.v6.gateway]).toEqual(["198.51.100.1", "2001:db8::1"]);
  });

  test("the template's routes include the multipath and gateway routes", () => {
    expect([...host.v4.routes].sort()).toEqual(["0.0.0.0/0", "198.51.100.0/24", "203.0.113.0/25", "203.0.113.128/25"]);
    expect(host.v6.routes).toContain("::/0");
  });

  test("the namespace tap got the MTU, the MAC and IFF_UP, and lo is up", () => {
    expect(guest.link[0].mtu).toBe(1400);
    expect(guest.link[0].address).toBe("9a:55:aa:00:00:01");
    expect(guest.link[0].flags).toContain("UP");
    expect(guest.lo[0].flags).toContain("UP");
  });

  test("the namespace tap got the template's global addresses", () => {
    const addrs = guest.addr[0].addr_info.map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`);
    expect(addrs).toContain("198.51.100.10/24");
    expect(addrs).toContain("2001:db8::10/64");
    expect(addrs).not.toContain(host.v6.addrs[1]);
  });

  test("IPv4 routes were copied, gateway routes after the prefix that reaches the gateway", () => {
    const routes: IpRoute[] = guest.route4;
    const find = (dst: string) => routes.find((r) => r.dst === dst);
    expect(find("default")).toMatchObject({ gateway: "198.51.100.1", dev: "pasta0" });
    expect(find("203.0.113.128/25")).toMatchObject({ gateway: "198.51.100.2", dev: "pasta0" });
    expect(find("203.0.113.0/25")?.nexthops?.map((h) => [h.gateway, h.dev, h.weight])).toEqual([
      ["198.51.100.3", "pasta0", 1],
      ["198.51.100.4", "pasta0", 3],
    ]);
  });

  test("the IPv6 default route was copied", () => {
    const routes: IpRoute[] = guest.route6;
    expect(routes.find((r) => r.dst === "default")).toMatchObject({ gateway: "2001:db8::1", dev: "pasta0" });
  });
});
