// SPDX-License-Identifier: GPL-2.0-or-later
// addr.test.ts - textual address parsing, RFC 5952 formatting and address predicates

import { describe, expect, test } from "bun:test";
import {
  addrEqual,
  formatIp,
  formatIpv4,
  formatIpv6,
  formatMac,
  fromMapped,
  ipv4MappedToIpv6,
  isBroadcast,
  isIpv4Mapped,
  isLinkLocal4,
  isLinkLocal6,
  isLoopback4,
  isLoopback6,
  isMulticast,
  isUnspecified,
  parseIp,
  parseIpv4,
  parseIpv6,
  parseMac,
} from "../../../src/wire/addr.ts";

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));

describe("parseIpv4", () => {
  test.each([
    ["198.51.100.1", [198, 51, 100, 1]],
    ["0.0.0.0", [0, 0, 0, 0]],
    ["255.255.255.255", [255, 255, 255, 255]],
    ["10.0.2.15", [10, 0, 2, 15]],
  ])("parseIpv4(%p) reads four octets", (text, bytes) => {
    expect(parseIpv4(text)).toEqual(Uint8Array.from(bytes));
  });

  test.each([
    "", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.-4", "01.2.3.4", "1.2.3.04", "1..3.4",
    ".1.2.3", "1.2.3.", "1.2.3.4 ", " 1.2.3.4", "a.b.c.d", "0x1.2.3.4", "1.2.3.4/24", "1000.2.3.4",
  ])("parseIpv4(%p) returns null", (text) => {
    expect(parseIpv4(text)).toBeNull();
  });
});

describe("parseIpv6", () => {
  test.each([
    ["::", "00000000000000000000000000000000"],
    ["::1", "00000000000000000000000000000001"],
    ["1::", "00010000000000000000000000000000"],
    ["2001:db8::10", "20010db8000000000000000000000010"],
    ["2001:DB8:0:0:1:0:0:1", "20010db8000000000001000000000001"],
    ["fe80::a8bb:ccff:fedd:eeff", "fe80000000000000a8bbccfffeddeeff"],
    ["1:2:3:4:5:6:7:8", "00010002000300040005000600070008"],
    ["1:2:3:4:5:6:7::", "00010002000300040005000600070000"],
    ["::2:3:4:5:6:7:8", "00000002000300040005000600070008"],
    ["::ffff:198.51.100.1", "00000000000000000000ffffc6336401"],
    ["64:ff9b::192.0.2.33", "0064ff9b0000000000000000c0000221"],
    ["1:2:3:4:5:6:1.2.3.4", "00010002000300040005000601020304"],
    ["ff02::1:ff00:10", "ff0200000000000000000001ff000010"],
  ])("parseIpv6(%p) reads the address", (text, bytes) => {
    expect(parseIpv6(text)).toEqual(hex(bytes));
  });

  test.each([
    "", ":", ":::", "1:2", "1:2:3:4:5:6:7:8:9", "1::2::3", ":1::", "1::2:", "::1:", "12345::",
    "g::", "fe80::1%eth0", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3", "::1.2.3.256", "1.2.3.4", "::ffff:01.2.3.4",
    "::1.2.3.4:5", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1 ::", "[::1]",
  ])("parseIpv6(%p) returns null", (text) => {
    expect(parseIpv6(text)).toBeNull();
  });
});

test("parseIp() picks the family by the presence of a colon", () => {
  expect(parseIp("203.0.113.7")).toEqual(Uint8Array.from([203, 0, 113, 7]));
  expect(parseIp("2001:db8::1")?.byteLength).toBe(16);
  expect(parseIp("nonsense")).toBeNull();
});

describe("formatIpv6 follows RFC 5952", () => {
  test.each([
    ["00000000000000000000000000000000", "::"],
    ["00000000000000000000000000000001", "::1"],
    ["20010db8000000000000000000000010", "2001:db8::10"],
    // 4.2.2: a single zero word is not shortened
    ["20010db8000000010001000100010001", "2001:db8:0:1:1:1:1:1"],
    // 4.2.3: the longest run is shortened; on a tie, the first
    ["20010db8000000000001000000000001", "2001:db8::1:0:0:1"],
    ["20010000000000010000000000010001", "2001::1:0:0:1:1"],
    ["20010000000000010000000000000001", "2001:0:0:1::1"],
    ["20010db800000000000100000000000a", "2001:db8::1:0:0:a"],
    ["20010db8000000000000000100000000", "2001:db8::1:0:0"],
    // 4.3: lower case, no leading zeros
    ["20010DB8AAAA0BBB0CCC0DDD0EEE0FFF", "2001:db8:aaaa:bbb:ccc:ddd:eee:fff"],
    ["fe80000000000000a8bbccfffeddeeff", "fe80::a8bb:ccff:fedd:eeff"],
    // 5: IPv4-mapped addresses keep the dotted tail
    ["00000000000000000000ffffc6336401", "::ffff:198.51.100.1"],
    ["00010002000300040005000600070000", "1:2:3:4:5:6:7:0"],
  ])("formatIpv6(%s) is %p", (bytes, text) => {
    expect(formatIpv6(hex(bytes))).toBe(text);
  });

  test("formatting then parsing gives the same bytes for random addresses", () => {
    let seed = 42;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16) & 0xff;
    for (let n = 0; n < 2000; n++) {
      // Zero bytes are made common so that "::" runs of every shape appear.
      const a = Uint8Array.from({ length: 16 }, () => (rnd() < 128 ? 0 : rnd()));
      expect(parseIpv6(formatIpv6(a))).toEqual(a);
    }
  });

  test("a wrong length throws RangeError naming the length", () => {
    expect(() => formatIpv6(new Uint8Array(4))).toThrow(/16 bytes, got 4/);
    expect(() => formatIpv4(new Uint8Array(16))).toThrow(RangeError);
  });
});

test("formatIpv4() and formatIp() write dotted quads", () => {
  expect(formatIpv4(Uint8Array.from([198, 51, 100, 10]))).toBe("198.51.100.10");
  expect(formatIp(Uint8Array.from([0, 0, 0, 0]))).toBe("0.0.0.0");
  expect(formatIp(parseIpv6("2001:db8::10")!)).toBe("2001:db8::10");
});

describe("MAC addresses", () => {
  test("parseMac() reads either case and formatMac() writes lower case", () => {
    const mac = parseMac("9A:55:9a:55:9A:55")!;
    expect(mac).toEqual(Uint8Array.from([0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55]));
    expect(formatMac(mac)).toBe("9a:55:9a:55:9a:55");
    expect(formatMac(Uint8Array.from([0, 1, 2, 0xa, 0xb, 0xff]))).toBe("00:01:02:0a:0b:ff");
  });

  test.each(["", "9a:55:9a:55:9a", "9a:55:9a:55:9a:55:00", "9a-55-9a-55-9a-55", "9a:55:9a:55:9a:5g", "9a:55:9a:55:9a:5", "9a:559a:55:9a:55:"])(
    "parseMac(%p) returns null",
    (text) => {
      expect(parseMac(text)).toBeNull();
    },
  );
});

describe("predicates", () => {
  const v4 = (s: string) => parseIpv4(s)!;
  const v6 = (s: string) => parseIpv6(s)!;
  const any = (s: string) => parseMac(s) ?? parseIp(s)!;
  const predicates = {
    isLoopback4, isLoopback6, isLinkLocal4, isLinkLocal6, isUnspecified, isMulticast, isBroadcast, isIpv4Mapped,
  };
  test.each([
    ["isLoopback4", "127.0.0.1", true],
    ["isLoopback4", "127.255.0.9", true],
    ["isLoopback4", "128.0.0.1", false],
    ["isLoopback4", "::1", false],
    ["isLoopback6", "::1", true],
    ["isLoopback6", "::2", false],
    ["isLoopback6", "1::1", false],
    ["isLinkLocal4", "169.254.2.1", true],
    ["isLinkLocal4", "169.253.2.1", false],
    ["isLinkLocal6", "fe80::1", true],
    ["isLinkLocal6", "febf::1", true],
    ["isLinkLocal6", "fec0::1", false],
    ["isUnspecified", "0.0.0.0", true],
    ["isUnspecified", "::", true],
    ["isUnspecified", "::1", false],
    ["isMulticast", "224.0.0.1", true],
    ["isMulticast", "239.255.255.255", true],
    ["isMulticast", "240.0.0.1", false],
    ["isMulticast", "ff02::16", true],
    ["isMulticast", "fe80::1", false],
    ["isMulticast", "33:33:00:00:00:16", true],
    ["isMulticast", "9a:55:9a:55:9a:55", false],
    ["isBroadcast", "255.255.255.255", true],
    ["isBroadcast", "ff:ff:ff:ff:ff:ff", true],
    ["isBroadcast", "255.255.255.254", false],
    ["isIpv4Mapped", "::ffff:1.2.3.4", true],
    ["isIpv4Mapped", "::fffe:1.2.3.4", false],
    ["isIpv4Mapped", "1::ffff:1.2.3.4", false],
  ] as const)("%s(%p) is %p", (name, text, expected) => {
    expect(predicates[name](any(text))).toBe(expected);
  });

  test("ipv4MappedToIpv6() and fromMapped() convert both ways", () => {
    const mapped = ipv4MappedToIpv6(v4("203.0.113.5"));
    expect(formatIpv6(mapped)).toBe("::ffff:203.0.113.5");
    const back = fromMapped(mapped)!;
    expect(back).toEqual(v4("203.0.113.5"));
    expect(back.buffer).toBe(mapped.buffer); // a view, not a copy
    expect(fromMapped(v6("2001:db8::1"))).toBeNull();
    const out: Uint8Array = new Uint8Array(16).fill(0xaa);
    expect(ipv4MappedToIpv6(v4("1.2.3.4"), out)).toBe(out);
    expect(out).toEqual(v6("::ffff:1.2.3.4"));
  });

  test("addrEqual() compares bytes and lengths", () => {
    expect(addrEqual(v4("1.2.3.4"), v4("1.2.3.4"))).toBe(true);
    expect(addrEqual(v4("1.2.3.4"), v4("1.2.3.5"))).toBe(false);
    expect(addrEqual(v4("0.0.0.0"), v6("::"))).toBe(false);
  });
});
