// SPDX-License-Identifier: GPL-2.0-or-later
// netlink.test.ts - rtnetlink message building, parsing and template choice, without a kernel

import { describe, expect, test } from "bun:test";
import { TEST_SEED } from "../harness/setup.ts";
import {
  AF_INET,
  AF_INET6,
  NLMSG_DONE,
  NLMSG_ERROR,
  NlBuilder,
  RTM_NEWLINK,
  buildGetLinks,
  buildGetRoutes,
  buildNewAddr,
  buildNewRoute,
  buildSetLink,
  parseAddr,
  parseError,
  parseLink,
  parseMessages,
  parseRoute,
  walkAttrs,
  type RouteInfo,
} from "../../src/netlink/msg.ts";
import { chooseTemplate, ipFromString, ipToString, routeIfindex } from "../../src/netlink.ts";

const hex = (s: string) => Uint8Array.from((s.replace(/\s+/g, "").match(/../g) ?? []).map((b) => parseInt(b, 16)));
const ip = (s: string) => {
  const a = ipFromString(s);
  if (!a) throw new Error(`bad test address ${s}`);
  return a;
};

// RTM_NEWLINK for "eth0", ifindex 2, IFF_UP|IFF_BROADCAST|IFF_RUNNING|IFF_MULTICAST, mtu 1500
const LINK_ETH0 = hex(`
  40000000 1000 0200 07000000 00000000
  00 00 0100 02000000 43100100 00000000
  0900 0300 65746830 00 000000
  0800 0400 dc050000
  0a00 0100 020000000001 0000
`);

// RTM_NEWADDR 198.51.100.10/24 on ifindex 2, scope universe, IFA_F_PERMANENT
const ADDR_V4 = hex(`
  28000000 1400 0200 07000000 00000000
  02 18 80 00 02000000
  0800 0100 c633640a
  0800 0200 c633640a
`);

// RTM_NEWADDR 2001:db8::10/64 on ifindex 2 with IFA_FLAGS carrying NODAD|PERMANENT
const ADDR_V6 = hex(`
  34000000 1400 0200 07000000 00000000
  0a 40 80 00 02000000
  1400 0100 20010db8000000000000000000000010
  0800 0800 82000000
`);

// RTM_NEWROUTE default via 198.51.100.1 dev 2, main table, proto boot, metric 100
const ROUTE_DEFAULT_V4 = hex(`
  3c000000 1800 0200 07000000 00000000
  02 00 00 00 fe 03 00 01 00000000
  0800 0f00 fe000000
  0800 0600 64000000
  0800 0500 c6336401
  0800 0400 02000000
`);

// RTM_NEWROUTE default, multipath: via 198.51.100.1 dev 2 weight 1, via 203.0.113.1 dev 3 weight 5
const ROUTE_MULTIPATH_V4 = hex(`
  40000000 1800 0200 07000000 00000000
  02 00 00 00 fe 03 00 01 00000000
  2400 0900
    1000 00 00 02000000  0800 0500 c6336401
    1000 00 04 03000000  0800 0500 cb007101
`);

// NLMSG_ERROR carrying -EEXIST (-17) followed by the start of the original request
const ERROR_EEXIST = hex(`
  24000000 0200 0000 07000000 00000000
  efffffff
  20000000 1400 0506 07000000 00000000
`);

const FIXTURES = { LINK_ETH0, ADDR_V4, ADDR_V6, ROUTE_DEFAULT_V4, ROUTE_MULTIPATH_V4, ERROR_EEXIST };

describe("parsing", () => {
  test("parseMessages() splits a datagram holding a link, an error and a done message", () => {
    const done = hex("14000000 0300 0200 07000000 00000000 00000000");
    const dgram = new Uint8Array([...LINK_ETH0, ...ERROR_EEXIST, ...done]);
    const msgs = parseMessages(dgram);
    expect(msgs.map((m) => m.type)).toEqual([RTM_NEWLINK, NLMSG_ERROR, NLMSG_DONE]);
    expect(msgs.map((m) => m.payload.length)).toEqual([LINK_ETH0.length - 16, ERROR_EEXIST.length - 16, 4]);
    expect(parseError(msgs[1]!.payload)).toBe(-17);
    expect(parseError(msgs[2]!.payload)).toBe(0);
  });

  test("parseLink() reads index, name, flags, MTU and MAC", () => {
    const link = parseLink(parseMessages(LINK_ETH0)[0]!.payload);
    expect(link).toEqual({
      index: 2,
      name: "eth0",
      flags: 0x11043,
      mtu: 1500,
      mac: hex("020000000001"),
    });
  });

  test.each([
    ["IPv4", ADDR_V4, { family: AF_INET, prefixLen: 24, address: "198.51.100.10", scope: 0, flags: 0x80, ifindex: 2 }],
    ["IPv6 with IFA_FLAGS", ADDR_V6, { family: AF_INET6, prefixLen: 64, address: "2001:db8::10", scope: 0, flags: 0x82, ifindex: 2 }],
  ])("parseAddr() reads an %s address", (_name, bytes, want) => {
    const a = parseAddr(parseMessages(bytes)[0]!.payload);
    expect(a === null ? null : { ...a, address: ipToString(a.address) }).toEqual(want);
  });

  test("parseRoute() reads a default route with gateway, table and metric", () => {
    const r = parseRoute(parseMessages(ROUTE_DEFAULT_V4)[0]!.payload);
    expect(r).not.toBeNull();
    expect(ipToString(r!.gateway!)).toBe("198.51.100.1");
    expect([r!.dstLen, r!.oif, r!.table, r!.priority, r!.protocol, r!.nexthops.length]).toEqual([0, 2, 254, 100, 3, 0]);
  });

  test("parseRoute() reads the paths and weights of RTA_MULTIPATH", () => {
    const r = parseRoute(parseMessages(ROUTE_MULTIPATH_V4)[0]!.payload)!;
    expect(r.nexthops.map((h) => [h.ifindex, h.weight, ipToString(h.gateway!)])).toEqual([
      [2, 1, "198.51.100.1"],
      [3, 5, "203.0.113.1"],
    ]);
    expect(routeIfindex(r)).toBe(3);
  });

  test.each([
    ["attribute length below its header", hex("0200 0100")],
    ["attribute running past the end", hex("0c00 0100 00000000")],
  ])("walkAttrs() stops and reports a %s", (_name, bytes) => {
    const seen: number[] = [];
    expect(walkAttrs(bytes, (t) => seen.push(t))).toBe(false);
    expect(seen).toEqual([]);
  });

  test("parseMessages() ends the walk at a header claiming more bytes than the datagram has", () => {
    const cut = LINK_ETH0.subarray(0, LINK_ETH0.length - 1);
    expect(parseMessages(cut)).toEqual([]);
    const short = hex("08000000 1000 0200 07000000 00000000");
    expect(parseMessages(short)).toEqual([]);
  });

  test.each(Object.entries(FIXTURES))("no parser throws on %s truncated at every length", (_name, bytes) => {
    for (let len = 0; len <= bytes.length; len++) {
      const cut = bytes.slice(0, len);
      for (const m of parseMessages(cut)) {
        parseLink(m.payload);
        parseAddr(m.payload);
        parseRoute(m.payload);
        parseError(m.payload);
      }
      parseLink(cut);
      parseAddr(cut);
      parseRoute(cut);
    }
    const full = parseMessages(bytes);
    expect(full.length).toBe(1);
  });

  test("no parser throws on 2000 seeded byte mutations of the fixtures", () => {
    let state = TEST_SEED;
    const rand = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state >>> 8;
    };
    let parsed = 0;
    for (let i = 0; i < 2000; i++) {
      const all = Object.values(FIXTURES);
      const bytes = all[rand() % all.length]!.slice();
      for (let k = 0; k < 3; k++) bytes[rand() % bytes.length] = rand() & 0xff;
      for (const m of parseMessages(bytes)) {
        parsed++;
        parseLink(m.payload);
        parseAddr(m.payload);
        parseRoute(m.payload);
      }
    }
    expect(parsed).toBeGreaterThan(0);
  });

  test("parseRoute() rejects a prefix length longer than the address", () => {
    const bad = ROUTE_DEFAULT_V4.slice();
    bad[17] = 33;
    expect(parseRoute(parseMessages(bad)[0]!.payload)).toBeNull();
  });
});

describe("building", () => {
  const buf = new Uint8Array(512);
  const b = new NlBuilder(buf);

  test.each([
    ["RTM_GETLINK dump", () => buildGetLinks(b, 1), "20000000 1200 0103 01000000 00000000  00000000 00000000 00000000 00000000"],
    ["RTM_GETROUTE dump for IPv6", () => buildGetRoutes(b, 2, AF_INET6), "1c000000 1a00 0103 02000000 00000000  0a 00 00 00 00 00 00 00 00000000"],
  ])("builds the %s request", (_name, build, want) => {
    expect(buf.slice(0, build())).toEqual(hex(want));
  });

  test("buildSetLink() sets IFF_UP in flags and change, then IFLA_MTU and IFLA_ADDRESS", () => {
    const len = buildSetLink(b, 9, 5, { up: true, mtu: 65520, mac: hex("9a55aa000001") });
    expect(buf.slice(0, len)).toEqual(
      hex(`
      34000000 1000 0500 09000000 00000000
      00 00 0000 05000000 01000000 01000000
      0800 0400 f0ff0000
      0a00 0100 9a55aa000001 0000
    `),
    );
  });

  test("buildNewAddr() writes IFA_LOCAL and IFA_ADDRESS for IPv4 and asks to create exclusively", () => {
    const len = buildNewAddr(b, 3, { family: AF_INET, index: 2, address: ip("198.51.100.10"), prefixLen: 24 });
    expect(buf.slice(0, len)).toEqual(
      hex(`
      28000000 1400 0506 03000000 00000000
      02 18 00 00 02000000
      0800 0200 c633640a
      0800 0100 c633640a
    `),
    );
  });

  test("buildNewAddr() sets IFA_F_NODAD on IPv6 addresses", () => {
    const len = buildNewAddr(b, 4, { family: AF_INET6, index: 7, address: ip("2001:db8::10"), prefixLen: 64 });
    const msg = parseMessages(buf.slice(0, len))[0]!;
    expect(msg.payload[2]).toBe(0x02);
    const a = parseAddr(msg.payload)!;
    expect([ipToString(a.address), a.prefixLen, a.ifindex]).toEqual(["2001:db8::10", 64, 7]);
  });

  test("buildNewRoute() writes a default route via a gateway in the main table", () => {
    const len = buildNewRoute(b, 5, { family: AF_INET, oif: 2, gateway: ip("198.51.100.1") });
    expect(buf.slice(0, len)).toEqual(
      hex(`
      2c000000 1800 0506 05000000 00000000
      02 00 00 00 fe 03 00 01 00000000
      0800 0400 02000000
      0800 0500 c6336401
    `),
    );
  });

  test("buildNewRoute() gives a gatewayless prefix route link scope", () => {
    const len = buildNewRoute(b, 6, { family: AF_INET, dst: ip("203.0.113.0"), dstLen: 24, oif: 2 });
    const r = parseRoute(parseMessages(buf.slice(0, len))[0]!.payload)!;
    expect([ipToString(r.dst), r.dstLen, r.scope, r.gateway, r.oif]).toEqual(["203.0.113.0", 24, 253, null, 2]);
  });

  test("buildNewRoute() output with nexthops parses back to the same paths", () => {
    const nexthops = [
      { ifindex: 4, weight: 1, gateway: ip("198.51.100.1") },
      { ifindex: 4, weight: 3, gateway: ip("198.51.100.2") },
    ];
    const len = buildNewRoute(b, 7, { family: AF_INET, oif: 4, nexthops });
    const r = parseRoute(parseMessages(buf.slice(0, len))[0]!.payload)!;
    expect(r.nexthops).toEqual(nexthops);
  });

  test("NlBuilder throws RangeError when the request does not fit", () => {
    const small = new NlBuilder(new Uint8Array(24));
    expect(() => buildGetLinks(small, 1)).toThrow(RangeError);
  });
});

describe("template choice", () => {
  const route = (f: Partial<RouteInfo>): RouteInfo => ({
    family: AF_INET,
    dst: new Uint8Array(4),
    dstLen: 0,
    gateway: null,
    oif: 0,
    table: 254,
    protocol: 3,
    scope: 0,
    type: 1,
    priority: 0,
    nexthops: [],
    ...f,
  });

  test.each([
    ["the first default route wins", [route({ dstLen: 24, oif: 3 }), route({ oif: 2 }), route({ oif: 4 })], 2],
    [
      "a multipath default picks its highest weight",
      [
        route({
          nexthops: [
            { ifindex: 2, weight: 1, gateway: null },
            { ifindex: 5, weight: 9, gateway: null },
          ],
        }),
      ],
      5,
    ],
    ["without a default, the only interface with routes", [route({ dstLen: 24, oif: 3 }), route({ dstLen: 16, oif: 3 })], 3],
    ["two interfaces with routes and no default: none", [route({ dstLen: 24, oif: 3 }), route({ dstLen: 24, oif: 4 })], 0],
    ["loopback routes do not count", [route({ dstLen: 8, oif: 1 })], 0],
    ["link-local prefixes do not count", [route({ dstLen: 16, oif: 3, dst: ip("169.254.0.0") }), route({ dstLen: 24, oif: 4 })], 4],
    ["no routes at all: local mode", [], 0],
  ] as const)("chooseTemplate(): %s", (_name, routes, want) => {
    expect(chooseTemplate(routes)).toBe(want);
  });
});

describe("address text", () => {
  test.each([
    ["198.51.100.10", "198.51.100.10"],
    ["2001:db8::10", "2001:db8::10"],
    ["2001:0db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["::", "::"],
    ["fe80::1", "fe80::1"],
    ["2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6"],
  ])("ipFromString(%p) formats back as %p", (text, want) => {
    expect(ipToString(ip(text))).toBe(want);
  });

  test.each(["1.2.3", "256.1.1.1", "1::2::3", "2001:db8:1:2:3:4:5:6:7", "g::1", ""])("ipFromString(%p) is null", (s) => {
    expect(ipFromString(s)).toBeNull();
  });
});
