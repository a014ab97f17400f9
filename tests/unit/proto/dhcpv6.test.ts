// SPDX-License-Identifier: GPL-2.0-or-later
// dhcpv6.test.ts - the DHCPv6 server end to end through tapInput(), against the 2023 upstream capture

import { beforeEach, describe, expect, test } from "bun:test";
import { dhcpv6Init } from "../../../src/proto/dhcpv6.ts";
import { formatIpv6, parseIpv6, parseMac } from "../../../src/wire/addr.ts";
import {
  Dhcpv6IaAddressView, Dhcpv6IaNaView, Dhcpv6MessageType, Dhcpv6Option, Dhcpv6Status, Dhcpv6View, statusCode,
  statusMessage,
} from "../../../src/wire/dhcpv6.ts";
import { decodeNameList } from "../../../src/wire/dnsname.ts";
import { EthernetView, EtherType } from "../../../src/wire/ethernet.ts";
import { IpProtocol } from "../../../src/wire/ipv4.ts";
import { Ipv6View } from "../../../src/wire/ipv6.ts";
import { UdpView } from "../../../src/wire/udp.ts";
import { expectFrame, FakeTap, fixture } from "../../harness/fake_tap.ts";
import { HOST, testCtx, UPSTREAM_2023_MAC } from "../../harness/ctx.ts";

const GUEST_MAC = "d6:e6:58:3d:e1:d3";
const GUEST_LL = "fe80::d4e6:58ff:fe3d:e1d3";
const OUR_MAC = "9a:55:9a:55:9a:55";
const UPSTREAM_2023_LL = "fe80::90d3:deff:feb1:fb1c";
/** The 2023 server's DUID-LLT time, seconds since 2000: 0x329b6a47. */
const UPSTREAM_2023_DUID_MS = (0x329b6a47 + 946684800) * 1000;
const CLIENT_DUID = [0, 1, 0, 1, 0x32, 0x9b, 0x6a, 0x4b, 0xd6, 0xe6, 0x58, 0x3d, 0xe1, 0xd3];
const IAID = [0x58, 0x3d, 0xe1, 0xd3];
const MSG = 14 + 40 + 8;
const INFINITE = 0xffffffff;

function be16(v: number): number[] {
  return [v >> 8, v & 0xff];
}
function be32(v: number): number[] {
  return [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}
/** One option: code, length, value. */
function opt(code: number, value: readonly number[]): number[] {
  return [...be16(code), ...be16(value.length), ...value];
}
function iaNa(addresses: readonly string[] = [], iaid = IAID): number[] {
  const nested = addresses.flatMap((a) => opt(Dhcpv6Option.IA_ADDRESS, [...parseIpv6(a)!, ...be32(7200), ...be32(7500)]));
  return opt(Dhcpv6Option.IA_NA, [...iaid, ...be32(3600), ...be32(5400), ...nested]);
}

/** Returns a frame from the guest's link-local address to `dst` port 547 carrying `type` and `options`. */
function message(type: number, options: readonly number[], dst = "ff02::1:2"): Uint8Array {
  const payload = [type, 0x12, 0x34, 0x56, ...options];
  const f = new Uint8Array(MSG + payload.length);
  const src = parseIpv6(GUEST_LL)!;
  const dstAddr = parseIpv6(dst)!;
  EthernetView.emit(f, 0, { dst: parseMac("33:33:00:01:00:02")!, src: parseMac(GUEST_MAC)!, etherType: EtherType.IPV6 });
  Ipv6View.emit(f, 14, { src, dst: dstAddr, nextHeader: IpProtocol.UDP, payloadLength: 8 + payload.length, hopLimit: 1 });
  f.set(payload, MSG);
  UdpView.emit(f, 54, { srcPort: 546, dstPort: 547, payloadLength: payload.length, src, dst: dstAddr });
  return f;
}

/** Checks the headers of the one frame in `out`, an answer to the guest, and returns the DHCPv6 view. */
function answer(out: Uint8Array[], type: number): Dhcpv6View {
  expect(out).toHaveLength(1);
  const payload = expectFrame(out[0])
    .ether({ src: OUR_MAC, dst: GUEST_MAC })
    .ipv6({ src: HOST.gw6, dst: GUEST_LL, nextHeader: IpProtocol.UDP, hopLimit: 255 })
    .udp({ srcPort: 547, dstPort: 546, checksum: "valid" })
    .payload();
  const m = Dhcpv6View.parse(payload)!;
  expect(m.messageType).toBe(type);
  expect(m.optionsMalformed).toBe(false);
  return m;
}

/** Returns the address option inside the IA_NA of `m`, or null. */
function leased(m: Dhcpv6View): Dhcpv6IaAddressView | null {
  const ia = Dhcpv6IaNaView.parse(m.iaNa!)!;
  const a = ia.firstAddress;
  return a ? Dhcpv6IaAddressView.parse(a) : null;
}

function codes(m: Dhcpv6View): number[] {
  const list: number[] = [];
  const c = m.options();
  while (c.next()) list.push(c.code);
  return list;
}

const NOW_MS = Date.UTC(2026, 6, 1);
let ctx = testCtx();
let tap = new FakeTap(ctx);
beforeEach(() => {
  ctx = testCtx();
  tap = new FakeTap(ctx);
  dhcpv6Init(ctx, NOW_MS);
});

/** Our DUID-LLT for NOW_MS and 9a:55:9a:55:9a:55. */
function ourDuid(): number[] {
  return [0, 1, 0, 1, ...be32(Math.floor(NOW_MS / 1000) - 946684800), 0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55];
}

describe("dhcpv6()", () => {
  test("dhcpv6() answers the captured SOLICIT with an ADVERTISE of the host's address, forever", () => {
    const out = tap.input(fixture("dhcpv6_solicit.bin"));
    tap.check("dhcpv6_advertise", () => {
      const m = answer(out, Dhcpv6MessageType.ADVERTISE);
      expect(m.xid).toBe(0x0d0912);
      expect([...m.serverId!]).toEqual(ourDuid());
      expect([...m.clientId!]).toEqual(CLIENT_DUID);
      const ia = Dhcpv6IaNaView.parse(m.iaNa!)!;
      expect(ia.iaid).toBe(0x583de1d3);
      expect([ia.t1S, ia.t2S]).toEqual([INFINITE, INFINITE]);
      const a = leased(m)!;
      expect(formatIpv6(a.address)).toBe(HOST.addr6);
      expect([a.preferredLifetimeS, a.validLifetimeS]).toEqual([INFINITE, INFINITE]);
      expect(codes(m)).toEqual([Dhcpv6Option.SERVER_ID, Dhcpv6Option.IA_NA, Dhcpv6Option.CLIENT_ID]);
      // The flow label is upstream's reading of the transaction ID: 0x0d0912 -> 0x2090d.
      expectFrame(out[0]).ipv6({ flowLabel: 0x2090d });
    });
  });

  test("dhcpv6() answers the captured SOLICIT and REQUEST byte for byte as in 2023, given its MAC, address and DUID time", () => {
    // With the 2023 MAC, link-local address and DUID time, nothing differs:
    // the newest upstream answers these two messages as the 2023 one did.
    const old = testCtx({ ourMac: UPSTREAM_2023_MAC, ip6: { ourTapLl: UPSTREAM_2023_LL } });
    const oldTap = new FakeTap(old);
    dhcpv6Init(old, UPSTREAM_2023_DUID_MS);
    oldTap.check("dhcpv6_2023", () => {
      expect(oldTap.input(fixture("dhcpv6_solicit.bin"))).toEqual([fixture("dhcpv6_advertise.bin")]);
      expect(oldTap.input(fixture("dhcpv6_request.bin"))).toEqual([fixture("dhcpv6_reply.bin")]);
    });
    expect(formatIpv6(old.ip6!.addrSeen)).toBe(HOST.addr6);
  });

  test("dhcpv6() ignores the captured REQUEST when it names another server", () => {
    expect(tap.input(fixture("dhcpv6_request.bin"))).toHaveLength(0);
    expect(ctx.stats.drops.get("dhcpv6Ignored")).toBe(1);
  });

  test("dhcpv6() replies to a REQUEST naming us, and takes the host's address as the guest's", () => {
    ctx.ip6!.addrSeen.fill(0);
    const out = tap.input(message(Dhcpv6MessageType.REQUEST, [
      ...opt(Dhcpv6Option.CLIENT_ID, CLIENT_DUID), ...opt(Dhcpv6Option.SERVER_ID, ourDuid()), ...iaNa([HOST.addr6]),
    ]));
    const m = answer(out, Dhcpv6MessageType.REPLY);
    expect(formatIpv6(leased(m)!.address)).toBe(HOST.addr6);
    expect(formatIpv6(ctx.ip6!.addrSeen)).toBe(HOST.addr6);
  });

  test.each([
    ["REQUEST", Dhcpv6MessageType.REQUEST, true],
    ["RENEW", Dhcpv6MessageType.RENEW, true],
    ["CONFIRM", Dhcpv6MessageType.CONFIRM, false],
  ])("dhcpv6() answers a %s for another address with NotOnLink inside the client's IA", (_name, type, named) => {
    const out = tap.input(message(type, [
      ...opt(Dhcpv6Option.CLIENT_ID, CLIENT_DUID),
      ...(named ? opt(Dhcpv6Option.SERVER_ID, ourDuid()) : []),
      ...iaNa(["2001:db8::99"]),
    ]));
    const m = answer(out, Dhcpv6MessageType.REPLY);
    expect(codes(m)).toEqual([Dhcpv6Option.SERVER_ID, Dhcpv6Option.IA_NA, Dhcpv6Option.CLIENT_ID]);
    const ia = Dhcpv6IaNaView.parse(m.iaNa!)!;
    expect([ia.iaid, ia.t1S, ia.t2S]).toEqual([0x583de1d3, 3600, 5400]);
    expect(ia.firstAddress).toBeNull();
    const status = ia.findOption(Dhcpv6Option.STATUS_CODE)!;
    expect(statusCode(status)).toBe(Dhcpv6Status.NOT_ON_LINK);
    expect(statusMessage(status)).toBe("Prefix not appropriate for link.");
  });

  test("dhcpv6() confirms the host's address with a REPLY", () => {
    const out = tap.input(message(Dhcpv6MessageType.CONFIRM, [...opt(Dhcpv6Option.CLIENT_ID, CLIENT_DUID), ...iaNa([HOST.addr6])]));
    expect(formatIpv6(leased(answer(out, Dhcpv6MessageType.REPLY))!.address)).toBe(HOST.addr6);
  });

  test("dhcpv6() answers INFORMATION-REQUEST with DNS servers and the search list", () => {
    ctx = testCtx({ argv: ["--dhcp-dns", "--dhcp-search"] });
    tap = new FakeTap(ctx);
    const out = tap.input(message(Dhcpv6MessageType.INFORMATION_REQUEST, opt(Dhcpv6Option.CLIENT_ID, CLIENT_DUID)));
    const m = answer(out, Dhcpv6MessageType.REPLY);
    expect(formatIpv6(m.dnsServers!)).toBe(HOST.dns6);
    expect(decodeNameList(m.domainList!)).toEqual(["example.org"]);
    expect(m.xid).toBe(0x123456);
  });

  test("dhcpv6() sends our FQDN, with the O flag when the client asked us to update (S)", () => {
    ctx = testCtx({ fqdn: "guest.example.org" });
    tap = new FakeTap(ctx);
    const out = tap.input(message(Dhcpv6MessageType.SOLICIT, [
      ...opt(Dhcpv6Option.CLIENT_ID, CLIENT_DUID), ...iaNa(), ...opt(Dhcpv6Option.CLIENT_FQDN, [0x01, 0]),
    ]));
    const fqdn = answer(out, Dhcpv6MessageType.ADVERTISE).fqdn!;
    expect(fqdn[0]).toBe(0x02);
    expect(decodeNameList(fqdn.subarray(1))).toEqual(["guest.example.org"]);
  });

  test.each([
    ["a SOLICIT naming a server", Dhcpv6MessageType.SOLICIT, () => [...opt(Dhcpv6Option.CLIENT_ID, CLIENT_DUID), ...opt(Dhcpv6Option.SERVER_ID, ourDuid())]],
    ["a CONFIRM naming a server", Dhcpv6MessageType.CONFIRM, () => [...opt(Dhcpv6Option.CLIENT_ID, CLIENT_DUID), ...opt(Dhcpv6Option.SERVER_ID, ourDuid())]],
    ["a REBIND naming no server", Dhcpv6MessageType.REBIND, () => opt(Dhcpv6Option.CLIENT_ID, CLIENT_DUID)],
    ["an INFORMATION-REQUEST with an IA_NA", Dhcpv6MessageType.INFORMATION_REQUEST, () => [...opt(Dhcpv6Option.CLIENT_ID, CLIENT_DUID), ...iaNa()]],
    ["a RELEASE", Dhcpv6MessageType.RELEASE, () => [...opt(Dhcpv6Option.CLIENT_ID, CLIENT_DUID), ...opt(Dhcpv6Option.SERVER_ID, ourDuid())]],
    ["a DECLINE", Dhcpv6MessageType.DECLINE, () => [...opt(Dhcpv6Option.CLIENT_ID, CLIENT_DUID), ...opt(Dhcpv6Option.SERVER_ID, ourDuid())]],
  ])("dhcpv6() ignores %s and counts it", (_name, type, options) => {
    expect(tap.input(message(type, options()))).toHaveLength(0);
    expect(ctx.stats.drops.get("dhcpv6Ignored")).toBe(1);
  });

  test.each([
    ["no client identifier", () => message(Dhcpv6MessageType.SOLICIT, iaNa()), "dhcpv6Malformed"],
    ["a client identifier over 128 bytes", () => message(Dhcpv6MessageType.SOLICIT, opt(Dhcpv6Option.CLIENT_ID, new Array(129).fill(1))), "dhcpv6Malformed"],
    ["a server identifier not 14 bytes long", () => message(Dhcpv6MessageType.REQUEST, [...opt(Dhcpv6Option.CLIENT_ID, CLIENT_DUID), ...opt(Dhcpv6Option.SERVER_ID, [0, 3, 0, 1, 1, 2, 3, 4, 5, 6, 7])]), "dhcpv6Malformed"],
    ["an IA_NA under 4 bytes", () => message(Dhcpv6MessageType.SOLICIT, [...opt(Dhcpv6Option.CLIENT_ID, CLIENT_DUID), ...opt(Dhcpv6Option.IA_NA, [1, 2])]), "dhcpv6Malformed"],
    ["a message to a unicast address", () => message(Dhcpv6MessageType.SOLICIT, opt(Dhcpv6Option.CLIENT_ID, CLIENT_DUID), HOST.gw6), "dhcpv6Unicast"],
  ])("dhcpv6() drops a message with %s and counts it", (_name, make, reason) => {
    expect(tap.input(make())).toHaveLength(0);
    expect(ctx.stats.drops.get(reason)).toBe(1);
  });

  test("dhcpv6() answers nothing with --no-dhcpv6", () => {
    ctx = testCtx({ argv: ["--no-dhcpv6"] });
    tap = new FakeTap(ctx);
    expect(tap.input(fixture("dhcpv6_solicit.bin"))).toHaveLength(0);
    expect(ctx.stats.drops.get("dhcpv6Disabled")).toBe(1);
  });
});
