// SPDX-License-Identifier: GPL-2.0-or-later
// netlink_child.ts - run as root under `unshare -n`: fake a host with `ip`, read it back through
// src/netlink.ts, then configure a tap in a second namespace; prints one JSON object
//
// The "host" is the namespace unshare made: dummy0 (one end of a veth pair: no dummy driver here) with 198.51.100.10/24, 2001:db8::10/64,
// MTU 1400, default routes and two more routes. The "guest" is a nested netns held by a
// `sleep` child, joined with nsJoin({ netnsOnly }) as pasta --netns-only does; our tap there
// gets the template's addresses, routes, MTU and a MAC. `ip -j` output of both is printed for
// the test to check.

import { spawnSync } from "bun";
import { nsClose, nsJoin } from "../../../syscalls/ns.ts";
import { close } from "../../../syscalls/libc.ts";
import {
  AF_INET,
  AF_INET6,
  ipToString,
  nlCopyAddrs,
  nlCopyRoutes,
  nlHostTemplate,
  nlLinkIndex,
  nlLoopbackUp,
  nlOpen,
  nlSetLink,
  type HostTemplate,
} from "../../../src/netlink.ts";

function sh(cmd: string[]): string {
  const r = spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

function must(r: number, what: string): void {
  if (r < 0) throw new Error(`${what}: ${-r}`);
}

for (const c of [
  "ip link add dummy0 type veth peer name peer0",
  "ip link set peer0 up",
  "ip link set dummy0 mtu 1400 up",
  "ip addr add 198.51.100.10/24 dev dummy0",
  "ip -6 addr add 2001:db8::10/64 dev dummy0 nodad",
  "ip route add default via 198.51.100.1 dev dummy0",
  "ip route add 203.0.113.128/25 via 198.51.100.2 dev dummy0",
  "ip route add 203.0.113.0/25 nexthop via 198.51.100.3 dev dummy0 weight 1 nexthop via 198.51.100.4 dev dummy0 weight 3",
  "ip -6 route add default via 2001:db8::1 dev dummy0",
]) {
  sh(c.split(" "));
}

const hostFd = nlOpen();
must(hostFd, "nlOpen");
const t4 = nlHostTemplate(hostFd, AF_INET);
const t6 = nlHostTemplate(hostFd, AF_INET6);
if (typeof t4 === "number" || typeof t6 === "number") throw new Error(`template: ${t4} ${t6}`);

const summary = (t: HostTemplate) => ({
  ifindex: t.ifindex,
  name: t.link?.name ?? null,
  mtu: t.link?.mtu ?? 0,
  gateway: t.gateway ? ipToString(t.gateway) : null,
  addrs: t.addrs.map((a) => `${ipToString(a.address)}/${a.prefixLen}`),
  routes: t.routes.map((r) => `${ipToString(r.dst)}/${r.dstLen}`),
});

const guest = Bun.spawn(["setpriv", "--pdeathsig", "KILL", "unshare", "-n", "sleep", "60"], { stdio: ["ignore", "ignore", "inherit"] });
const out: Record<string, unknown> = { host: { v4: summary(t4), v6: summary(t6), dummyIndex: nlLinkIndex(hostFd, "dummy0") } };
try {
  // Wait until the child has its own netns.
  const self = sh(["readlink", "/proc/self/ns/net"]).trim();
  for (let i = 0; i < 200; i++) {
    const r = spawnSync(["readlink", `/proc/${guest.pid}/ns/net`]);
    if (r.exitCode === 0 && r.stdout.toString().trim() !== self) break;
    await Bun.sleep(10);
  }

  const agent = nsJoin({ netns: `/proc/${guest.pid}/ns/net`, netnsOnly: true, ifname: "pasta0" });
  if (!agent.ok) throw new Error(agent.message);
  try {
    const fd = agent.netlinkFd;
    const tap = nlLinkIndex(fd, "pasta0");
    must(tap, "tap index");
    must(nlLoopbackUp(fd), "lo up");
    const mac = new Uint8Array([0x9a, 0x55, 0xaa, 0x00, 0x00, 0x01]);
    must(nlSetLink(fd, tap, { mtu: t4.link?.mtu ?? 0, mac, up: true }), "set link");
    // Routes before addresses: the copy itself must order prefix routes before gateway routes.
    must(nlCopyRoutes(fd, t4.ifindex, tap, t4.routes), "copy v4 routes");
    must(nlCopyAddrs(fd, tap, t4.addrs), "copy v4 addrs");
    must(nlCopyAddrs(fd, tap, t6.addrs), "copy v6 addrs");
    must(nlCopyRoutes(fd, t6.ifindex, tap, t6.routes), "copy v6 routes");
    const inGuest = (args: string) => JSON.parse(sh(["nsenter", "-t", String(guest.pid), "-n", ...args.split(" ")]));
    out.guest = {
      link: inGuest("ip -j link show pasta0"),
      lo: inGuest("ip -j link show lo"),
      addr: inGuest("ip -j addr show dev pasta0"),
      route4: inGuest("ip -j -4 route show table main"),
      route6: inGuest("ip -j -6 route show table main"),
    };
    close(agent.tapFd);
    close(fd);
  } finally {
    nsClose(agent);
  }
} finally {
  guest.kill("SIGKILL");
  await guest.exited;
  close(hostFd);
}
console.log(JSON.stringify(out));
