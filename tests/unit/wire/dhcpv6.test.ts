// SPDX-License-Identifier: GPL-2.0-or-later
// dhcpv6.test.ts - DHCPv6 view and advertise/reply emitter against dhclient and passt 2023 frames

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { decodeName, decodeNameList } from "../../../src/wire/dnsname.ts";
import {
  DHCPV6_HEADER_LEN, Dhcpv6IaAddressView, Dhcpv6IaNaView, Dhcpv6MessageType, Dhcpv6Option, Dhcpv6OptionCursor,
  Dhcpv6Status, Dhcpv6View, emitDhcpv6Reply, findDhcpv6Option, statusCode, statusMessage,
  type Dhcpv6ReplyFields,
} from "../../../src/wire/dhcpv6.ts";

/** Returns the UDP payload of a fixture frame: Ethernet 14 + IPv6 40 + UDP 8. */
function dhcpv6Payload(name: string): Uint8Array {
  const frame = new Uint8Array(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url)));
  return frame.subarray(14 + 40 + 8);
}

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/[\s:]+/g, ""), "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

const SOLICIT = dhcpv6Payload("dhcpv6_solicit.bin");
const ADVERTISE = dhcpv6Payload("dhcpv6_advertise.bin");
const REQUEST = dhcpv6Payload("dhcpv6_request.bin");
const REPLY = dhcpv6Payload("dhcpv6_reply.bin");
const CLIENT_DUID = hex("0001 0001 329b6a4b d6e6583de1d3"); // DUID-LLT, Ethernet
const SERVER_DUID = hex("0001 0001 329b6a47 92d3deb1fb1c");
const IAID = 0x583de1d3;
const GUEST = hex("20010db8000000000000000000000010");

/** Returns the codes of the top-level options of `view`, in order. */
function codes(view: Dhcpv6View): number[] {
  const out: number[] = [];
  const c = view.options();
  while (c.next()) out.push(c.code);
  return out;
}

/** Returns a message of type `type`, xid 0x123456, with `options` after the header. */
function message(type: number, options: string): Uint8Array {
  return Uint8Array.from([type, 0x12, 0x34, 0x56, ...hex(options)]);
}

describe("deconstruct", () => {
  test("parse() reads dhclient's solicit", () => {
    const v = Dhcpv6View.parse(SOLICIT)!;
    expect(v.messageType).toBe(Dhcpv6MessageType.SOLICIT);
    expect(v.xid).toBe(0x0d0912);
    expect(codes(v)).toEqual([1, 6, 8, 3]);
    expect(v.optionsMalformed).toBe(false);
    expect(v.clientId).toEqual(CLIENT_DUID);
    expect(v.serverId).toBeNull();
    expect(toHex(v.oro!)).toBe("00170018" + "0027001f");
    expect(v.requestsOption(Dhcpv6Option.DNS_SERVERS)).toBe(true);
    expect(v.requestsOption(Dhcpv6Option.CLIENT_FQDN)).toBe(true);
    expect(v.requestsOption(Dhcpv6Option.RAPID_COMMIT)).toBe(false);
    expect(v.elapsedTime).toBe(0);
    expect(v.rapidCommit).toBe(false);
    const ia = Dhcpv6IaNaView.parse(v.iaNa!)!;
    expect([ia.iaid, ia.t1S, ia.t2S]).toEqual([IAID, 3600, 5400]);
    expect(ia.firstAddress).toBeNull();
  });

  test("the request carries the server id and the advertised address", () => {
    const v = Dhcpv6View.parse(REQUEST)!;
    expect(v.messageType).toBe(Dhcpv6MessageType.REQUEST);
    expect(v.xid).toBe(0x862ee6);
    expect(codes(v)).toEqual([1, 2, 6, 8, 3]);
    expect(v.serverId).toEqual(SERVER_DUID);
    const ia = Dhcpv6IaNaView.parse(v.iaNa!)!;
    const addr = Dhcpv6IaAddressView.parse(ia.firstAddress!)!;
    expect(addr.address).toEqual(GUEST);
    expect(addr.preferredLifetimeS).toBe(7200);
    expect(addr.validLifetimeS).toBe(7500);
    expect(addr.findOption(Dhcpv6Option.STATUS_CODE)).toBeNull();
  });

  test.each([
    ["advertise", ADVERTISE, Dhcpv6MessageType.ADVERTISE, 0x0d0912],
    ["reply", REPLY, Dhcpv6MessageType.REPLY, 0x862ee6],
  ])("passt's %s gives the address with infinite lifetimes", (_name, bytes, type, xid) => {
    const v = Dhcpv6View.parse(bytes)!;
    expect(v.messageType).toBe(type);
    expect(v.xid).toBe(xid);
    expect(codes(v)).toEqual([2, 3, 1]);
    expect(v.serverId).toEqual(SERVER_DUID);
    expect(v.clientId).toEqual(CLIENT_DUID);
    const ia = Dhcpv6IaNaView.parse(v.iaNa!)!;
    expect([ia.iaid, ia.t1S, ia.t2S]).toEqual([IAID, 0xffffffff, 0xffffffff]);
    const addr = Dhcpv6IaAddressView.parse(ia.firstAddress!)!;
    expect(addr.address).toEqual(GUEST);
    expect([addr.preferredLifetimeS, addr.validLifetimeS]).toEqual([0xffffffff, 0xffffffff]);
    expect(v.status).toBeNull();
    expect(v.dnsServers).toBeNull();
  });

  test("the cursor walks nested options between explicit bounds", () => {
    const ia = Dhcpv6View.parse(REQUEST)!.iaNa!;
    const c = new Dhcpv6OptionCursor().reset(ia, 12, ia.length);
    expect(c.next()).toBe(true);
    expect([c.code, c.valueOffset, c.valueLength]).toEqual([Dhcpv6Option.IA_ADDRESS, 16, 24]);
    expect(c.next()).toBe(false);
    expect(c.malformed).toBe(false);
    expect(findDhcpv6Option(ia, 12, ia.length, Dhcpv6Option.IA_ADDRESS)?.length).toBe(24);
  });

  test("wrap() re-points one view and refuses what parse() refuses", () => {
    const v = Dhcpv6View.empty();
    expect(v.wrap(SOLICIT)?.xid).toBe(0x0d0912);
    expect(v.wrap(REPLY)?.xid).toBe(0x862ee6);
    expect(v.wrap(SOLICIT.subarray(0, 3))).toBeNull();
  });

  test("rapid commit, status, DNS, domain list and FQDN are read", () => {
    const v = Dhcpv6View.parse(message(Dhcpv6MessageType.SOLICIT,
      "000e 0000" +
      "000d 0006 0004 6e6f7065" + //                       NotOnLink "nope"
      "0017 0010 20010db8000000000000000000000053" +
      "0018 0009 07 6578616d706c65 00" + //                 example
      "0027 0007 01 04686f7374 00"))!; //                    flags S, "host"
    expect(v.rapidCommit).toBe(true);
    expect(statusCode(v.status!)).toBe(Dhcpv6Status.NOT_ON_LINK);
    expect(statusMessage(v.status!)).toBe("nope");
    expect(v.dnsServers).toEqual(hex("20010db8000000000000000000000053"));
    expect(decodeNameList(v.domainList!)).toEqual(["example"]);
    expect(v.fqdn![0]).toBe(1);
    expect(decodeName(v.fqdn!, 1)?.name).toBe("host");
  });
});

describe("construct", () => {
  const answer = (messageType: number, xid: number): Dhcpv6ReplyFields => ({
    messageType,
    xid,
    serverId: SERVER_DUID,
    ia: {
      iaid: IAID, t1S: 0xffffffff, t2S: 0xffffffff,
      addresses: [{ address: GUEST, preferredLifetimeS: 0xffffffff, validLifetimeS: 0xffffffff }],
    },
    clientId: CLIENT_DUID,
  });

  test.each([
    ["advertise", Dhcpv6MessageType.ADVERTISE, 0x0d0912, ADVERTISE],
    ["reply", Dhcpv6MessageType.REPLY, 0x862ee6, REPLY],
  ])("emitDhcpv6Reply() writes passt's %s byte for byte", (_name, type, xid, fixture) => {
    const out = new Uint8Array(1280).fill(0xa5);
    const len = emitDhcpv6Reply(out, answer(type, xid));
    expect(len).toBe(fixture.length);
    expect(toHex(out.subarray(0, len))).toBe(toHex(fixture));
  });

  test("DNS servers, domain list, FQDN, rapid commit and status read back in order", () => {
    const out = new Uint8Array(1280);
    const len = emitDhcpv6Reply(out, {
      ...answer(Dhcpv6MessageType.REPLY, 0xabcdef),
      rapidCommit: true,
      status: { code: Dhcpv6Status.SUCCESS, message: "ok" },
      dnsServers: [hex("20010db8000000000000000000000053"), hex("20010db8000000000000000000000054")],
      domainList: ["example.org", "lab.example.org"],
      fqdn: "guest.example.org",
      fqdnFlags: 0x02,
    });
    const v = Dhcpv6View.parse(out.subarray(0, len))!;
    expect(v.xid).toBe(0xabcdef);
    expect(codes(v)).toEqual([2, 3, 1, 14, 13, 23, 24, 39]);
    expect(v.optionsMalformed).toBe(false);
    expect(v.rapidCommit).toBe(true);
    expect(statusCode(v.status!)).toBe(0);
    expect(statusMessage(v.status!)).toBe("ok");
    expect(v.dnsServers!.length).toBe(32);
    // Uncompressed, as RFC 8415 section 10 requires.
    expect(v.domainList!.length).toBe(13 + 17);
    expect(decodeNameList(v.domainList!)).toEqual(["example.org", "lab.example.org"]);
    expect(v.fqdn![0]).toBe(0x02);
    expect(decodeName(v.fqdn!, 1)?.name).toBe("guest.example.org");
  });

  test("a NotOnLink answer nests the status in the IA_NA, with no address", () => {
    const out = new Uint8Array(1280);
    const len = emitDhcpv6Reply(out, {
      messageType: Dhcpv6MessageType.REPLY, xid: 1, serverId: SERVER_DUID, clientId: CLIENT_DUID,
      ia: { iaid: IAID, t1S: 0, t2S: 0, status: { code: Dhcpv6Status.NOT_ON_LINK, message: "not on link" } },
    });
    const v = Dhcpv6View.parse(out.subarray(0, len))!;
    expect(v.status).toBeNull();
    const ia = Dhcpv6IaNaView.parse(v.iaNa!)!;
    expect(ia.firstAddress).toBeNull();
    const status = ia.findOption(Dhcpv6Option.STATUS_CODE)!;
    expect(statusCode(status)).toBe(Dhcpv6Status.NOT_ON_LINK);
    expect(statusMessage(status)).toBe("not on link");
  });

  test.each([
    ["a buffer under the header", 3, {}],
    ["a buffer too small for the IA_NA", 40, {}],
    ["a buffer too small for the client id", 84 - 1, {}],
    ["a domain that is not a DNS name", 1280, { domainList: ["bad..name"] }],
    ["an FQDN that is not a DNS name", 1280, { fqdn: "a b" }],
    ["a status message that does not fit", 100, { status: { code: 1, message: "x".repeat(40) } }],
  ])("emitDhcpv6Reply() returns -1 for %s", (_what, size, extra) => {
    expect(emitDhcpv6Reply(new Uint8Array(size), { ...answer(Dhcpv6MessageType.REPLY, 1), ...extra })).toBe(-1);
  });
});

describe("rejects", () => {
  test.each([0, 1, 2, 3])("parse() rejects a message of %i bytes", (n) => {
    expect(Dhcpv6View.parse(SOLICIT.subarray(0, n))).toBeNull();
  });

  test("parse() accepts a bare header with no options", () => {
    const v = Dhcpv6View.parse(SOLICIT.subarray(0, DHCPV6_HEADER_LEN))!;
    expect(codes(v)).toEqual([]);
    expect(v.clientId).toBeNull();
  });

  test.each([Dhcpv6MessageType.RELAY_FORW, Dhcpv6MessageType.RELAY_REPL])("parse() rejects relay message type %i", (type) => {
    const msg = SOLICIT.slice();
    msg[0] = type;
    expect(Dhcpv6View.parse(msg)).toBeNull();
  });

  test.each(Array.from({ length: SOLICIT.length - DHCPV6_HEADER_LEN - 1 }, (_, i) => i + DHCPV6_HEADER_LEN + 1))(
    "the solicit cut to %i bytes parses, and its options walk reports the cut",
    (n) => {
      const cut = SOLICIT.subarray(0, n);
      const v = Dhcpv6View.parse(cut)!;
      // Option boundaries: 4 (client id), 22 (ORO), 34 (elapsed), 40 (IA_NA) to 56.
      expect(v.optionsMalformed).toBe(![22, 34, 40].includes(n));
    },
  );

  test("an option running past the end stops the walk; earlier options still read", () => {
    const v = Dhcpv6View.parse(message(1, "0008 0002 0064 0001 0010 0102"))!;
    expect(codes(v)).toEqual([8]);
    expect(v.optionsMalformed).toBe(true);
    expect(v.elapsedTime).toBe(100);
    expect(v.clientId).toBeNull();
  });

  test("a malformed option nested in an IA_NA is reported by the IA_NA cursor", () => {
    const v = Dhcpv6View.parse(message(1, "0003 0014 00000001 00000002 00000003 0005 0018 20010db8"))!;
    expect(v.optionsMalformed).toBe(false);
    const ia = Dhcpv6IaNaView.parse(v.iaNa!)!;
    expect(ia.firstAddress).toBeNull();
    const c = ia.options();
    expect(c.next()).toBe(false);
    expect(c.malformed).toBe(true);
  });

  test.each([
    ["elapsed time", "0008 0001 00", "elapsedTime"],
    ["ORO", "0006 0003 001700", "oro"],
    ["DNS servers", "0017 000f 20010db80000000000000000000000", "dnsServers"],
    ["IA_NA", "0003 000b 0000000100000002000000", "iaNa"],
    ["status code", "000d 0001 00", "status"],
    ["client id", "0001 0000", "clientId"],
    ["server id", "0002 0000", "serverId"],
    ["FQDN", "0027 0000", "fqdn"],
  ] as const)("a %s option of impossible length reads as null", (_what, option, getter) => {
    const v = Dhcpv6View.parse(message(1, option))!;
    expect(v.optionsMalformed).toBe(false);
    expect(v[getter]).toBeNull();
  });

  test.each([
    ["an IA_NA value under 12 bytes", () => Dhcpv6IaNaView.parse(new Uint8Array(11))],
    ["an IA Address value under 24 bytes", () => Dhcpv6IaAddressView.parse(new Uint8Array(23))],
  ])("%s is refused", (_what, parse) => {
    expect(parse()).toBeNull();
  });
});
