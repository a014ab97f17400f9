// SPDX-License-Identifier: GPL-2.0-or-later
// arp.test.ts - ARP answers end to end through tapInput(), against the 2023 upstream capture

import { describe, expect, test } from "bun:test";
import { arpAnnounce, arpSendInitReq, ETH_MIN_FRAME_BYTES } from "../../../src/proto/arp.ts";
import { parseIpv4, parseMac } from "../../../src/wire/addr.ts";
import { ArpOperation } from "../../../src/wire/arp.ts";
import { EtherType } from "../../../src/wire/ethernet.ts";
import { expectFrame, FakeTap, fixture } from "../../harness/fake_tap.ts";
import { HOST, testCtx, UPSTREAM_2023_MAC } from "../../harness/ctx.ts";

const GUEST_MAC = "d6:e6:58:3d:e1:d3";
const OUR_MAC = "9a:55:9a:55:9a:55";
// arp_request.bin: d6:e6:58:3d:e1:d3 (198.51.100.10) asks who has 198.51.100.20.
const ETH = 14, SENDER_IP = ETH + 14, TARGET_IP = ETH + 24, OPERATION = ETH + 6, HW_TYPE = ETH;

/** The request fixture with `target` and `sender` IPv4 addresses (text) written in. */
function request(target: string, sender: string = HOST.addr4): Uint8Array {
  const f = fixture("arp_request.bin");
  f.set(parseIpv4(target)!, TARGET_IP);
  f.set(parseIpv4(sender)!, SENDER_IP);
  return f;
}

describe("arp()", () => {
  test("arp() answers a request for another address with our MAC, to the requester", () => {
    const ctx = testCtx();
    const tap = new FakeTap(ctx);
    const out = tap.input(fixture("arp_request.bin"));
    tap.check("arp_answer", () => {
      expect(out).toHaveLength(1);
      expect(out[0]!.byteLength).toBe(ETH_MIN_FRAME_BYTES);
      expectFrame(out[0]).ether({ src: OUR_MAC, dst: GUEST_MAC, etherType: EtherType.ARP }).arp({
        operation: ArpOperation.REPLY,
        senderMac: OUR_MAC,
        senderIp: "198.51.100.20",
        targetMac: GUEST_MAC,
        targetIp: HOST.addr4,
      });
    });
  });

  test("arp() with the 2023 MAC answers as the 2023 capture did, plus padding to 60 bytes", () => {
    // Differences from the capture (REFERENCE.md section 2): upstream then used
    // the host's MAC, now 9a:55:9a:55:9a:55; and tap_send_single() now pads
    // frames shorter than 60 bytes with zeros (the capture's reply is 42 bytes).
    const ctx = testCtx({ ourMac: UPSTREAM_2023_MAC });
    const tap = new FakeTap(ctx);
    const out = tap.input(fixture("arp_request.bin"));
    const upstream = fixture("arp_reply.bin");
    tap.check("arp_2023", () => {
      expect(out).toHaveLength(1);
      expect(out[0]!.subarray(0, upstream.byteLength)).toEqual(upstream);
      expect(out[0]!.subarray(upstream.byteLength)).toEqual(new Uint8Array(ETH_MIN_FRAME_BYTES - upstream.byteLength));
    });
  });

  test("arp() answers a probe from 0.0.0.0 for another address", () => {
    const ctx = testCtx();
    const tap = new FakeTap(ctx);
    const out = tap.input(request("198.51.100.1", "0.0.0.0"));
    expect(out).toHaveLength(1);
    expectFrame(out[0]).arp({ senderIp: "198.51.100.1", targetIp: "0.0.0.0", targetMac: GUEST_MAC });
  });

  test.each([
    ["a request for the guest's own address", () => request(HOST.addr4, "198.51.100.7"), "arpIgnored"],
    ["a duplicate address probe for the guest's address", () => request(HOST.addr4, "0.0.0.0"), "arpIgnored"],
    ["an announcement (sender equals target)", () => request("198.51.100.20", "198.51.100.20"), "arpIgnored"],
    ["a reply", () => {
      const f = fixture("arp_request.bin");
      f[OPERATION + 1] = ArpOperation.REPLY;
      return f;
    }, "arpIgnored"],
    ["a non-Ethernet hardware type", () => {
      const f = fixture("arp_request.bin");
      f[HW_TYPE + 1] = 6;
      return f;
    }, "arpIgnored"],
    ["a packet cut short", () => fixture("arp_request.bin").subarray(0, ETH + 27), "arpMalformed"],
  ] as const)("arp() does not answer %s and counts it", (_name, make, reason) => {
    const ctx = testCtx();
    const tap = new FakeTap(ctx);
    expect(tap.input(make())).toHaveLength(0);
    expect(ctx.stats.drops.get(reason)).toBe(1);
  });

  test("arp() is not reached without IPv4, and the frame is counted", () => {
    const ctx = testCtx({ ip4: null });
    const tap = new FakeTap(ctx);
    expect(tap.input(fixture("arp_request.bin"))).toHaveLength(0);
    expect(ctx.stats.drops.get("ipv4Disabled")).toBe(1);
  });
});

describe("arpSendInitReq() and arpAnnounce()", () => {
  test("arpSendInitReq() broadcasts a request for the guest's address from ours", () => {
    const ctx = testCtx();
    const tap = new FakeTap(ctx);
    arpSendInitReq(ctx, tap);
    expect(tap.sent).toHaveLength(1);
    expect(tap.sent[0]!.byteLength).toBe(ETH_MIN_FRAME_BYTES);
    expectFrame(tap.sent[0]).ether({ src: OUR_MAC, dst: "ff:ff:ff:ff:ff:ff" }).arp({
      operation: ArpOperation.REQUEST,
      senderMac: OUR_MAC,
      senderIp: HOST.gw4,
      targetMac: "ff:ff:ff:ff:ff:ff",
      targetIp: HOST.addr4,
    });
  });

  test("arpAnnounce() broadcasts an RFC 5227 announcement from the announced MAC", () => {
    const ctx = testCtx();
    const tap = new FakeTap(ctx);
    const mac = parseMac("02:00:00:00:00:42")!;
    arpAnnounce(ctx, tap, parseIpv4("198.51.100.42")!, mac);
    expectFrame(tap.sent[0]).ether({ src: mac, dst: "ff:ff:ff:ff:ff:ff" }).arp({
      operation: ArpOperation.REQUEST,
      senderMac: mac,
      senderIp: "198.51.100.42",
      targetMac: "00:00:00:00:00:00",
      targetIp: "198.51.100.42",
    });
  });
});
