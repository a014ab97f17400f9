// SPDX-License-Identifier: GPL-2.0-or-later
// host.test.ts - the context built from the configuration and what the host looks like

import { describe, expect, test } from "bun:test";
import { parseArgs } from "../../src/conf.ts";
import { buildCtx, type HostInfo, parseResolvConf, templateName } from "../../src/host.ts";
import type { AddrInfo, HostTemplate } from "../../src/netlink.ts";
import { formatIp, parseIp } from "../../src/wire/addr.ts";
import { runasIds } from "../../src/sandbox.ts";

const AF_INET = 2;
const AF_INET6 = 10;

function addr(text: string, prefixLen: number, scope = 0): AddrInfo {
  const a = parseIp(text)!;
  return { family: a.length === 4 ? AF_INET : AF_INET6, prefixLen, address: a, scope, flags: 0, ifindex: 2 };
}

function template(family: number, gateway: string | null, addrs: AddrInfo[]): HostTemplate {
  return {
    ifindex: 2,
    link: { index: 2, name: "eth0", flags: 0, mtu: 1500, mac: null },
    addrs,
    routes: [],
    gateway: gateway === null ? null : parseIp(gateway),
  };
}

const HOST: HostInfo = {
  v4: template(AF_INET, "198.51.100.1", [addr("198.51.100.10", 24)]),
  v6: template(AF_INET6, "fe80::1", [addr("2001:db8::10", 64), addr("fe80::10", 64, 253)]),
  resolvConf: "nameserver 198.51.100.53\nnameserver 2001:db8::53\nsearch example.org example.net\n",
};

const fmt = (a: Uint8Array | null | undefined) => (a ? formatIp(a) : null);

describe("parseResolvConf()", () => {
  test("reads nameservers of both versions, drops zone ids, and the search list", () => {
    const r = parseResolvConf("# c\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\nsearch a.example b.example\noptions edns0\n");
    expect(r.nameservers.map(formatIp)).toEqual(["127.0.0.53", "fe80::1"]);
    expect(r.search).toEqual(["a.example", "b.example"]);
  });

  test("ignores garbage lines and bad addresses", () => {
    const r = parseResolvConf("nameserver\nnameserver 999.1.1.1\nnameserverx 1.2.3.4\n");
    expect(r.nameservers).toEqual([]);
  });
});

describe("buildCtx()", () => {
  test("copies the host: address, prefix, gateway, router link-local, DNS and search", () => {
    const ctx = buildCtx(parseArgs("pasta", []), HOST);
    expect(fmt(ctx.ip4?.addr)).toBe("198.51.100.10");
    expect(ctx.ip4?.prefixLen).toBe(24);
    expect(fmt(ctx.ip4?.gw)).toBe("198.51.100.1");
    expect(fmt(ctx.ip4?.mapHostLoopback)).toBe("198.51.100.1");
    expect(ctx.ip4?.dns.map(formatIp)).toEqual(["198.51.100.53"]);
    expect(fmt(ctx.ip6?.addr)).toBe("2001:db8::10");
    expect(fmt(ctx.ip6?.ourTapLl)).toBe("fe80::1");
    expect(ctx.search).toEqual(["example.org", "example.net"]);
    expect(templateName(HOST, ctx)).toBe("eth0");
  });

  test("a loopback resolver is advertised as the map-host-loopback address and matched to the real one", () => {
    const ctx = buildCtx(parseArgs("pasta", []), { ...HOST, resolvConf: "nameserver 127.0.0.53\n" });
    expect(ctx.ip4?.dns.map(formatIp)).toEqual(["198.51.100.1"]);
    expect(fmt(ctx.ip4?.dnsMatch)).toBe("198.51.100.1");
    expect(fmt(ctx.ip4?.dnsHost)).toBe("127.0.0.53");
  });

  test("with --no-map-gw a loopback resolver cannot be reached and is not advertised", () => {
    const ctx = buildCtx(parseArgs("pasta", ["--no-map-gw"]), { ...HOST, resolvConf: "nameserver 127.0.0.53\n" });
    expect(ctx.ip4?.mapHostLoopback).toBeNull();
    expect(ctx.ip4?.dns).toEqual([]);
  });

  test("--dns-forward is advertised and matched, with the first resolver as the host side", () => {
    const ctx = buildCtx(parseArgs("pasta", ["--dns-forward", "169.254.1.1"]), HOST);
    expect(ctx.ip4?.dns.map(formatIp)).toContain("169.254.1.1");
    expect(fmt(ctx.ip4?.dnsMatch)).toBe("169.254.1.1");
    expect(fmt(ctx.ip4?.dnsHost)).toBe("198.51.100.53");
  });

  test("-a, -g and -D override the host's values", () => {
    const ctx = buildCtx(parseArgs("pasta", ["-a", "203.0.113.7/28", "-g", "203.0.113.1", "-D", "203.0.113.53"]), HOST);
    expect(fmt(ctx.ip4?.addr)).toBe("203.0.113.7");
    expect(ctx.ip4?.prefixLen).toBe(28);
    expect(fmt(ctx.ip4?.gw)).toBe("203.0.113.1");
    expect(ctx.ip4?.dns.map(formatIp)).toEqual(["203.0.113.53"]);
  });

  test("-4 leaves IPv6 out and -6 IPv4", () => {
    expect(buildCtx(parseArgs("pasta", ["-4"]), HOST).ip6).toBeNull();
    expect(buildCtx(parseArgs("pasta", ["-6"]), HOST).ip4).toBeNull();
  });

  test("an IP version whose template has no gateway is left out", () => {
    const ctx = buildCtx(parseArgs("pasta", []), { ...HOST, v4: template(AF_INET, null, [addr("198.51.100.10", 24)]) });
    expect(ctx.ip4).toBeNull();
    expect(ctx.ip6).not.toBeNull();
  });

  test("with no usable template at all, local mode: 169.254.2.1/16 via 169.254.2.2 and router fe80::1", () => {
    const none: HostInfo = { v4: null, v6: null, resolvConf: "" };
    const ctx = buildCtx(parseArgs("pasta", []), none);
    expect(fmt(ctx.ip4?.addr)).toBe("169.254.2.1");
    expect(ctx.ip4?.prefixLen).toBe(16);
    expect(fmt(ctx.ip4?.gw)).toBe("169.254.2.2");
    expect(fmt(ctx.ip6?.gw)).toBe("fe80::1");
    expect(fmt(ctx.ip6?.ourTapLl)).toBe("fe80::1");
    expect(templateName(none, ctx)).toBeNull();
  });

  test("templates without gateways count as none: local mode, and no template name", () => {
    const noGw: HostInfo = {
      v4: template(AF_INET, null, [addr("198.51.100.10", 24)]),
      v6: template(AF_INET6, null, [addr("2001:db8::10", 64)]),
      resolvConf: "",
    };
    const ctx = buildCtx(parseArgs("pasta", []), noGw);
    expect(fmt(ctx.ip4?.addr)).toBe("169.254.2.1");
    expect(ctx.ip4?.ifindex).toBe(0);
    expect(templateName(noGw, ctx)).toBeNull();
  });

  test("the guest's learned addresses start as copies, not aliases of the configuration", () => {
    const conf = parseArgs("pasta", ["-a", "203.0.113.7"]);
    const ctx = buildCtx(conf, HOST);
    ctx.ip4!.addrSeen[3] = 99;
    expect(fmt(conf.addr4)).toBe("203.0.113.7");
    expect(fmt(ctx.ip4?.addr)).toBe("203.0.113.7");
  });
});

describe("runasIds()", () => {
  const files: Record<string, string> = {
    "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nalice:x:1001:1002::/home/alice:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
    "/etc/group": "root:x:0:\nstaff:x:50:\n",
  };
  const read = (p: string): string => {
    const t = files[p];
    if (t === undefined) throw new Error(`ENOENT ${p}`);
    return t;
  };

  test.each<[string | null, [number, number]]>([
    [null, [65534, 65534]],
    ["1000", [1000, 1000]],
    ["1000:2000", [1000, 2000]],
    ["alice", [1001, 1002]],
    ["alice:staff", [1001, 50]],
    ["nobody:50", [65534, 50]],
  ])("--runas %p gives %p", (runas, ids) => {
    expect(runasIds(runas, read)).toEqual(ids);
  });
});
