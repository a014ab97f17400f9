// SPDX-License-Identifier: GPL-2.0-or-later
// config_net.test.ts - `pasta --config-net -- CMD` as nobody: addresses, routes, MTU, name, exit status

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ADDR, Topology, explain, pastaBinaries, suiteSkipReason, type RunResult } from "../../harness/netns.ts";

/** What `ip -j` shows inside the namespace, collected by one pasta run. */
interface NsView {
  links: any[];
  routes4: any[];
  routes6: any[];
  uid: string;
}

const SEP = "@@@";
const SHOW = `ip -j addr; echo ${SEP}; ip -j -4 route; echo ${SEP}; ip -j -6 route; echo ${SEP}; id -u`;

function parseView(r: RunResult): NsView {
  if (r.code !== 0) throw new Error(explain("pasta --config-net", r));
  const [links, routes4, routes6, uid] = r.stdout.split(SEP);
  return {
    links: JSON.parse(links ?? "[]"),
    routes4: JSON.parse(routes4 ?? "[]"),
    routes6: JSON.parse(routes6 ?? "[]"),
    uid: (uid ?? "").trim(),
  };
}

function link(view: NsView, name: string): any {
  const l = view.links.find((x) => x.ifname === name);
  if (!l) throw new Error(`no interface ${name} in namespace: ${view.links.map((x) => x.ifname).join(", ")}`);
  return l;
}

function globalAddrs(l: any, family: "inet" | "inet6"): string[] {
  return l.addr_info
    .filter((a: any) => a.family === family && a.scope === "global")
    .map((a: any) => `${a.local}/${a.prefixlen}`);
}

describe.each(pastaBinaries().map((b) => [b.name, b] as const))("pasta --config-net (%s)", (_name, bin) => {
  const skip = suiteSkipReason(bin);
  let topo: Topology;
  let view: Promise<NsView>;

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
    view = topo.run([bin.path, "--config-net", "--", "sh", "-c", SHOW]).then(parseView);
    view.catch(() => {}); // reported by the tests that use it
  });
  afterAll(async () => topo?.stop());

  test.skipIf(!!skip)("the namespace interface carries the host's IPv4 and IPv6 addresses", async () => {
    const v = await view;
    const vA = link(v, ADDR.hostIf);
    expect(globalAddrs(vA, "inet")).toEqual([`${ADDR.host4}/24`]);
    expect(globalAddrs(vA, "inet6")).toEqual([`${ADDR.host6}/64`]);
  });

  test.skipIf(!!skip)("the default routes go via the host's gateways 198.51.100.1 and 2001:db8::1", async () => {
    const v = await view;
    const def4 = v.routes4.filter((r) => r.dst === "default");
    const def6 = v.routes6.filter((r) => r.dst === "default");
    expect(def4.map((r) => [r.gateway, r.dev])).toEqual([[ADDR.gw4, ADDR.hostIf]]);
    expect(def6.map((r) => [r.gateway, r.dev])).toEqual([[ADDR.gw6, ADDR.hostIf]]);
  });

  test.skipIf(!!skip)("the namespace interface has MTU 65520 and is up", async () => {
    const vA = link(await view, ADDR.hostIf);
    expect(vA.mtu).toBe(65520);
    expect(vA.flags).toContain("UP");
  });

  test.skipIf(!!skip)("loopback in the namespace is up", async () => {
    const lo = link(await view, "lo");
    expect(lo.flags).toContain("UP");
  });

  test.skipIf(!!skip)("the interface takes the template's name, and nothing else but lo exists", async () => {
    const v = await view;
    expect(v.links.map((l) => l.ifname).sort()).toEqual(["lo", ADDR.hostIf].sort());
  });

  test.skipIf(!!skip)("the command runs as uid 0 of the new user namespace", async () => {
    expect((await view).uid).toBe("0");
  });

  test.skipIf(!!skip)("-I names the namespace interface", async () => {
    const r = await topo.run([bin.path, "--config-net", "-I", "tap7", "--", "ip", "-j", "addr", "show", "dev", "tap7"]);
    expect(r.code, explain("pasta -I tap7", r)).toBe(0);
    const [l] = JSON.parse(r.stdout);
    expect(l.ifname).toBe("tap7");
    expect(globalAddrs(l, "inet")).toEqual([`${ADDR.host4}/24`]);
  });

  test.skipIf(!!skip)("the exit status of the command is pasta's: `sh -c 'exit 7'` gives 7", async () => {
    const r = await topo.run([bin.path, "--config-net", "--", "sh", "-c", "exit 7"]);
    expect(r.code, explain("pasta -- sh -c 'exit 7'", r)).toBe(7);
  });

  test.skipIf(!!skip)("the command's stdout reaches the caller unchanged", async () => {
    const r = await topo.run([bin.path, "--config-net", "--", "echo", "hello from the namespace"]);
    expect(r.code, explain("pasta -- echo", r)).toBe(0);
    expect(r.stdout).toBe("hello from the namespace\n");
  });
});
