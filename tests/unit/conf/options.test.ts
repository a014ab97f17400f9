// SPDX-License-Identifier: GPL-2.0-or-later
// options.test.ts - the option table: lookups, help text, and a handler for every row

import { describe, expect, test } from "bun:test";
import { parseArgs } from "../../../src/conf.ts";
import { usage } from "../../../src/conf/cli.ts";
import { acceptedBy, findLong, findShort, type Mode, OPTIONS } from "../../../src/conf/options.ts";

/** A valid argument for each option that takes one. */
const SAMPLE: Readonly<Record<string, string>> = {
  stats: "1", "log-file": "/tmp/x.log", "log-size": "65536", runas: "1000", "conf-path": "/tmp/c",
  pcap: "/tmp/x.pcap", pid: "/tmp/x.pid", mtu: "1500", address: "192.0.2.1", netmask: "24",
  "mac-addr": "02:00:00:00:00:01", gateway: "192.0.2.254", interface: "eth0", outbound: "192.0.2.1",
  "outbound-if4": "eth0", "outbound-if6": "eth0", dns: "192.0.2.53", "dns-forward": "192.0.2.53",
  "dns-host": "192.0.2.53", search: "example.org", "map-host-loopback": "192.0.2.1",
  "map-guest-addr": "192.0.2.2", hostname: "h", fqdn: "h.example", "tcp-ports": "22", "udp-ports": "53",
  socket: "/tmp/s", "repair-path": "none", fd: "3", "ns-ifname": "ns0", "tcp-ns": "none", "udp-ns": "none",
  userns: "/u", netns: "n", "ns-mac-addr": "02:00:00:00:00:02",
};

/** Options that only parse together with another one. */
const NEEDS: Readonly<Record<string, readonly string[]>> = {
  stats: ["-f"],
  "no-copy-routes": ["--config-net"],
  "no-copy-addrs": ["--config-net"],
  "migrate-exit": ["--vhost-user"],
  "migrate-no-linger": ["--vhost-user"],
};

describe("OPTIONS", () => {
  test("no two rows share a short letter or a long name", () => {
    const shorts = OPTIONS.flatMap((d) => (d.short ? [d.short] : []));
    const longs = OPTIONS.flatMap((d) => [d.name, ...d.aliases]);
    expect(new Set(shorts).size).toBe(shorts.length);
    expect(new Set(longs).size).toBe(longs.length);
  });

  test("no --no-* option takes a value, so citty never reads a --no-* token as a value", () => {
    expect(OPTIONS.filter((d) => d.name.startsWith("no-") && d.arg !== null).map((d) => d.name)).toEqual([]);
  });

  test("every row with an argument has a sample here, so the next test covers it", () => {
    expect(OPTIONS.filter((d) => d.arg && SAMPLE[d.name] === undefined).map((d) => d.name)).toEqual([]);
  });

  const rows = OPTIONS.filter((d) => d.name !== "help" && d.name !== "version").map((d) => [d.name] as const);
  test.each(rows)("--%s is handled by parseArgs() and recorded as given", (name) => {
    const def = OPTIONS.find((d) => d.name === name)!;
    const mode: Mode = acceptedBy(def, "passt") ? "passt" : "pasta";
    const argv = [...(NEEDS[name] ?? []), `--${name}`, ...(def.arg ? [SAMPLE[name]!] : [])];
    expect(parseArgs(mode, argv).given.has(name)).toBe(true);
  });
});

describe("findShort() and findLong()", () => {
  test.each<[string, string | null]>([
    ["d", "debug"],
    ["4", "ipv4-only"],
    ["1", "one-off"],
    ["T", "tcp-ns"],
    ["x", null],
  ])("-%s is %p", (letter, name) => {
    expect(findShort(letter)?.name ?? null).toBe(name);
  });

  test.each<[string, string | null]>([
    ["debug", "debug"],
    ["socket-path", "socket"],
    ["socket-p", "socket"],
    ["sock", "socket"],
    ["fore", "foreground"],
    ["netns", "netns"],
    ["no-dhcp", "no-dhcp"],
    ["bogus", null],
  ])("--%s is %p", (name, expected) => {
    const found = findLong(name);
    expect(found !== null && "name" in found ? found.name : null).toBe(expected);
  });

  test("an ambiguous abbreviation returns the candidates", () => {
    expect(findLong("outbound-if")).toEqual(["--outbound-if4", "--outbound-if6"]);
  });
});

describe("usage()", () => {
  test.each<[Mode, string]>([
    ["pasta", "--config-net"],
    ["pasta", "-T, --tcp-ns=<SPEC>"],
    ["pasta", "USAGE pasta [OPTIONS] [COMMAND]"],
    ["pasta", "or the PID of a process"],
    ["passt", "-s, --socket=<PATH>"],
    ["passt", "--socket-path"],
    ["passt", "--vhost-user"],
    ["passt", "USAGE passt [OPTIONS]"],
    ["passt", "-1, --one-off"],
    ["passt", "(passt v"],
  ])("%s help contains %p", async (name, text) => {
    expect(await usage(name)).toContain(text);
  });

  test.each<[Mode, string]>([
    ["passt", "--config-net"],
    ["passt", "--tcp-ns"],
    ["passt", "--dhcp-dns "],
    ["passt", "COMMAND"],
    ["pasta", "--socket"],
    ["pasta", "--one-off"],
    ["pasta", "--no-dhcp-search"],
    ["pasta", "--vhost-user"],
    ["pasta", "--fd"],
    ["passt", "--no-splice"],
  ])("%s help leaves out %p", async (name, text) => {
    expect(await usage(name)).not.toContain(text);
  });

  test("every option listed for a name gets one line with its short letter, placeholder and description", async () => {
    for (const name of ["pasta", "passt"] as const) {
      const lines = (await usage(name)).split("\n");
      for (const def of OPTIONS) {
        if (!acceptedBy(def, name) || (def.section !== "common" && def.section !== name)) continue;
        const label = `${def.short ? `-${def.short}, ` : ""}--${def.name}${def.arg ? `=<${def.arg}>` : ""}`;
        const line = lines.find((l) => l.includes(` ${label} `) && l.includes(def.help));
        expect(line, `${name} --${def.name}`).toBeDefined();
      }
    }
  });

  test("the text has no colour codes unless asked for, and no trailing blanks", async () => {
    const text = await usage("pasta");
    expect(text).not.toContain("\x1b[");
    expect(text).not.toMatch(/[ \t]$/m);
  });
});
