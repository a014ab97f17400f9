// SPDX-License-Identifier: GPL-2.0-or-later
// dnsname.test.ts - DNS name and name-list wire form: encode, decode, compression, rejects

import { describe, expect, test } from "bun:test";
import {
  decodeName, decodeNameList, encodeName, encodeNameList, MAX_NAME_WIRE_LEN, nameWireLength,
} from "../../../src/wire/dnsname.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

// RFC 3397 section 3: "eng.apple.com." then "marketing.apple.com.", the second
// ending in a pointer to offset 4 ("apple.com").
const RFC3397_EXAMPLE = hex(
  "03 656e67 05 6170706c65 03 636f6d 00" + // eng.apple.com
  "09 6d61726b6574696e67 c004", //            marketing + pointer to 4
);

describe("encodeName()", () => {
  test.each([
    ["example.org", "076578616d706c65 036f7267 00"],
    ["example.org.", "076578616d706c65 036f7267 00"],
    ["a", "0161 00"],
    ["", "00"],
    [".", "00"],
  ])("writes %p as %s", (name, wire) => {
    const out = new Uint8Array(64).fill(0xaa);
    const end = encodeName(name, out, 3);
    expect(toHex(out.subarray(3, end))).toBe(toHex(hex(wire)));
    expect(end - 3).toBe(nameWireLength(name));
    expect(out[end]).toBe(0xaa);
  });

  test.each([
    ["an empty label", "a..b"],
    ["a leading dot", ".a"],
    ["a 64-byte label", "x".repeat(64)],
    ["a space", "a b"],
    ["a non-ASCII character", "caf\u00e9.example"],
    ["a name over 255 bytes", Array(64).fill("abc").join(".")],
  ])("refuses %s", (_what, name) => {
    expect(encodeName(name, new Uint8Array(512), 0)).toBe(-1);
    expect(nameWireLength(name)).toBe(-1);
  });

  test("refuses a name that does not fit the buffer", () => {
    expect(encodeName("example.org", new Uint8Array(12), 0)).toBe(-1);
    expect(encodeName("example.org", new Uint8Array(13), 0)).toBe(13);
  });

  test("accepts a 63-byte label and a name of exactly 255 bytes", () => {
    expect(nameWireLength("x".repeat(63))).toBe(65);
    const name = [..."abcd"].map((c) => c.repeat(62)).join(".") + ".x";
    expect(nameWireLength(name)).toBe(MAX_NAME_WIRE_LEN);
  });
});

describe("encodeNameList()", () => {
  test("compresses the RFC 3397 example byte for byte", () => {
    const out = new Uint8Array(64);
    const end = encodeNameList(["eng.apple.com.", "marketing.apple.com."], out, 0, true);
    expect(toHex(out.subarray(0, end))).toBe(toHex(RFC3397_EXAMPLE));
  });

  test("counts pointer offsets from the start of the list, not of the buffer", () => {
    const out = new Uint8Array(64);
    const end = encodeNameList(["eng.apple.com", "marketing.apple.com"], out, 10, true);
    expect(toHex(out.subarray(10, end))).toBe(toHex(RFC3397_EXAMPLE));
  });

  test("points a repeated name wholly at its first copy, ignoring case", () => {
    const out = new Uint8Array(64);
    const end = encodeNameList(["a.example", "A.EXAMPLE"], out, 0, true);
    expect(toHex(out.subarray(0, end))).toBe("0161076578616d706c6500c000");
  });

  test("writes names in full without compression", () => {
    const out = new Uint8Array(64);
    const end = encodeNameList(["a.example", "b.example"], out, 0, false);
    expect(toHex(out.subarray(0, end))).toBe("0161076578616d706c6500" + "0162076578616d706c6500");
  });

  test.each([
    ["an invalid name", ["ok.example", "bad..example"], 64],
    ["the root name", [""], 64],
    ["a list that does not fit", ["a.example", "b.example"], 14],
  ])("refuses %s", (_what, names, size) => {
    expect(encodeNameList(names, new Uint8Array(size), 0, true)).toBe(-1);
  });
});

describe("decodeName()", () => {
  test("reads a name and says where the next one starts", () => {
    expect(decodeName(RFC3397_EXAMPLE, 0)).toEqual({ name: "eng.apple.com", next: 15 });
  });

  test("follows a pointer and resumes after it", () => {
    expect(decodeName(RFC3397_EXAMPLE, 15, { compression: true })).toEqual({
      name: "marketing.apple.com",
      next: RFC3397_EXAMPLE.length,
    });
  });

  test("reads the root name as the empty string", () => {
    expect(decodeName(hex("00"), 0)).toEqual({ name: "", next: 1 });
  });

  test.each([
    ["a pointer when compression is off", RFC3397_EXAMPLE, 15, false],
    ["a pointer to itself", hex("c000"), 0, true],
    ["a forward pointer", hex("c002 0161 00"), 0, true],
    ["a loop through two pointers", hex("0161 c004 c002"), 4, true],
    ["a pointer cut after one byte", hex("0161 00 c0"), 3, true],
    ["a label running past the end", hex("0561 6200"), 0, false],
    ["a name without its root label", hex("0161"), 0, false],
    ["the reserved label type 0x40", hex("41 00"), 0, false],
    ["the reserved label type 0x80", hex("81 00"), 0, false],
    ["a dot inside a label", hex("03 612e62 00"), 0, false],
    ["a control byte inside a label", hex("02 6100 00"), 0, false],
    ["an offset past the end", hex("00"), 1, false],
    ["a negative offset", hex("00"), -1, false],
  ])("rejects %s", (_what, bytes, offset, compression) => {
    expect(decodeName(bytes, offset, { compression })).toBeNull();
  });

  test("rejects a name longer than 255 bytes", () => {
    const out = new Uint8Array(300);
    let pos = 0;
    for (let i = 0; i < 5; i++) {
      out[pos++] = 63;
      out.fill(0x61, pos, pos + 63);
      pos += 63;
    }
    out[pos++] = 0; // 5 * 64 + 1 = 321 bytes
    expect(decodeName(out.subarray(0, pos), 0)).toBeNull();
  });

  test.each([
    [9, "accepts", 255],
    [10, "rejects", 256],
  ])("a %i-byte label before a pointer to a 245-byte name: %s a %i-byte expansion", (labelLen, verdict) => {
    const base = Array.from({ length: 4 }, () => "y".repeat(60)).join(".");
    const out = new Uint8Array(512);
    const baseEnd = encodeName(base, out, 0);
    expect(baseEnd).toBe(245);
    out[baseEnd] = labelLen;
    out.fill(0x7a, baseEnd + 1, baseEnd + 1 + labelLen);
    out[baseEnd + 1 + labelLen] = 0xc0; // pointer to offset 0
    out[baseEnd + 2 + labelLen] = 0x00;
    const read = decodeName(out.subarray(0, baseEnd + 3 + labelLen), baseEnd, { compression: true });
    if (verdict === "accepts") expect(read?.name).toBe("z".repeat(labelLen) + "." + base);
    else expect(read).toBeNull();
  });
});

describe("decodeNameList()", () => {
  test("reads the RFC 3397 example back", () => {
    expect(decodeNameList(RFC3397_EXAMPLE, { compression: true })).toEqual(["eng.apple.com", "marketing.apple.com"]);
  });

  test("round-trips a compressed list of several names", () => {
    const names = ["example.org", "lab.example.org", "dev.lab.example.org", "other.net"];
    const out = new Uint8Array(128);
    const end = encodeNameList(names, out, 0, true);
    expect(end).toBeLessThan(names.reduce((n, s) => n + nameWireLength(s), 0));
    expect(decodeNameList(out.subarray(0, end), { compression: true })).toEqual(names);
  });

  test("reads an empty list as no names", () => {
    expect(decodeNameList(new Uint8Array(0))).toEqual([]);
  });

  test("stops at zero padding when padding is allowed", () => {
    expect(decodeNameList(hex("0161 00 000000"), { padding: true })).toEqual(["a"]);
  });

  test.each([
    ["zero padding when padding is not allowed", hex("0161 00 00"), {}],
    ["padding that is not all zeros", hex("0161 00 00 01"), { padding: true }],
    ["a list cut inside a name", hex("0161 00 0162"), {}],
    ["a compressed list read without compression", RFC3397_EXAMPLE, {}],
  ])("rejects %s", (_what, bytes, options) => {
    expect(decodeNameList(bytes, options)).toBeNull();
  });
});
