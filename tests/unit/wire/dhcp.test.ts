// SPDX-License-Identifier: GPL-2.0-or-later
// dhcp.test.ts - DHCP view and BOOTREPLY emitter against udhcpc and passt 2023 frames

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { decodeName, decodeNameList } from "../../../src/wire/dnsname.ts";
import {
  DHCP_FIXED_LEN, DHCP_MIN_MESSAGE_LEN, DhcpMessageType, DhcpOp, DhcpOption, DhcpOptionCursor, DhcpView,
  emitDhcpReply, type DhcpReplyFields,
} from "../../../src/wire/dhcp.ts";

/** Returns the UDP payload of a fixture frame: Ethernet 14 + IPv4 IHL * 4 + UDP 8. */
function dhcpPayload(name: string): Uint8Array {
  const frame = new Uint8Array(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url)));
  return frame.subarray(14 + (frame[14]! & 0x0f) * 4 + 8);
}

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/[\s:]+/g, ""), "hex"));
const ip = (s: string): Uint8Array => Uint8Array.from(s.split(".").map(Number));
const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

const DISCOVER = dhcpPayload("dhcp_discover.bin");
const OFFER = dhcpPayload("dhcp_offer.bin");
const REQUEST = dhcpPayload("dhcp_request.bin");
const ACK = dhcpPayload("dhcp_ack.bin");
const CLIENT_MAC = hex("d6:e6:58:3d:e1:d3");
const XID = 0xa7e72359;
const PRL = [1, 3, 6, 12, 15, 28, 42];

/** Returns the codes of the options of `view`, in order. */
function codes(view: DhcpView): number[] {
  const out: number[] = [];
  const c = view.options();
  while (c.next()) out.push(c.code);
  return out;
}

/** Returns a copy of DISCOVER whose options field is replaced by `options`. */
function withOptions(options: Uint8Array): Uint8Array {
  const msg = new Uint8Array(DHCP_FIXED_LEN + options.length);
  msg.set(DISCOVER.subarray(0, DHCP_FIXED_LEN));
  msg.set(options, DHCP_FIXED_LEN);
  return msg;
}

describe("deconstruct", () => {
  test("parse() reads the fixed fields of udhcpc's discover", () => {
    const v = DhcpView.parse(DISCOVER)!;
    expect(v).not.toBeNull();
    expect(v.op).toBe(DhcpOp.BOOTREQUEST);
    expect(v.htype).toBe(1);
    expect(v.hlen).toBe(6);
    expect(v.hops).toBe(0);
    expect(v.xid).toBe(XID);
    expect(v.secs).toBe(0);
    expect(v.flags).toBe(0);
    expect(v.broadcast).toBe(false);
    expect(v.ciaddr).toEqual(ip("0.0.0.0"));
    expect(v.yiaddr).toEqual(ip("0.0.0.0"));
    expect(v.siaddr).toEqual(ip("0.0.0.0"));
    expect(v.giaddr).toEqual(ip("0.0.0.0"));
    expect(v.chaddr).toEqual(CLIENT_MAC);
    expect(v.sname.every((b) => b === 0)).toBe(true);
    expect(v.file.length).toBe(128);
  });

  test("the discover's options are type, size, request list, vendor class and client id", () => {
    const v = DhcpView.parse(DISCOVER)!;
    expect(codes(v)).toEqual([53, 57, 55, 60, 61]);
    expect(v.optionsMalformed).toBe(false);
    expect(v.messageType).toBe(DhcpMessageType.DISCOVER);
    expect(v.maxMessageSize).toBe(576);
    expect([...v.parameterRequestList!]).toEqual(PRL);
    expect(v.findOption(60)).toEqual(ascii("udhcp 1.35.0"));
    expect(v.clientId).toEqual(hex("01 d6e6583de1d3"));
    expect(v.requestedAddress).toBeNull();
    expect(v.serverId).toBeNull();
    expect(v.hostname).toBeNull();
    expect(v.fqdn).toBeNull();
  });

  test("the request names the offered address and the server", () => {
    const v = DhcpView.parse(REQUEST)!;
    expect(v.xid).toBe(XID);
    expect(codes(v)).toEqual([53, 50, 54, 57, 55, 60, 61]);
    expect(v.messageType).toBe(DhcpMessageType.REQUEST);
    expect(v.requestedAddress).toEqual(ip("198.51.100.10"));
    expect(v.serverId).toEqual(ip("198.51.100.1"));
  });

  test.each([
    ["offer", OFFER, DhcpMessageType.OFFER],
    ["ack", ACK, DhcpMessageType.ACK],
  ])("passt's %s carries mask, router, MTU, lease, type and server id", (_name, bytes, type) => {
    const v = DhcpView.parse(bytes)!;
    expect(bytes.length).toBe(DHCP_MIN_MESSAGE_LEN);
    expect(v.op).toBe(DhcpOp.BOOTREPLY);
    expect(v.xid).toBe(XID);
    expect(v.yiaddr).toEqual(ip("198.51.100.10"));
    expect(v.chaddr).toEqual(CLIENT_MAC);
    expect(codes(v)).toEqual([1, 3, 26, 51, 53, 54]);
    expect(v.findOption(DhcpOption.SUBNET_MASK)).toEqual(ip("255.255.255.0"));
    expect(v.findOption(DhcpOption.ROUTER)).toEqual(ip("198.51.100.1"));
    expect(v.findOption(DhcpOption.MTU)).toEqual(hex("fff0"));
    expect(v.findOption(DhcpOption.LEASE_TIME)).toEqual(hex("ffffffff"));
    expect(v.messageType).toBe(type);
    expect(v.serverId).toEqual(ip("198.51.100.1"));
  });

  test("the cursor reports offsets and lengths without allocating a value", () => {
    const c = new DhcpOptionCursor().reset(DISCOVER, DHCP_FIXED_LEN, DISCOVER.length);
    expect(c.next()).toBe(true);
    expect([c.code, c.valueOffset, c.valueLength]).toEqual([53, 242, 1]);
    expect(c.next()).toBe(true);
    expect([c.code, c.valueOffset, c.valueLength]).toEqual([57, 245, 2]);
  });

  test("wrap() re-points one view across messages", () => {
    const v = DhcpView.empty();
    expect(v.wrap(DISCOVER)?.messageType).toBe(DhcpMessageType.DISCOVER);
    expect(v.wrap(ACK)?.messageType).toBe(DhcpMessageType.ACK);
    expect(v.wrap(DISCOVER.subarray(0, 100))).toBeNull();
  });

  test("host name and FQDN options come back as their bytes", () => {
    const fqdn = hex("51 0d 05 0000 04686f7374 02 6c6e 00"); // flags S|E, "host.ln"
    const msg = withOptions(Uint8Array.from([...hex("0c 04"), ...ascii("host"), ...fqdn, 0xff]));
    const v = DhcpView.parse(msg)!;
    expect(v.hostname).toEqual(ascii("host"));
    expect(v.fqdn![0]).toBe(0x05);
    expect(decodeName(v.fqdn!, 3)?.name).toBe("host.ln");
  });

  test("pad options are skipped and the end option stops the walk", () => {
    const v = DhcpView.parse(withOptions(hex("00 00 35 01 03 00 ff 36 04 01020304")))!;
    expect(codes(v)).toEqual([53]);
    expect(v.serverId).toBeNull();
    expect(v.optionsMalformed).toBe(false);
  });

  test("a missing end option is tolerated", () => {
    const v = DhcpView.parse(withOptions(hex("35 01 01")))!;
    expect(v.messageType).toBe(1);
    expect(v.optionsMalformed).toBe(false);
  });

  test("option 52 (overload) is ignored: sname and file are not searched", () => {
    const msg = withOptions(hex("34 01 03 ff"));
    msg.set(hex("35 01 01 ff"), 44); // a message type hidden in sname
    const v = DhcpView.parse(msg)!;
    expect(v.findOption(DhcpOption.OVERLOAD)).toEqual(hex("03"));
    expect(v.messageType).toBeNull();
  });
});

describe("construct", () => {
  const reply = (messageType: number): DhcpReplyFields => ({
    messageType,
    xid: XID,
    flags: 0,
    chaddr: CLIENT_MAC,
    yiaddr: ip("198.51.100.10"),
    subnetMask: ip("255.255.255.0"),
    router: ip("198.51.100.1"),
    mtu: 65520,
    leaseTimeS: 0xffffffff,
    serverId: ip("198.51.100.1"),
    requestOrder: Uint8Array.from(PRL),
  });

  test.each([
    ["offer", DhcpMessageType.OFFER, OFFER],
    ["ack", DhcpMessageType.ACK, ACK],
  ])("emitDhcpReply() writes passt's %s byte for byte", (_name, type, fixture) => {
    const out = new Uint8Array(576).fill(0xa5); // dirty: everything must be written
    const len = emitDhcpReply(out, reply(type));
    expect(len).toBe(fixture.length);
    expect(Buffer.from(out.subarray(0, len)).toString("hex")).toBe(Buffer.from(fixture).toString("hex"));
  });

  test("requested options go first, in the client's order, the rest by code", () => {
    const out = new Uint8Array(576);
    const len = emitDhcpReply(out, {
      ...reply(DhcpMessageType.ACK),
      dns: [ip("198.51.100.53")],
      requestOrder: Uint8Array.from([6, 54, 3, 99]),
    });
    expect(codes(DhcpView.parse(out.subarray(0, len))!)).toEqual([6, 54, 3, 1, 26, 51, 53]);
  });

  test("messageTypeFirst puts option 53 first unless the client requested it", () => {
    const out = new Uint8Array(576);
    let len = emitDhcpReply(out, { ...reply(DhcpMessageType.ACK), messageTypeFirst: true });
    expect(codes(DhcpView.parse(out.subarray(0, len))!)).toEqual([53, 1, 3, 26, 51, 54]);
    len = emitDhcpReply(out, { ...reply(DhcpMessageType.ACK), messageTypeFirst: true, requestOrder: Uint8Array.of(3, 53) });
    expect(codes(DhcpView.parse(out.subarray(0, len))!)).toEqual([3, 53, 1, 26, 51, 54]);
  });

  test("DNS, host name, FQDN and search list read back from the reply", () => {
    const out = new Uint8Array(576);
    const len = emitDhcpReply(out, {
      ...reply(DhcpMessageType.ACK),
      flags: 0x8000,
      dns: [ip("198.51.100.53"), ip("203.0.113.53")],
      hostname: "guest",
      fqdn: "guest.example.org",
      domainSearch: ["example.org", "lab.example.org"],
    });
    const v = DhcpView.parse(out.subarray(0, len))!;
    expect(v.broadcast).toBe(true);
    expect(codes(v)).toEqual([1, 3, 6, 12, 26, 51, 53, 54, 81, 119]);
    expect(v.findOption(DhcpOption.DNS)).toEqual(hex("c6336435 cb007135"));
    expect(v.hostname).toEqual(ascii("guest"));
    expect([...v.fqdn!.subarray(0, 3)]).toEqual([0x04, 255, 255]);
    expect(decodeName(v.fqdn!, 3)?.name).toBe("guest.example.org");
    const search = v.findOption(DhcpOption.DOMAIN_SEARCH)!;
    // "lab" then a pointer to offset 0: compressed as RFC 3397 allows.
    expect(search.length).toBe(13 + 6);
    expect(decodeNameList(search, { compression: true })).toEqual(["example.org", "lab.example.org"]);
  });

  test("a search list over 255 bytes is split into consecutive options (RFC 3396)", () => {
    const names = Array.from({ length: 6 }, (_, i) => `${"d".repeat(40)}${i}.example${i}`);
    const out = new Uint8Array(1024);
    const len = emitDhcpReply(out, { ...reply(DhcpMessageType.ACK), domainSearch: names });
    const v = DhcpView.parse(out.subarray(0, len))!;
    const parts: number[] = [];
    const c = v.options();
    while (c.next()) if (c.code === DhcpOption.DOMAIN_SEARCH) parts.push(...c.value);
    expect(codes(v).filter((code) => code === 119).length).toBe(2);
    expect(decodeNameList(Uint8Array.from(parts), { compression: true })).toEqual(names);
  });

  test("a message longer than 300 bytes is not padded", () => {
    const out = new Uint8Array(576);
    const len = emitDhcpReply(out, { ...reply(DhcpMessageType.ACK), hostname: "h".repeat(100) });
    expect(len).toBe(DHCP_FIXED_LEN + 31 + 102 + 1);
    expect(out[len - 1]).toBe(DhcpOption.END);
  });

  test.each([
    ["a buffer under 300 bytes", 299, {}],
    ["options that do not fit", 300, { hostname: "h".repeat(60) }],
    ["a chaddr over 16 bytes", 576, { chaddr: new Uint8Array(17) }],
    ["an FQDN that is not a DNS name", 576, { fqdn: "bad..name" }],
    ["a search domain that is not a DNS name", 576, { domainSearch: ["a b"] }],
  ])("emitDhcpReply() returns -1 for %s", (_what, size, extra) => {
    expect(emitDhcpReply(new Uint8Array(size), { ...reply(DhcpMessageType.ACK), ...extra })).toBe(-1);
  });
});

describe("rejects", () => {
  test.each(Array.from({ length: DHCP_FIXED_LEN }, (_, n) => n))("parse() rejects a message cut to %i bytes", (n) => {
    expect(DhcpView.parse(DISCOVER.subarray(0, n))).toBeNull();
  });

  test("parse() accepts the fixed part alone, with no options", () => {
    const v = DhcpView.parse(DISCOVER.subarray(0, DHCP_FIXED_LEN))!;
    expect(v.messageType).toBeNull();
    expect(v.optionsMalformed).toBe(false);
  });

  test.each([
    ["a wrong magic cookie", 236, 0x64],
    ["a hardware address length over 16", 2, 17],
  ])("parse() rejects %s", (_what, offset, value) => {
    const msg = DISCOVER.slice();
    msg[offset] = value;
    expect(DhcpView.parse(msg)).toBeNull();
  });

  test.each([
    ["a length running past the end", "35 01 01 0c 09 6162", [53]],
    ["a length byte missing", "35 01 01 0c", [53]],
  ])("an option with %s stops the walk and is reported", (_what, options, seen) => {
    const v = DhcpView.parse(withOptions(hex(options)))!;
    expect(codes(v)).toEqual(seen);
    expect(v.optionsMalformed).toBe(true);
    expect(v.messageType).toBe(1);
    expect(v.hostname).toBeNull();
  });

  test.each([
    ["message type", "35 02 0101", "messageType"],
    ["maximum message size", "39 01 02", "maxMessageSize"],
    ["requested address", "32 03 c63364", "requestedAddress"],
    ["server identifier", "36 05 c633640100", "serverId"],
    ["client identifier", "3d 01 01", "clientId"],
    ["parameter request list", "37 00", "parameterRequestList"],
    ["host name", "0c 00", "hostname"],
    ["FQDN", "51 02 0000", "fqdn"],
  ] as const)("a %s option of impossible length reads as null", (_what, option, getter) => {
    const v = DhcpView.parse(withOptions(hex(option + "ff")))!;
    expect(v.optionsMalformed).toBe(false);
    expect(v[getter]).toBeNull();
  });
});
