// SPDX-License-Identifier: GPL-2.0-or-later
// dhcp.test.ts - pasta's local services without --config-net: DHCPv4 (busybox udhcpc), SLAAC, DHCPv6 (ISC dhclient)

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ADDR, Topology, explain, pastaBinaries, suiteSkipReason } from "../../harness/netns.ts";

/** udhcpc calls this with $1 = deconfig | bound | renew | leasefail; on a lease it prints the env. */
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
bound|renew)
  echo "ip=$ip"; echo "subnet=$subnet"; echo "router=$router"; echo "mtu=$mtu"
  echo "dns=$dns"; echo "domain=$domain"; echo "search=$search"; echo "lease=$lease" ;;
esac
exit 0
`;

/** dhclient calls this with $reason; on a DHCPv6 lease it prints the address. */
const DHCLIENT_SCRIPT = `#!/bin/sh
case "$reason" in
BOUND6|RENEW6|REBIND6)
  echo "ip6=$new_ip6_address"; echo "prefixlen=$new_ip6_prefixlen"; echo "dns6=$new_dhcp6_name_servers" ;;
esac
exit 0
`;

/** Parses key=value lines into a record (the last value of a repeated key wins). */
function keyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** Shell that waits up to `tries` × 0.1 s for `cond` to hold; fails with `msg` otherwise. */
function waitFor(cond: string, msg: string, tries = 100): string {
  return `i=0; until ${cond}; do i=$((i+1)); [ $i -lt ${tries} ] || { echo "${msg}" >&2; exit 90; }; sleep 0.1; done`;
}

describe.each(pastaBinaries().map((b) => [b.name, b] as const))("pasta local services (%s)", (_name, bin) => {
  const skip = suiteSkipReason(bin, ["busybox", "dhclient"]);
  let topo: Topology;
  let udhcpcScript: string;
  let dhclientScript: string;

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
    udhcpcScript = topo.writeFile("udhcpc.sh", UDHCPC_SCRIPT, 0o755);
    dhclientScript = topo.writeFile("dhclient.sh", DHCLIENT_SCRIPT, 0o755);
  });
  afterAll(async () => topo?.stop());

  test.skipIf(!!skip)("busybox udhcpc gets the host's address, /24, the gateway and MTU 65520", async () => {
    const script = `ip link set ${ADDR.hostIf} up && exec busybox udhcpc -i ${ADDR.hostIf} -n -q -f -t 5 -T 1 -s ${udhcpcScript}`;
    const r = await topo.run([bin.path, "--", "sh", "-c", script], { timeoutMs: 20_000 });
    expect(r.code, explain("pasta -- udhcpc", r)).toBe(0);
    const lease = keyValues(r.stdout);
    expect(lease.ip, explain("lease", r)).toBe(ADDR.host4);
    expect(lease.subnet).toBe("255.255.255.0");
    expect(lease.router).toBe(ADDR.gw4);
    expect(lease.mtu).toBe("65520");
  }, 30_000);

  test.skipIf(!!skip)("without --dhcp-dns the lease carries no nameserver (pasta's default)", async () => {
    const script = `ip link set ${ADDR.hostIf} up && exec busybox udhcpc -i ${ADDR.hostIf} -n -q -f -t 5 -T 1 -s ${udhcpcScript}`;
    const r = await topo.run([bin.path, "--", "sh", "-c", script], { timeoutMs: 20_000 });
    expect(r.code, explain("pasta -- udhcpc", r)).toBe(0);
    const lease = keyValues(r.stdout);
    expect(lease.ip, explain("lease", r)).toBe(ADDR.host4);
    expect(lease.dns, explain("lease", r)).toBe("");
  }, 30_000);

  test.skipIf(!!skip)("with --dhcp-dns --dhcp-search the lease names resolv.conf's nameserver and search domain", async () => {
    const script = `ip link set ${ADDR.hostIf} up && exec busybox udhcpc -i ${ADDR.hostIf} -n -q -f -t 5 -T 1 -s ${udhcpcScript}`;
    const r = await topo.run([bin.path, "--dhcp-dns", "--dhcp-search", "--", "sh", "-c", script], { timeoutMs: 20_000 });
    expect(r.code, explain("pasta -- udhcpc", r)).toBe(0);
    const lease = keyValues(r.stdout);
    expect(lease.dns?.trim().split(/\s+/), explain("lease", r)).toContain(ADDR.dns4);
    expect((lease.search ?? lease.domain ?? "").trim().split(/\s+/)).toContain(ADDR.searchDomain);
  }, 30_000);

  test.skipIf(!!skip)("kernel SLAAC gets an address in 2001:db8::/64 and a default route via a link-local router", async () => {
    const dev = ADDR.hostIf;
    const script = [
      `sysctl -qw net.ipv6.conf.${dev}.accept_ra=2 net.ipv6.conf.${dev}.autoconf=1`,
      `ip link set ${dev} up`,
      waitFor(`ip -6 addr show dev ${dev} scope global | grep -q 'inet6 2001:db8::'`, "no SLAAC address"),
      waitFor(`ip -6 route show default | grep -q 'via fe80::'`, "no default route"),
      `ip -j -6 addr show dev ${dev} scope global`,
      `echo @@@`,
      `ip -j -6 route show default`,
    ].join("\n");
    const t0 = Date.now();
    const r = await topo.run([bin.path, "--", "sh", "-c", script], { timeoutMs: 20_000 });
    expect(r.code, explain("pasta -- SLAAC", r)).toBe(0);
    const [addrs, routes] = r.stdout.split("@@@");
    const global = JSON.parse(addrs!)[0].addr_info.filter((a: any) => a.family === "inet6");
    expect(global.length).toBeGreaterThan(0);
    expect(global[0].local).toMatch(/^2001:db8::/);
    expect(global[0].prefixlen).toBe(64);
    const [def] = JSON.parse(routes!);
    expect(def.gateway).toMatch(/^fe80::/);
    expect(def.dev).toBe(dev);
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 30_000);

  test.skipIf(!!skip)("ISC dhclient -6 gets the host's address 2001:db8::10", async () => {
    const dev = ADDR.hostIf;
    const d = topo.dir;
    const script = [
      `ip link set ${dev} up`,
      // dhclient -6 needs a usable (non-tentative) link-local address to send from.
      waitFor(`ip -6 addr show dev ${dev} scope link | grep -q inet6 && ! ip -6 addr show dev ${dev} | grep -q tentative`, "link-local address stays tentative"),
      `exec dhclient -6 -1 -v -lf ${d}/dhclient6.leases -pf ${d}/dhclient6.pid -sf ${dhclientScript} ${dev}`,
    ].join("\n");
    const r = await topo.run([bin.path, "--", "sh", "-c", script], { timeoutMs: 25_000 });
    expect(r.code, explain("pasta -- dhclient -6", r)).toBe(0);
    const lease = keyValues(r.stdout);
    expect(lease.ip6, explain("dhclient", r)).toBe(ADDR.host6);
  }, 30_000);
});
