// SPDX-License-Identifier: GPL-2.0-or-later
// ports.test.ts - the -t/-u/-T/-U SPEC grammar: every documented example, every form, every refusal

import { describe, expect, test } from "bun:test";
import { findConflict, parsePortSpec, type PortRule, type PortSpecOptions } from "../../../src/conf/ports.ts";

const PASTA: PortSpecOptions = { allowAuto: true, allowBind: true };
const OPTS: Readonly<Record<"-t pasta" | "-t passt" | "-T", PortSpecOptions>> = {
  "-t pasta": PASTA,
  "-t passt": { allowAuto: false, allowBind: true },
  "-T": { allowAuto: true, allowBind: false },
};

const v4 = (...b: number[]): Uint8Array => new Uint8Array(b);
const V6_LOOPBACK = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/** A rule with the defaults of a plain include chunk, overridden by `r`. */
function rule(r: Partial<PortRule> & { first: number }): PortRule {
  const last = r.last ?? r.first;
  return {
    bindAddr: null, ifname: null, last, toAddr: null, toFirst: r.first,
    exclude: [], all: false, auto: false, ...r,
  };
}

/** An `all` rule over 1-65535, overridden by `r`. */
function allRule(r: Partial<PortRule> = {}): PortRule {
  return rule({ first: 1, last: 65535, all: true, ...r });
}

function rules(spec: string, opts: PortSpecOptions = PASTA): readonly PortRule[] {
  const r = parsePortSpec(spec, opts);
  if (!r.ok) throw new Error(`unexpected refusal of ${spec}: ${r.reason}`);
  return r.rules;
}

function reason(spec: string, opts: PortSpecOptions = PASTA): string {
  const r = parsePortSpec(spec, opts);
  if (r.ok) throw new Error(`${spec} was accepted`);
  return r.reason;
}

describe("parsePortSpec() on the REFERENCE.md examples", () => {
  test.each<[string, PortRule[]]>([
    ["22:23", [rule({ first: 22, toFirst: 23 })]],
    ["22-80:32-90", [rule({ first: 22, last: 80, toFirst: 32 })]],
    ["192.0.2.1%eth0/22", [rule({ first: 22, bindAddr: v4(192, 0, 2, 1), ifname: "eth0" })]],
    [
      "0.0.0.0/5000:192.0.2.5/6000",
      [rule({ first: 5000, bindAddr: v4(0, 0, 0, 0), toAddr: v4(192, 0, 2, 5), toFirst: 6000 })],
    ],
    ["127.0.0.6/all:192.0.2.6", [allRule({ bindAddr: v4(127, 0, 0, 6), toAddr: v4(192, 0, 2, 6) })]],
    ["::1/auto", [allRule({ bindAddr: V6_LOOPBACK, auto: true })]],
    ["8000-8010,auto", [rule({ first: 8000, last: 8010, auto: true })]],
  ])("%p parses into the documented rules", (spec, expected) => {
    expect(rules(spec)).toEqual(expected);
  });
});

describe("parsePortSpec() on the passt(1) man page examples", () => {
  test.each<[string, PortRule[]]>([
    ["all", [allRule()]],
    ["::1/all", [allRule({ bindAddr: V6_LOOPBACK })]],
    ["22", [rule({ first: 22 })]],
    ["22,25", [rule({ first: 22 }), rule({ first: 25 })]],
    ["22-80", [rule({ first: 22, last: 80 })]],
    ["192.0.2.1/22", [rule({ first: 22, bindAddr: v4(192, 0, 2, 1) })]],
    ["%eth0/22", [rule({ first: 22, ifname: "eth0" })]],
    ["2000-5000,~3000-3010", [rule({ first: 2000, last: 2999 }), rule({ first: 3011, last: 5000 })]],
    [
      "192.0.2.1/20-30,~25",
      [rule({ first: 20, last: 24, bindAddr: v4(192, 0, 2, 1) }), rule({ first: 26, last: 30, bindAddr: v4(192, 0, 2, 1) })],
    ],
    ["~20000-20010", [allRule({ exclude: [{ first: 20000, last: 20010 }] })]],
    ["auto", [allRule({ auto: true })]],
  ])("%p parses into the documented rules", (spec, expected) => {
    expect(rules(spec)).toEqual(expected);
  });
});

describe("parsePortSpec() forms", () => {
  test("'none' gives no rules and says so", () => {
    expect(parsePortSpec("none", OPTS["-t passt"])).toEqual({ ok: true, none: true, rules: [] });
  });

  test.each<[string, PortRule[]]>([
    ["*/22", [rule({ first: 22 })]],
    ["*%eth0/22", [rule({ first: 22, ifname: "eth0" })]],
    ["/22", [rule({ first: 22 })]],
    ["[::1]/22", [rule({ first: 22, bindAddr: V6_LOOPBACK })]],
    ["0.0.0.0/22:192.0.2.9", [rule({ first: 22, bindAddr: v4(0, 0, 0, 0), toAddr: v4(192, 0, 2, 9) })]],
    ["0.0.0.0/all:192.0.2.9", [allRule({ bindAddr: v4(0, 0, 0, 0), toAddr: v4(192, 0, 2, 9) })]],
    ["8080-8081:80-81", [rule({ first: 8080, last: 8081, toFirst: 80 })]],
    ["22,all", [rule({ first: 22 })]],
    ["all,~20-25,~22-30", [allRule({ exclude: [{ first: 20, last: 30 }] })]],
    ["~30,~10-12", [allRule({ exclude: [{ first: 10, last: 12 }, { first: 30, last: 30 }] })]],
    ["1-10:101-110,~5", [rule({ first: 1, last: 4, toFirst: 101 }), rule({ first: 6, last: 10, toFirst: 106 })]],
    ["65535", [rule({ first: 65535 })]],
  ])("%p parses", (spec, expected) => {
    expect(rules(spec)).toEqual(expected);
  });

  test("an exclude covering a whole include leaves no rule for it", () => {
    expect(rules("22,~22")).toEqual([]);
  });
});

describe("parsePortSpec() refusals name the bad value", () => {
  test.each<[string, keyof typeof OPTS, string]>([
    ["70000", "-t pasta", "port 70000 out of range (1-65535)"],
    ["0", "-t pasta", "port 0 out of range (1-65535)"],
    ["22:70000", "-t pasta", "port 70000 out of range (1-65535)"],
    ["5-3", "-t pasta", "port range 5-3 is reversed"],
    ["5-", "-t pasta", "invalid port range '5-'"],
    ["192.0.2.300/22", "-t pasta", "invalid listening address '192.0.2.300'"],
    ["~", "-t pasta", "exclude '~' needs a port or range after '~'"],
    ["~x", "-t pasta", "exclude '~x' needs a port or range after '~'"],
    ["foo", "-t pasta", "invalid port 'foo'"],
    ["22,", "-t pasta", "empty port list entry"],
    ["none,22", "-t pasta", "invalid port 'none'"],
    ["22-80:32-91", "-t pasta", "target range 32-91 is not the same size as 22-80"],
    ["auto", "-t passt", "'auto' port forwarding is only allowed for pasta"],
    ["22:1.2.3/5", "-t pasta", "invalid target address '1.2.3'"],
    ["all:nothere", "-t pasta", "invalid target address 'nothere'"],
    ["0.0.0.0/22:224.0.0.1", "-t pasta", "multicast target address '224.0.0.1'"],
    ["%/22", "-t pasta", "invalid interface name ''"],
    ["%..", "-t pasta", "invalid port '%..'"],
    ["%../22", "-t pasta", "invalid interface name '..'"],
    ["%averyveryverylongname/22", "-t pasta", "interface name 'averyveryverylongname' too long (max 15)"],
    ["127.0.0.1/22", "-T", "listening address not allowed here"],
    ["%lo/22", "-T", "listening address not allowed here"],
  ])("%p as %s is refused: %p", (spec, as, expected) => {
    expect(reason(spec, OPTS[as])).toBe(expected);
  });

  test("a dual-stack listener with an IPv4 target is refused with a hint", () => {
    expect(reason("22:192.0.2.9")).toContain("0.0.0.0/...");
  });

  test("an IPv4 listener with an IPv6 target is refused", () => {
    expect(reason("192.0.2.1/22:[2001:db8::1]/22")).toContain("different IP versions");
  });
});

describe("findConflict()", () => {
  const existing = [...rules("22-30"), ...rules("0.0.0.0/40"), ...rules("192.0.2.7/50")];

  test.each<[string, boolean]>([
    ["25", true],
    ["31-39", false],
    ["192.0.2.1/40", true],
    ["192.0.2.1/25", true],
    ["192.0.2.8/50", false],
    ["192.0.2.7/50", true],
    ["0.0.0.0/40", true],
    ["[::1]/40", false],
    ["40", true],
    ["all", false],
  ])("a new rule %p conflicts: %p", (spec, conflicts) => {
    const hit = rules(spec).some((r) => findConflict(r, existing) !== null);
    expect(hit).toBe(conflicts);
  });
});
