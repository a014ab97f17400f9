// SPDX-License-Identifier: GPL-2.0-or-later
// ctx.ts - test run-time contexts: a host with 198.51.100.10/24 and 2001:db8::10/64, as in the fixtures

import { parseArgs } from "../../src/conf.ts";
import { type Ctx, type Ip4Ctx, type Ip6Ctx, Stats } from "../../src/ctx.ts";
import { parseIpv4, parseIpv6, parseMac } from "../../src/wire/addr.ts";

function ip4(text: string): Uint8Array {
  const a = parseIpv4(text);
  if (!a) throw new Error(`bad IPv4 address in test: ${text}`);
  return a;
}
function ip6(text: string): Uint8Array {
  const a = parseIpv6(text);
  if (!a) throw new Error(`bad IPv6 address in test: ${text}`);
  return a;
}

/** Addresses of the test host (the one the 2023 capture in tests/fixtures was made on). */
export const HOST = {
  addr4: "198.51.100.10",
  gw4: "198.51.100.1",
  dns4: "198.51.100.53",
  addr6: "2001:db8::10",
  gw6: "fe80::1",
  dns6: "2001:db8::53",
  search: ["example.org"],
  mtu: 65520,
} as const;

/** MAC the 2023 pasta used (the host's); newest upstream uses 9a:55:9a:55:9a:55. */
export const UPSTREAM_2023_MAC = "92:d3:de:b1:fb:1c";

/** What testCtx() may change; addresses are text. `ip4: null` or `ip6: null` disable that version. */
export interface TestCtxOptions {
  /** Command line after the program name, parsed as pasta's; default none. */
  argv?: readonly string[];
  /** Our MAC; default the configuration's (9a:55:9a:55:9a:55). */
  ourMac?: string;
  ip4?: Partial<Record<"addr" | "gw" | "ourTapAddr", string>> & { prefixLen?: number; dns?: readonly string[] } | null;
  ip6?: Partial<Record<"addr" | "gw" | "ourTapLl", string>> & { prefixLen?: number; dns?: readonly string[] } | null;
  mtu?: number;
  search?: readonly string[];
  hostname?: string | null;
  fqdn?: string | null;
}

/**
 * Returns a fresh Ctx like buildCtx() makes on the test host: 198.51.100.10/24
 * via 198.51.100.1 (also our address), 2001:db8::10/64 via fe80::1 (also our
 * link-local address), DNS 198.51.100.53 and 2001:db8::53, search example.org,
 * MTU 65520, guest MAC unknown (broadcast). Every byte array is new, so tests
 * may compare what the input path learns. Throws on a bad option (tests want to know).
 */
export function testCtx(options: TestCtxOptions = {}): Ctx {
  const conf = parseArgs("pasta", options.argv ?? []);
  let c4: Ip4Ctx | null = null;
  if (options.ip4 !== null) {
    const o = options.ip4 ?? {};
    const addr = ip4(o.addr ?? HOST.addr4);
    const gw = ip4(o.gw ?? HOST.gw4);
    c4 = {
      addr,
      prefixLen: o.prefixLen ?? 24,
      gw,
      addrSeen: new Uint8Array(addr),
      mapHostLoopback: new Uint8Array(gw),
      mapGuestAddr: null,
      ourTapAddr: ip4(o.ourTapAddr ?? o.gw ?? HOST.gw4),
      dns: (o.dns ?? [HOST.dns4]).map(ip4),
      dnsMatch: null,
      dnsHost: null,
      ifindex: 2,
    };
  }
  let c6: Ip6Ctx | null = null;
  if (options.ip6 !== null) {
    const o = options.ip6 ?? {};
    const addr = ip6(o.addr ?? HOST.addr6);
    const gw = ip6(o.gw ?? HOST.gw6);
    c6 = {
      addr,
      prefixLen: o.prefixLen ?? 64,
      gw,
      addrSeen: new Uint8Array(addr),
      addrLlSeen: new Uint8Array(16),
      ourTapLl: ip6(o.ourTapLl ?? o.gw ?? HOST.gw6),
      mapHostLoopback: new Uint8Array(gw),
      mapGuestAddr: null,
      dns: (o.dns ?? [HOST.dns6]).map(ip6),
      dnsMatch: null,
      dnsHost: null,
      ifindex: 2,
    };
  }
  const mac = options.ourMac !== undefined ? parseMac(options.ourMac) : new Uint8Array(conf.mac);
  if (!mac) throw new Error(`bad MAC in test: ${options.ourMac}`);
  return {
    conf,
    mode: conf.mode,
    ourMac: mac,
    guestMac: new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    ip4: c4,
    ip6: c6,
    mtu: options.mtu ?? HOST.mtu,
    search: options.search ?? HOST.search,
    hostname: options.hostname ?? null,
    fqdn: options.fqdn ?? null,
    stats: new Stats(),
  };
}
