// SPDX-License-Identifier: GPL-2.0-or-later
// dhcp.test.ts - the DHCP server end to end through tapInput(), against the 2023 upstream capture

import { describe, expect, test } from "bun:test";
import { formatIpv4, parseIpv4 } from "../../../src/wire/addr.ts";
import { DhcpMessageType, DhcpOption, DhcpOptionCursor, DhcpView } from "../../../src/wire/dhcp.ts";
import { decodeNameList } from "../../../src/wire/dnsname.ts";
import { IpProtocol, Ipv4View } from "../../../src/wire/ipv4.ts";
import { expectFrame, FakeTap, fixture } from "../../harness/fake_tap.ts";
import { HOST, testCtx, UPSTREAM_2023_MAC } from "../../harness/ctx.ts";

const GUEST_MAC = "d6:e6:58:3d:e1:d3";
const OUR_MAC = "9a:55:9a:55:9a:55";
const XID = 0xa7e72359;
// Offsets in the fixtures: Ethernet 14, IPv4 20, UDP 8, then the message.
const L3 = 14, UDP = 34, MSG = 42, FLAGS = MSG + 10, OPTIONS = MSG + 240;

/** Returns the DHCP message of the single frame in `out`, after checking its headers. */
function reply(out: Uint8Array[], dst: string = HOST.addr4): DhcpView {
  expect(out).toHaveLength(1);
  const payload = expectFrame(out[0])
    .ether({ src: OUR_MAC, dst: GUEST_MAC })
    .ipv4({ src: HOST.gw4, dst, protocol: IpProtocol.UDP, ttl: 255, dontFragment: true, identification: 0 })
    .udp({ srcPort: 67, dstPort: 68, checksum: "zero" })
    .payload();
  const m = DhcpView.parse(payload);
  expect(m).not.toBeNull();
  return m!;
}

/** Returns the option codes of `m`, in order. */
function codes(m: DhcpView): number[] {
  const list: number[] = [];
  const c = m.options();
  while (c.next()) list.push(c.code);
  return list;
}

/**
 * Returns the discover fixture with its options replaced by `options` ([code,
 * value] pairs, written in order, then the end option), lengths and the IPv4
 * checksum fixed, UDP checksum zero.
 */
function request(options: ReadonlyArray<readonly [number, readonly number[]]>, patch?: (f: Uint8Array) => void): Uint8Array {
  const base = fixture("dhcp_discover.bin");
  const opts: number[] = [];
  for (const [code, value] of options) opts.push(code, value.length, ...value);
  opts.push(DhcpOption.END);
  const len = Math.max(base.byteLength, OPTIONS + opts.length);
  const f = new Uint8Array(len);
  f.set(base.subarray(0, OPTIONS));
  f.set(opts, OPTIONS);
  patch?.(f);
  const ip = Ipv4View.parse(f.subarray(L3))!;
  ip.totalLength = len - L3;
  ip.fillChecksum();
  f[UDP + 4] = (len - UDP) >> 8;
  f[UDP + 5] = (len - UDP) & 0xff;
  f[UDP + 6] = 0;
  f[UDP + 7] = 0;
  return f;
}

const TYPE = (t: number) => [DhcpOption.MESSAGE_TYPE, [t]] as const;

describe("dhcp()", () => {
  test("dhcp() answers the captured DISCOVER with an OFFER of the host's address", () => {
    const ctx = testCtx();
    const tap = new FakeTap(ctx);
    const out = tap.input(fixture("dhcp_discover.bin"));
    tap.check("dhcp_offer", () => {
      const m = reply(out);
      expect(m.op).toBe(2);
      expect(m.xid).toBe(XID);
      expect(formatIpv4(m.yiaddr)).toBe(HOST.addr4);
      expect(m.chaddr).toEqual(Uint8Array.from([0xd6, 0xe6, 0x58, 0x3d, 0xe1, 0xd3]));
      expect(m.messageType).toBe(DhcpMessageType.OFFER);
      expect(formatIpv4(m.findOption(DhcpOption.SUBNET_MASK)!)).toBe("255.255.255.0");
      expect(formatIpv4(m.findOption(DhcpOption.ROUTER)!)).toBe(HOST.gw4);
      expect(formatIpv4(m.serverId!)).toBe(HOST.gw4);
      expect(m.findOption(DhcpOption.LEASE_TIME)).toEqual(Uint8Array.of(0xff, 0xff, 0xff, 0xff));
      expect(m.findOption(DhcpOption.MTU)).toEqual(Uint8Array.of(0xff, 0xf0));
      // pasta sends no DNS or search list unless --dhcp-dns / --dhcp-search.
      expect(m.findOption(DhcpOption.DNS)).toBeNull();
      // Option 53 first (the request list lacks it), then requested 1 and 3, then the rest ascending.
      expect(codes(m)).toEqual([53, 1, 3, 26, 51, 54]);
      expect(m.bytes.byteLength).toBe(300);
    });
  });

  test("dhcp() offers what the 2023 capture offered, option by option", () => {
    // Differences from the capture, all deliberate (newest upstream):
    //  - option 53 now goes first when the parameter request list lacks it;
    //  - the IPv4 header has DF set (tap_push_ip4h() since 2023);
    //  - the source MAC is ours (9a:55:...), not the host's.
    const ctx = testCtx({ ourMac: UPSTREAM_2023_MAC });
    const tap = new FakeTap(ctx);
    const ours = DhcpView.parse(tap.input(fixture("dhcp_discover.bin"))[0]!.subarray(MSG))!;
    const theirs = DhcpView.parse(fixture("dhcp_offer.bin").subarray(MSG))!;
    expect(ours.bytes.subarray(0, 240)).toEqual(theirs.bytes.subarray(0, 240));
    expect([...codes(ours)].sort((a, b) => a - b)).toEqual(codes(theirs));
    for (const code of codes(theirs)) expect(ours.findOption(code)).toEqual(theirs.findOption(code));
    expect(ours.bytes.byteLength).toBe(theirs.bytes.byteLength);
    const upstream = fixture("dhcp_offer.bin");
    expect(tap.sent[0]!.subarray(0, L3)).toEqual(upstream.subarray(0, L3));
  });

  test("dhcp() acknowledges the captured REQUEST as the 2023 capture did", () => {
    const ctx = testCtx({ ourMac: UPSTREAM_2023_MAC });
    const tap = new FakeTap(ctx);
    tap.input(fixture("dhcp_discover.bin"));
    const out = tap.input(fixture("dhcp_request.bin"));
    const ours = DhcpView.parse(out[0]!.subarray(MSG))!;
    const theirs = DhcpView.parse(fixture("dhcp_ack.bin").subarray(MSG))!;
    expect(ours.messageType).toBe(DhcpMessageType.ACK);
    expect(ours.bytes.subarray(0, 240)).toEqual(theirs.bytes.subarray(0, 240));
    for (const code of codes(theirs)) expect(ours.findOption(code)).toEqual(theirs.findOption(code));
  });

  test("dhcp() sends to the broadcast address when the client sets the broadcast flag", () => {
    const ctx = testCtx();
    const f = fixture("dhcp_discover.bin");
    f[FLAGS] = 0x80;
    const m = reply(new FakeTap(ctx).input(f), "255.255.255.255");
    expect(m.broadcast).toBe(true);
  });

  test("dhcp() sends DNS servers and the search list with --dhcp-dns and --dhcp-search", () => {
    const ctx = testCtx({ argv: ["--dhcp-dns", "--dhcp-search"], search: ["example.org", "lab.example.org"] });
    const m = reply(new FakeTap(ctx).input(fixture("dhcp_discover.bin")));
    expect(formatIpv4(m.findOption(DhcpOption.DNS)!)).toBe(HOST.dns4);
    const search = m.findOption(DhcpOption.DOMAIN_SEARCH)!;
    expect(decodeNameList(search, { compression: true })).toEqual(["example.org", "lab.example.org"]);
    // DNS was requested (option 55 lists 6): it follows 1 and 3.
    expect(codes(m).slice(0, 4)).toEqual([53, 1, 3, 6]);
  });

  test("dhcp() sends the host name and FQDN options when they are set", () => {
    const ctx = testCtx({ hostname: "guest", fqdn: "guest.example.org" });
    const m = reply(new FakeTap(ctx).input(fixture("dhcp_discover.bin")));
    expect(new TextDecoder().decode(m.findOption(DhcpOption.HOSTNAME)!)).toBe("guest");
    const fqdn = m.findOption(DhcpOption.FQDN)!;
    expect([...fqdn.subarray(0, 3)]).toEqual([0x04, 255, 255]);
    expect(decodeNameList(fqdn.subarray(3))).toEqual(["guest.example.org"]);
  });

  test("dhcp() leaves the MTU option out when the MTU is 0", () => {
    const m = reply(new FakeTap(testCtx({ mtu: 0 })).input(fixture("dhcp_discover.bin")));
    expect(m.findOption(DhcpOption.MTU)).toBeNull();
  });

  test("dhcp() acknowledges a DISCOVER with Rapid Commit at once, echoing option 80", () => {
    const ctx = testCtx();
    const m = reply(new FakeTap(ctx).input(request([TYPE(DhcpMessageType.DISCOVER), [80, []]])));
    expect(m.messageType).toBe(DhcpMessageType.ACK);
    expect(m.findOption(80)).toEqual(new Uint8Array(0));
  });

  test("dhcp() adds classless static routes when the gateway is off the guest's subnet", () => {
    const ctx = testCtx({ ip4: { addr: "198.51.100.10", prefixLen: 32, gw: "198.51.100.1" } });
    const m = reply(new FakeTap(ctx).input(fixture("dhcp_discover.bin")));
    expect(formatIpv4(m.findOption(DhcpOption.SUBNET_MASK)!)).toBe("255.255.255.255");
    // 198.51.100.1/32 via 0.0.0.0, then 0.0.0.0/0 via 198.51.100.1 (RFC 3442).
    expect([...m.findOption(121)!]).toEqual([32, 198, 51, 100, 1, 0, 0, 0, 0, 0, 198, 51, 100, 1]);
  });

  test("dhcp() acknowledges a REQUEST for another address with the host's address: upstream never NAKs", () => {
    const ctx = testCtx();
    const out = new FakeTap(ctx).input(
      request([TYPE(DhcpMessageType.REQUEST), [DhcpOption.REQUESTED_ADDRESS, [...parseIpv4("198.51.100.99")!]]]),
    );
    const m = reply(out);
    expect(m.messageType).toBe(DhcpMessageType.ACK);
    expect(formatIpv4(m.yiaddr)).toBe(HOST.addr4);
  });

  test("dhcp() acknowledges a BOOTP request without a message type", () => {
    const m = reply(new FakeTap(testCtx()).input(request([])));
    expect(m.messageType).toBe(DhcpMessageType.ACK);
    // No parameter request list: options ascending, 53 among them.
    expect(codes(m)).toEqual([1, 3, 26, 51, 53, 54]);
  });

  test.each([
    ["DECLINE", DhcpMessageType.DECLINE],
    ["RELEASE", DhcpMessageType.RELEASE],
    ["INFORM", DhcpMessageType.INFORM],
    ["an unknown type", 42],
  ])("dhcp() ignores %s and counts it", (_name, type) => {
    const ctx = testCtx();
    expect(new FakeTap(ctx).input(request([TYPE(type)]))).toHaveLength(0);
    expect(ctx.stats.drops.get("dhcpIgnored")).toBe(1);
  });

  test.each([
    ["an option running past the end", () => {
      const f = request([TYPE(DhcpMessageType.DISCOVER)]);
      f[OPTIONS + 3] = 12;
      f[OPTIONS + 4] = 200;
      return f;
    }],
    ["a BOOTREPLY", () => request([TYPE(DhcpMessageType.DISCOVER)], (f) => (f[MSG] = 2))],
    ["a UDP length shorter than the datagram", () => {
      const f = fixture("dhcp_discover.bin");
      f[UDP + 5] = f[UDP + 5]! - 1;
      return f;
    }],
    ["a message shorter than the fixed fields", () => {
      const f = fixture("dhcp_discover.bin").subarray(0, MSG + 200);
      f[L3 + 2] = 0;
      f[L3 + 3] = f.byteLength - L3;
      Ipv4View.parse(f.subarray(L3))!.fillChecksum();
      f[UDP + 4] = 0;
      f[UDP + 5] = 208;
      return f;
    }],
  ])("dhcp() drops %s and counts it", (_name, make) => {
    const ctx = testCtx();
    expect(new FakeTap(ctx).input(make())).toHaveLength(0);
    expect(ctx.stats.drops.get("dhcpMalformed")).toBe(1);
  });

  test("dhcp() answers nothing with --no-dhcp, and the datagram does not reach the UDP handler", () => {
    const ctx = testCtx({ argv: ["--no-dhcp"] });
    expect(new FakeTap(ctx).input(fixture("dhcp_discover.bin"))).toHaveLength(0);
    expect(ctx.stats.drops.get("dhcpDisabled")).toBe(1);
    expect(ctx.stats.drops.get("noHandler")).toBeUndefined();
  });

  test("dhcp() options stay within 307 bytes, leaving out a search list that does not fit", () => {
    const search = Array.from({ length: 6 }, (_, i) => `${"x".repeat(60)}${i}.${"y".repeat(60)}.example`);
    const ctx = testCtx({ argv: ["--dhcp-search"], search });
    const m = reply(new FakeTap(ctx).input(fixture("dhcp_discover.bin")));
    expect(m.findOption(DhcpOption.DOMAIN_SEARCH)).toBeNull();
    expect(m.messageType).toBe(DhcpMessageType.OFFER);
    const c = new DhcpOptionCursor().reset(m.bytes, 240, m.bytes.byteLength);
    while (c.next());
    expect(c.malformed).toBe(false);
  });
});
