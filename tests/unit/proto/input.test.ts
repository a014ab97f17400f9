// SPDX-License-Identifier: GPL-2.0-or-later
// input.test.ts - tapInput(): learning the guest's MAC and addresses, dispatch, drops, robustness

import { afterEach, describe, expect, test } from "bun:test";
import type { Ctx } from "../../../src/ctx.ts";
import type { TapSink } from "../../../src/tap/frame.ts";
import { setL4Handlers, tapInput, tapInputBatchEnd } from "../../../src/tap/input.ts";
import { formatIpv4, formatIpv6, formatMac, parseIpv4, parseIpv6, parseMac } from "../../../src/wire/addr.ts";
import { DhcpMessageType, DhcpView } from "../../../src/wire/dhcp.ts";
import { EthernetView, EtherType } from "../../../src/wire/ethernet.ts";
import { IpProtocol, Ipv4View } from "../../../src/wire/ipv4.ts";
import { Ipv6View } from "../../../src/wire/ipv6.ts";
import { TEST_SEED } from "../../harness/setup.ts";
import { expectFrame, FakeTap, fixture } from "../../harness/fake_tap.ts";
import { HOST, testCtx } from "../../harness/ctx.ts";

const GUEST_MAC = "d6:e6:58:3d:e1:d3";

/** An IPv4 frame from the guest MAC: `l4` behind a 20-byte header, then `padding` zero bytes. */
function frame4(protocol: number, l4: readonly number[], o: { src?: string; dst?: string; fragment?: number; padding?: number } = {}): Uint8Array {
  const f = new Uint8Array(34 + l4.length + (o.padding ?? 0));
  EthernetView.emit(f, 0, { dst: parseMac("9a:55:9a:55:9a:55")!, src: parseMac(GUEST_MAC)!, etherType: EtherType.IPV4 });
  Ipv4View.emit(f, 14, {
    src: parseIpv4(o.src ?? "198.51.100.77")!, dst: parseIpv4(o.dst ?? "192.0.2.1")!, protocol, payloadLength: l4.length,
  });
  f.set(l4, 34);
  if (o.fragment !== undefined) {
    f[14 + 6] = o.fragment >> 8;
    f[14 + 7] = o.fragment & 0xff;
    Ipv4View.parse(f.subarray(14))!.fillChecksum();
  }
  return f;
}

/** An IPv6 frame from the guest MAC with `body` (extension headers and L4) after the fixed header. */
function frame6(nextHeader: number, body: readonly number[], o: { src?: string; dst?: string } = {}): Uint8Array {
  const f = new Uint8Array(54 + body.length);
  EthernetView.emit(f, 0, { dst: parseMac("9a:55:9a:55:9a:55")!, src: parseMac(GUEST_MAC)!, etherType: EtherType.IPV6 });
  Ipv6View.emit(f, 14, {
    src: parseIpv6(o.src ?? "2001:db8::77")!, dst: parseIpv6(o.dst ?? "2001:db8:1::1")!, nextHeader, payloadLength: body.length,
  });
  f.set(body, 54);
  return f;
}

const UDP_TO_53 = [0x12, 0x34, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4];
const TCP_HEADER = [0x12, 0x34, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0];

/** Records which handler saw what. */
function recordHandlers(): string[] {
  const seen: string[] = [];
  const note = (name: string) => (ip: Ipv4View | Ipv6View, l4: Uint8Array) => {
    const src = ip instanceof Ipv4View ? formatIpv4(ip.srcAddr) : formatIpv6(ip.srcAddr);
    seen.push(`${name} ${src} ${l4.byteLength}`);
  };
  setL4Handlers({
    tcp4: note("tcp4"), tcp6: note("tcp6"), udp4: note("udp4"), udp6: note("udp6"),
    icmp4: note("icmp4"), icmp6: note("icmp6"), batchEnd: () => seen.push("batchEnd"),
  });
  return seen;
}

afterEach(() => setL4Handlers({}));

describe("tapInput() learning", () => {
  test("tapInput() learns the guest's MAC from the source of any frame, in place", () => {
    const ctx = testCtx();
    const mac = ctx.guestMac;
    tapInput(ctx, new FakeTap(ctx), fixture("ndp_rs.bin"));
    expect(ctx.guestMac).toBe(mac);
    expect(formatMac(ctx.guestMac)).toBe(GUEST_MAC);
  });

  test("tapInput() learns the guest's IPv4 address from its sources, but not from 0.0.0.0", () => {
    const ctx = testCtx();
    tapInput(ctx, new FakeTap(ctx), fixture("dhcp_discover.bin"));
    expect(formatIpv4(ctx.ip4!.addrSeen)).toBe(HOST.addr4);
    tapInput(ctx, new FakeTap(ctx), frame4(IpProtocol.UDP, UDP_TO_53, { src: "198.51.100.77" }));
    expect(formatIpv4(ctx.ip4!.addrSeen)).toBe("198.51.100.77");
  });

  test("tapInput() keeps the IPv4 address given with -a whatever the guest sends from", () => {
    const ctx = testCtx({ argv: ["-a", HOST.addr4] });
    tapInput(ctx, new FakeTap(ctx), frame4(IpProtocol.UDP, UDP_TO_53, { src: "198.51.100.77" }));
    expect(formatIpv4(ctx.ip4!.addrSeen)).toBe(HOST.addr4);
  });

  test("tapInput() learns link-local and global IPv6 sources apart", () => {
    const ctx = testCtx();
    tapInput(ctx, new FakeTap(ctx), fixture("ndp_rs.bin"));
    expect(formatIpv6(ctx.ip6!.addrLlSeen)).toBe("fe80::d4e6:58ff:fe3d:e1d3");
    expect(formatIpv6(ctx.ip6!.addrSeen)).toBe(HOST.addr6);
    tapInput(ctx, new FakeTap(ctx), fixture("ndp_ns.bin"));
    expect(formatIpv6(ctx.ip6!.addrSeen)).toBe("2001:db8::d4e6:58ff:fe3d:e1d3");
  });

  test("tapInput() takes a link-local source as the IPv6 address while none is known (local mode)", () => {
    const ctx = testCtx({ ip6: { addr: "::" } });
    ctx.ip6!.addrSeen.fill(0);
    tapInput(ctx, new FakeTap(ctx), fixture("ndp_rs.bin"));
    expect(formatIpv6(ctx.ip6!.addr)).toBe("fe80::d4e6:58ff:fe3d:e1d3");
    expect(formatIpv6(ctx.ip6!.addrSeen)).toBe("fe80::d4e6:58ff:fe3d:e1d3");
  });
});

describe("tapInput() dispatch", () => {
  test("tapInput() hands TCP, UDP and ICMP to the L4 handlers with the L4 bytes only", () => {
    const seen = recordHandlers();
    const ctx = testCtx();
    const tap = new FakeTap(ctx);
    tap.input(frame4(IpProtocol.UDP, UDP_TO_53, { padding: 20 }));
    tap.input(fixture("tcp_syn.bin"));
    tap.input(fixture("icmp_echo_request.bin"));
    tap.input(frame6(IpProtocol.TCP, TCP_HEADER));
    tap.input(fixture("udp6_echo.bin"));
    tap.input(fixture("icmpv6_echo_request.bin"));
    tapInputBatchEnd();
    expect(seen).toEqual([
      "udp4 198.51.100.77 12",
      "tcp4 198.51.100.10 40",
      "icmp4 198.51.100.10 64",
      "tcp6 2001:db8::77 20",
      expect.stringMatching(/^udp6 /),
      expect.stringMatching(/^icmp6 /),
      "batchEnd",
    ]);
    expect(ctx.stats.dropped()).toBe(0);
  });

  test("tapInput() sends DHCP and DHCPv6 to the local services, not to the UDP handler", () => {
    const seen = recordHandlers();
    const ctx = testCtx();
    const tap = new FakeTap(ctx);
    expect(tap.input(fixture("dhcp_discover.bin"))).toHaveLength(1);
    expect(tap.input(fixture("dhcpv6_solicit.bin"))).toHaveLength(1);
    expect(seen).toEqual([]);
  });

  test("tapInput() counts L4 frames as noHandler until handlers are registered", () => {
    const ctx = testCtx();
    tapInput(ctx, new FakeTap(ctx), fixture("tcp_syn.bin"));
    expect(ctx.stats.drops.get("noHandler")).toBe(1);
  });

  const IPV6_FRAGMENT_HEADER = [IpProtocol.UDP, 0, 0, 0x09, 0, 0, 0, 1, ...UDP_TO_53];
  test.each([
    ["a frame shorter than an Ethernet header", () => new Uint8Array(10), "ethTruncated"],
    ["an unknown EtherType", () => {
      const f = fixture("arp_request.bin");
      f[12] = 0x88;
      f[13] = 0xcc;
      return f;
    }, "etherType"],
    ["an IPv4 first fragment", () => frame4(IpProtocol.UDP, UDP_TO_53, { fragment: 0x2000 }), "ipv4Fragment"],
    ["an IPv4 later fragment", () => frame4(IpProtocol.UDP, UDP_TO_53, { fragment: 0x0010 }), "ipv4Fragment"],
    ["an IPv4 header length below 20", () => {
      const f = frame4(IpProtocol.UDP, UDP_TO_53);
      f[14] = 0x44;
      return f;
    }, "ipv4Malformed"],
    ["an IPv4 total length past the frame", () => {
      const f = frame4(IpProtocol.UDP, UDP_TO_53);
      f[17] = f[17]! + 1;
      return f;
    }, "ipv4Malformed"],
    ["an IPv4 loopback source", () => frame4(IpProtocol.UDP, UDP_TO_53, { src: "127.0.0.1" }), "loopback"],
    ["an IPv4 loopback destination", () => frame4(IpProtocol.TCP, TCP_HEADER, { dst: "127.0.0.1" }), "loopback"],
    ["IGMP", () => frame4(IpProtocol.IGMP, [0x16, 0, 0, 0, 224, 0, 0, 251]), "ipv4Protocol"],
    ["UDP shorter than its header", () => frame4(IpProtocol.UDP, [0, 1, 0, 67]), "l4Truncated"],
    ["an IPv6 fragment", () => frame6(IpProtocol.IPV6_FRAGMENT, IPV6_FRAGMENT_HEADER), "ipv6Fragment"],
    ["an IPv6 payload length short of the frame", () => {
      const f = frame6(IpProtocol.UDP, UDP_TO_53);
      f[19] = f[19]! - 1;
      return f;
    }, "ipv6Malformed"],
    ["an IPv6 loopback destination", () => frame6(IpProtocol.UDP, UDP_TO_53, { dst: "::1" }), "loopback"],
    ["an MLD report", () => fixture("ipv6_mld_report.bin"), "mld"],
    ["IPv6 with no next header", () => frame6(IpProtocol.IPV6_NO_NEXT_HEADER, []), "ipv6NoNextHeader"],
    ["an ICMPv6 message under 8 bytes", () => frame6(IpProtocol.ICMPV6, [128, 0, 0, 0]), "l4Truncated"],
  ])("tapInput() drops %s and counts it", (_name, make, reason) => {
    const ctx = testCtx();
    const tap = new FakeTap(ctx);
    expect(tap.input(make())).toHaveLength(0);
    expect(Object.fromEntries(ctx.stats.drops)).toEqual({ [reason]: 1 });
  });

  test.each([
    ["--no-tcp", "tcp_syn.bin", "tcpDisabled"],
    ["--no-udp", "udp6_echo.bin", "udpDisabled"],
    ["--no-icmp", "icmp_echo_request.bin", "icmpDisabled"],
  ])("tapInput() with %s drops what the option disables", (option, name, reason) => {
    recordHandlers();
    const ctx = testCtx({ argv: [option] });
    tapInput(ctx, new FakeTap(ctx), fixture(name));
    expect(ctx.stats.drops.get(reason)).toBe(1);
  });

  test("tapInput() drops IPv6 when there is no IPv6 context", () => {
    const ctx = testCtx({ ip6: null });
    tapInput(ctx, new FakeTap(ctx), fixture("ndp_rs.bin"));
    expect(ctx.stats.drops.get("ipv6Disabled")).toBe(1);
  });
});

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIXTURES = [
  "arp_request.bin", "dhcp_discover.bin", "dhcp_request.bin", "ndp_rs.bin", "ndp_ns.bin", "ndp_ns_dad.bin",
  "dhcpv6_solicit.bin", "dhcpv6_request.bin", "ipv6_mld_report.bin", "tcp_syn.bin", "tcp_data.bin",
  "udp6_echo.bin", "icmp_echo_request.bin", "icmpv6_echo_request.bin",
];

describe("tapInput() robustness", () => {
  test("tapInput() survives 100,000 random and mutated frames (seed 42), then still answers DHCP", () => {
    recordHandlers();
    const ctx: Ctx = testCtx({ argv: ["--dhcp-dns", "--dhcp-search"], fqdn: "guest.example.org", hostname: "guest" });
    let sent = 0;
    const sink: TapSink = { send: () => (sent++, true) };
    const rand = prng(TEST_SEED);
    const bases = FIXTURES.map(fixture);
    const scratch = new Uint8Array(2048);
    for (let i = 0; i < 100_000; i++) {
      const kind = rand();
      let f: Uint8Array;
      if (kind < 0.2) {
        // Pure noise, any length up to 200 bytes, often with a real EtherType.
        const len = Math.floor(rand() * 200);
        f = scratch.subarray(0, len);
        for (let j = 0; j < len; j++) f[j] = (rand() * 256) | 0;
        if (len > 14 && rand() < 0.7) f.set(rand() < 0.5 ? [0x08, 0x00] : [0x86, 0xdd], 12);
      } else {
        const base = bases[Math.floor(rand() * bases.length)]!;
        // Mutate a copy: flip a few bytes, sometimes cut it short or extend it.
        const extra = rand() < 0.1 ? Math.floor(rand() * 64) : 0;
        const len = rand() < 0.3 ? Math.floor(rand() * (base.byteLength + 1)) : base.byteLength + extra;
        f = scratch.subarray(0, len);
        f.fill(0);
        f.set(base.subarray(0, Math.min(len, base.byteLength)));
        const flips = 1 + Math.floor(rand() * 4);
        for (let j = 0; j < flips && len > 0; j++) f[Math.floor(rand() * len)] = (rand() * 256) | 0;
      }
      tapInput(ctx, sink, f);
    }
    expect(ctx.stats.dropped()).toBeGreaterThan(50_000);
    expect(sent).toBeGreaterThan(0);

    const tap = new FakeTap(ctx);
    const out = tap.input(fixture("dhcp_discover.bin"));
    const payload = expectFrame(out[0]).ipv4({ src: HOST.gw4, dst: HOST.addr4 }).udp({ dstPort: 68 }).payload();
    expect(DhcpView.parse(payload)!.messageType).toBe(DhcpMessageType.OFFER);
  });
});
