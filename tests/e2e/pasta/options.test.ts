// SPDX-License-Identifier: GPL-2.0-or-later
// options.test.ts - pasta's address, MAC, MTU, DNS and protocol options, seen by real clients in the namespace

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ADDR, Topology, explain, pastaBinaries, suiteSkipReason } from "../../harness/netns.ts";

/** udhcpc calls this with $1 = bound on a lease; it prints the lease. */
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
bound|renew) echo "ip=$ip"; echo "subnet=$subnet"; echo "router=$router"; echo "mtu=$mtu"; echo "dns=$dns"; echo "domain=$domain"; echo "search=$search" ;;
esac
exit 0
`;

function keyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

interface IpAddr {
  ifname: string;
  mtu: number;
  address: string;
  addr_info: { family: string; local: string; prefixlen: number; scope: string }[];
}

describe.each(pastaBinaries().map((b) => [b.name, b] as const))("pasta options (%s)", (_name, bin) => {
  const skip = suiteSkipReason(bin, ["busybox", "ping"]);
  let topo: Topology;
  let udhcpc: string;

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
    udhcpc = topo.writeFile("udhcpc-opt.sh", UDHCPC_SCRIPT, 0o755);
  });
  afterAll(async () => topo?.stop());

  /** Runs pasta with `opts` and a DHCP client; returns the lease. */
  async function lease(opts: string[]): Promise<Record<string, string>> {
    const script = `ip link set ${ADDR.hostIf} up && exec busybox udhcpc -i ${ADDR.hostIf} -n -q -f -t 5 -T 1 -s ${udhcpc}`;
    const r = await topo.run([bin.path, ...opts, "--", "sh", "-c", script], { timeoutMs: 20_000 });
    expect(r.code, explain(`pasta ${opts.join(" ")} -- udhcpc`, r)).toBe(0);
    return keyValues(r.stdout);
  }

  /** Runs `ip -j addr show` in a --config-net namespace made with `opts`. */
  async function addrs(opts: string[]): Promise<IpAddr> {
    const r = await topo.run([bin.path, "--config-net", ...opts, "--", "ip", "-j", "addr", "show", "dev", ADDR.hostIf]);
    expect(r.code, explain(`pasta --config-net ${opts.join(" ")}`, r)).toBe(0);
    return (JSON.parse(r.stdout) as IpAddr[])[0]!;
  }

  test.skipIf(!!skip)("-a, -n and -g give the guest that address, netmask and router by DHCP", async () => {
    const l = await lease(["-a", "198.51.100.77", "-n", "255.255.255.128", "-g", "198.51.100.1"]);
    expect(l.ip).toBe("198.51.100.77");
    expect(l.subnet).toBe("255.255.255.128");
    expect(l.router).toBe("198.51.100.1");
  }, 30_000);

  test.skipIf(!!skip)("-m sets the MTU the DHCP lease carries", async () => {
    const l = await lease(["-m", "1500"]);
    expect(l.mtu).toBe("1500");
  }, 30_000);

  test.skipIf(!!skip)("-D and -S with --dhcp-dns --dhcp-search replace resolv.conf's servers and domains", async () => {
    const l = await lease(["-D", "203.0.113.53", "-S", "example.net", "--dhcp-dns", "--dhcp-search"]);
    expect(l.dns?.trim()).toBe("203.0.113.53");
    expect(`${l.search} ${l.domain}`).toContain("example.net");
  }, 30_000);

  test.skipIf(!!skip)("--no-dhcp leaves DHCP unanswered", async () => {
    const script = `ip link set ${ADDR.hostIf} up && busybox udhcpc -i ${ADDR.hostIf} -n -q -f -t 2 -T 1 -s ${udhcpc}; echo "rc=$?"`;
    const r = await topo.run([bin.path, "--no-dhcp", "--", "sh", "-c", script], { timeoutMs: 20_000 });
    expect(r.stdout, explain("pasta --no-dhcp -- udhcpc", r)).not.toContain("ip=");
    expect(r.stdout).toContain("rc=1");
  }, 30_000);

  test.skipIf(!!skip)("-4 gives the namespace IPv4 only, -6 IPv6 only", async () => {
    const four = await addrs(["-4"]);
    const fams4 = four.addr_info.filter((a) => a.scope === "global").map((a) => a.family);
    expect(fams4).toEqual(["inet"]);
    const six = await addrs(["-6"]);
    const fams6 = six.addr_info.filter((a) => a.scope === "global").map((a) => a.family);
    expect(fams6).toEqual(["inet6"]);
  }, 30_000);

  test.skipIf(!!skip)("-I names the namespace interface and --ns-mac-addr sets its MAC", async () => {
    const r = await topo.run([
      bin.path, "--config-net", "-I", "eth7", "--ns-mac-addr", "02:00:00:00:00:07", "--",
      "ip", "-j", "link", "show", "dev", "eth7",
    ]);
    expect(r.code, explain("pasta -I eth7 --ns-mac-addr", r)).toBe(0);
    expect(JSON.parse(r.stdout)[0].address).toBe("02:00:00:00:00:07");
  }, 30_000);

  // 2023's default MAC was the host's; the newest upstream's is 9a:55:9a:55:9a:55 (REFERENCE.md §1).
  test.skipIf(!!skip || bin.upstream2023)("the gateway's MAC as the namespace learns it is ours: 9a:55:9a:55:9a:55, or -M", async () => {
    const cmd = `ping -c1 -W2 ${ADDR.gw4} >/dev/null && ip -j neigh show ${ADDR.gw4}`;
    const r = await topo.run([bin.path, "--config-net", "--", "sh", "-c", cmd]);
    expect(r.code, explain("pasta -- ip neigh", r)).toBe(0);
    // With --config-net and IPv6 on, the link is NOARP: the kernel then uses no neighbour entry.
    const withArp = await topo.run([bin.path, "--config-net", "-4", "--", "sh", "-c", cmd]);
    expect(withArp.code, explain("pasta -4 -- ip neigh", withArp)).toBe(0);
    expect(JSON.parse(withArp.stdout)[0]?.lladdr).toBe("9a:55:9a:55:9a:55");
    const custom = await topo.run([bin.path, "--config-net", "-4", "-M", "02:aa:bb:cc:dd:ee", "--", "sh", "-c", cmd]);
    expect(JSON.parse(custom.stdout)[0]?.lladdr, explain("pasta -M", custom)).toBe("02:aa:bb:cc:dd:ee");
  }, 30_000);

  test.skipIf(!!skip)("--no-icmp leaves pings unanswered", async () => {
    const r = await topo.run([bin.path, "--config-net", "--no-icmp", "--", "ping", "-c1", "-W1", ADDR.remote4]);
    expect(r.code, explain("pasta --no-icmp -- ping", r)).not.toBe(0);
    expect(r.stdout).toMatch(/1 packets transmitted, 0 received/);
  }, 30_000);
});

describe.each(pastaBinaries().map((b) => [b.name, b] as const))("pasta -i (%s)", (_name, bin) => {
  const skip = suiteSkipReason(bin);
  let topo: Topology;

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
    // A second upstream interface, with a default route of lower priority than vA's.
    const setup = [
      "ip link add vC type veth peer name vD",
      "ip addr add 203.0.113.99/24 dev vC",
      "ip link set vC up",
      "ip link set vD up",
      "ip route add default via 203.0.113.1 dev vC metric 500",
    ].join(" && ");
    const r = await topo.run(["sh", "-c", setup], { user: "root" });
    if (r.code !== 0) throw new Error(explain("second interface", r));
  });
  afterAll(async () => topo?.stop());

  test.skipIf(!!skip)("-i takes the address and gateway of the named interface instead of the first default route", async () => {
    const r = await topo.run([bin.path, "--config-net", "-4", "-i", "vC", "--", "sh", "-c", "ip -j addr show dev vC; ip -j route"]);
    expect(r.code, explain("pasta -i vC", r)).toBe(0);
    const [addr, routes] = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(addr[0].addr_info.filter((a: any) => a.family === "inet").map((a: any) => a.local)).toEqual(["203.0.113.99"]);
    expect(routes.find((x: any) => x.dst === "default")?.gateway).toBe("203.0.113.1");
  }, 20_000);

  test.skipIf(!!skip || bin.upstream2023)("-i with an interface that does not exist is one line naming it, exit 1", async () => {
    const r = await topo.run([bin.path, "--config-net", "-i", "nosuch0", "--", "true"]);
    expect(r.code, explain("pasta -i nosuch0", r)).toBe(1);
    expect(r.stderr).toContain("nosuch0");
  }, 20_000);
});
