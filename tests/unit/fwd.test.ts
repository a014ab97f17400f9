// SPDX-License-Identifier: GPL-2.0-or-later
// fwd.test.ts - NAT rules between the guest's view and the host's, IPv4 and IPv6

import { describe, expect, test } from "bun:test";
import { parseArgs } from "../../src/conf.ts";
import { Stats, type Ctx, type Ip4Ctx, type Ip6Ctx } from "../../src/ctx.ts";
import { guestAccessible, guestDst, hostBindAddr, isDnsFlow, natFromTap, natToTap } from "../../src/fwd.ts";
import { inanyFrom4, inanyFrom6, inanyToString } from "../../src/inany.ts";
import { IpProtocol } from "../../src/wire/ipv4.ts";

const { UDP, TCP, ICMP } = IpProtocol;

function a4(s: string): Uint8Array {
  return Uint8Array.from(s.split(".").map(Number));
}
function a6(s: string): Uint8Array {
  // Enough for the test addresses: groups with at most one "::".
  const [head, tail] = s.includes("::") ? s.split("::") : [s, ""];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const words = [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t].map((w) => parseInt(w, 16));
  const out = new Uint8Array(16);
  words.forEach((w, i) => { out[2 * i] = w >> 8; out[2 * i + 1] = w & 0xff; });
  return out;
}
function in4(s: string): Uint8Array { return inanyFrom4(a4(s), new Uint8Array(16)); }
function in6(s: string): Uint8Array { return inanyFrom6(a6(s), new Uint8Array(16)); }

interface Opts {
  noMapGw?: boolean;
  mapGuest?: boolean;
  dns?: boolean;
  argv?: string[];
}

/** A context: host (and guest) 203.0.113.5 / 2001:db8::5, gateway 198.51.100.1 / fe80::1. */
function makeCtx(o: Opts = {}): Ctx {
  const ip4: Ip4Ctx = {
    addr: a4("203.0.113.5"), prefixLen: 24, gw: a4("198.51.100.1"), addrSeen: a4("203.0.113.5"),
    mapHostLoopback: o.noMapGw ? null : a4("198.51.100.1"),
    mapGuestAddr: o.mapGuest ? a4("198.51.100.2") : null,
    ourTapAddr: a4("198.51.100.1"), dns: [],
    dnsMatch: o.dns ? a4("198.51.100.3") : null, dnsHost: o.dns ? a4("127.0.0.53") : null, ifindex: 2,
  };
  const ip6: Ip6Ctx = {
    addr: a6("2001:db8::5"), prefixLen: 64, gw: a6("fe80::1"), addrSeen: a6("2001:db8::5"),
    addrLlSeen: a6("fe80::5"), ourTapLl: a6("fe80::1"),
    mapHostLoopback: o.noMapGw ? null : a6("fe80::1"),
    mapGuestAddr: o.mapGuest ? a6("2001:db8::2") : null, dns: [],
    dnsMatch: o.dns ? a6("2001:db8::3") : null, dnsHost: o.dns ? a6("2001:db8::53") : null, ifindex: 2,
  };
  return {
    conf: parseArgs("passt", o.argv ?? []), mode: "passt", ourMac: new Uint8Array(6), guestMac: new Uint8Array(6),
    ip4, ip6, mtu: 65520, search: [], hostname: null, fqdn: null, stats: new Stats(),
  };
}

function fromTap(ctx: Ctx, proto: number, dst: Uint8Array, port: number): string | null {
  const out = new Uint8Array(16);
  return natFromTap(ctx, proto, dst, port, out) ? inanyToString(out) : null;
}
function toTap(ctx: Ctx, src: Uint8Array): string | null {
  const out = new Uint8Array(16);
  return natToTap(ctx, src, out) ? inanyToString(out) : null;
}

describe("natFromTap()", () => {
  test.each([
    ["the gateway (map-host-loopback) becomes host 127.0.0.1", in4("198.51.100.1"), "127.0.0.1"],
    ["the IPv6 map-host-loopback address becomes host ::1", in6("fe80::1"), "::1"],
    ["another address is kept (IPv4)", in4("203.0.113.77"), "203.0.113.77"],
    ["another address is kept (IPv6)", in6("2001:db8::77"), "2001:db8::77"],
  ])("%s", (_name, dst, want) => {
    expect(fromTap(makeCtx(), UDP, dst, 9000)).toBe(want);
  });

  test("with --no-map-gw the gateway is not translated", () => {
    const ctx = makeCtx({ noMapGw: true });
    expect(fromTap(ctx, TCP, in4("198.51.100.1"), 80)).toBe("198.51.100.1");
    expect(fromTap(ctx, TCP, in6("fe80::1"), 80)).toBe("fe80::1");
  });

  test("map-guest-addr becomes the host's own address", () => {
    const ctx = makeCtx({ mapGuest: true });
    expect(fromTap(ctx, TCP, in4("198.51.100.2"), 80)).toBe("203.0.113.5");
    expect(fromTap(ctx, UDP, in6("2001:db8::2"), 80)).toBe("2001:db8::5");
    expect(fromTap(makeCtx(), TCP, in4("198.51.100.2"), 80)).toBe("198.51.100.2");
  });

  test("the --dns-forward address on ports 53 and 853 goes to the host resolver, TCP and UDP", () => {
    const ctx = makeCtx({ dns: true });
    for (const proto of [UDP, TCP]) {
      for (const port of [53, 853]) {
        expect(fromTap(ctx, proto, in4("198.51.100.3"), port)).toBe("127.0.0.53");
        expect(fromTap(ctx, proto, in6("2001:db8::3"), port)).toBe("2001:db8::53");
      }
    }
  });

  test("the --dns-forward address on other ports or protocols is not redirected", () => {
    const ctx = makeCtx({ dns: true });
    expect(fromTap(ctx, UDP, in4("198.51.100.3"), 54)).toBe("198.51.100.3");
    expect(fromTap(ctx, ICMP, in4("198.51.100.3"), 53)).toBe("198.51.100.3");
    expect(fromTap(ctx, UDP, in6("2001:db8::3"), 5353)).toBe("2001:db8::3");
  });

  test("without --dns-forward, DNS to the gateway goes to host loopback", () => {
    expect(fromTap(makeCtx(), UDP, in4("198.51.100.1"), 53)).toBe("127.0.0.1");
  });

  test("an unspecified destination or a disabled IP version is refused", () => {
    expect(fromTap(makeCtx(), UDP, in4("0.0.0.0"), 53)).toBeNull();
    expect(fromTap(makeCtx(), UDP, in6("::"), 53)).toBeNull();
    const v6only = { ...makeCtx(), ip4: null };
    expect(fromTap(v6only, UDP, in4("203.0.113.9"), 53)).toBeNull();
    const v4only = { ...makeCtx(), ip6: null };
    expect(fromTap(v4only, UDP, in6("2001:db8::9"), 53)).toBeNull();
  });

  test("isDnsFlow() matches TCP and UDP ports 53 and 853 only", () => {
    expect(isDnsFlow(UDP, 53)).toBe(true);
    expect(isDnsFlow(TCP, 853)).toBe(true);
    expect(isDnsFlow(UDP, 5353)).toBe(false);
    expect(isDnsFlow(ICMP, 53)).toBe(false);
  });
});

describe("natToTap()", () => {
  test("host 127.0.0.1 and ::1 appear as map-host-loopback", () => {
    expect(toTap(makeCtx(), in4("127.0.0.1"))).toBe("198.51.100.1");
    expect(toTap(makeCtx(), in6("::1"))).toBe("fe80::1");
  });

  test("other 127.x sources fall back to our tap address", () => {
    const ctx = makeCtx({ noMapGw: false });
    const ctx2 = { ...ctx, ip4: { ...ctx.ip4!, ourTapAddr: a4("198.51.100.9") } };
    expect(toTap(ctx2, in4("127.0.0.2"))).toBe("198.51.100.9");
  });

  test("with --no-map-gw, loopback sources get the fallback, or are refused without a tap address", () => {
    const ctx = makeCtx({ noMapGw: true });
    expect(toTap(ctx, in4("127.0.0.1"))).toBe("198.51.100.1");
    expect(toTap(ctx, in6("::1"))).toBe("fe80::1");
    const none = { ...ctx, ip4: { ...ctx.ip4!, ourTapAddr: a4("0.0.0.0") } };
    expect(toTap(none, in4("127.0.0.1"))).toBeNull();
  });

  test("the host's own address appears as map-guest-addr when set", () => {
    expect(toTap(makeCtx({ mapGuest: true }), in4("203.0.113.5"))).toBe("198.51.100.2");
    expect(toTap(makeCtx({ mapGuest: true }), in6("2001:db8::5"))).toBe("2001:db8::2");
  });

  test("the host's own address without map-guest-addr falls back to the gateway", () => {
    expect(toTap(makeCtx(), in4("203.0.113.5"))).toBe("198.51.100.1");
    expect(toTap(makeCtx(), in6("2001:db8::5"))).toBe("fe80::1");
  });

  test("unspecified sources are rewritten", () => {
    expect(toTap(makeCtx(), in4("0.0.0.0"))).toBe("198.51.100.1");
    expect(toTap(makeCtx(), in6("::"))).toBe("fe80::1");
  });

  test("other sources are preserved", () => {
    expect(toTap(makeCtx(), in4("203.0.113.77"))).toBe("203.0.113.77");
    expect(toTap(makeCtx(), in6("2001:db8::77"))).toBe("2001:db8::77");
  });

  test("guestAccessible() refuses the guest's observed address", () => {
    const ctx = makeCtx();
    ctx.ip4!.addrSeen.set(a4("203.0.113.6"));
    expect(guestAccessible(ctx, in4("203.0.113.6"))).toBe(false);
    expect(guestAccessible(ctx, in4("203.0.113.7"))).toBe(true);
  });
});

describe("guestDst() and hostBindAddr()", () => {
  test("inbound traffic goes to the guest's observed address of the right version and scope", () => {
    const ctx = makeCtx();
    ctx.ip4!.addrSeen.set(a4("203.0.113.6"));
    const out = new Uint8Array(16);
    expect(guestDst(ctx, in4("198.51.100.1"), out)).toBe(true);
    expect(inanyToString(out)).toBe("203.0.113.6");
    expect(guestDst(ctx, in6("2001:db8::77"), out)).toBe(true);
    expect(inanyToString(out)).toBe("2001:db8::5");
    expect(guestDst(ctx, in6("fe80::1"), out)).toBe(true);
    expect(inanyToString(out)).toBe("fe80::5");
  });

  test("guestDst() fails while the guest's IPv6 address is unknown", () => {
    const ctx = makeCtx();
    ctx.ip6!.addrSeen.fill(0);
    expect(guestDst(ctx, in6("2001:db8::77"), new Uint8Array(16))).toBe(false);
  });

  test("hostBindAddr() uses -o when given, unspecified otherwise", () => {
    const out = new Uint8Array(16);
    expect(hostBindAddr(makeCtx(), in4("1.2.3.4"), out)).toBe(false);
    expect(inanyToString(out)).toBe("0.0.0.0");
    const ctx = makeCtx({ argv: ["-o", "203.0.113.5"] });
    expect(hostBindAddr(ctx, in4("1.2.3.4"), out)).toBe(true);
    expect(inanyToString(out)).toBe("203.0.113.5");
    expect(hostBindAddr(ctx, in6("2001:db8::1"), out)).toBe(false);
    expect(inanyToString(out)).toBe("::");
  });
});
