// SPDX-License-Identifier: GPL-2.0-or-later
// cli.test.ts - the citty commands: what they declare, what citty's parseArgs() is given and reads back, --help

import { describe, expect, mock, test } from "bun:test";
import * as citty from "citty";

// Every call of citty's parseArgs() goes through this spy, which passes it
// on unchanged: the tests below see the vectors cli.ts gives citty.
const realParseArgs = citty.parseArgs;
const vectors: string[][] = [];
const argsDefs: citty.ArgsDef[] = [];
mock.module("citty", () => ({
  ...citty,
  parseArgs: (rawArgs: string[], argsDef: citty.ArgsDef) => {
    vectors.push([...rawArgs]);
    argsDefs.push(argsDef);
    return realParseArgs(rawArgs, argsDef);
  },
}));

const { command, readCommandLine, usage, versionLine } = await import("../../../src/conf/cli.ts");
const { parseArgs } = await import("../../../src/conf.ts");
const { acceptedBy, OPTIONS } = await import("../../../src/conf/options.ts");
const { VERSION } = await import("../../../src/version.ts");
type Mode = "pasta" | "passt";

/** Returns the vectors citty's parseArgs() was given while `run` ran. */
function vectorsOf(run: () => unknown): string[][] {
  vectors.length = 0;
  run();
  return vectors.splice(0);
}

/** Returns the args of `mode`'s command, which cli.ts builds as a plain object. */
function argsOf(mode: Mode): Record<string, citty.ArgDef> {
  return command(mode).args as Record<string, citty.ArgDef>;
}

describe("command()", () => {
  test.each<[Mode]>([["pasta"], ["passt"]])("%s is a citty command with its name, version and description", (mode) => {
    const meta = command(mode).meta as citty.CommandMeta;
    expect(meta.name).toBe(mode);
    expect(meta.version).toBe(VERSION);
    expect(meta.description).toContain("user-mode networking");
  });

  test.each<[Mode]>([["pasta"], ["passt"]])("%s declares exactly the options it accepts", (mode) => {
    const declared = Object.keys(argsOf(mode)).filter((n) => n !== "command");
    expect(declared).toEqual(OPTIONS.filter((d) => acceptedBy(d, mode)).map((d) => d.name));
  });

  test("each option is a citty flag or string, its short letter the alias, its placeholder the value hint", () => {
    const args = { ...argsOf("passt"), ...argsOf("pasta") };
    for (const def of OPTIONS) {
      const arg = args[def.name]!;
      expect(arg.type, def.name).toBe(def.arg ? "string" : "boolean");
      expect("alias" in arg ? arg.alias : undefined, def.name).toEqual(def.short ?? undefined);
      expect(arg.valueHint, def.name).toEqual(def.arg ?? undefined);
      expect(arg.description, def.name).toStartWith(def.help);
    }
  });

  test("pasta's operands are one optional citty positional; passt has none", () => {
    expect(argsOf("pasta").command).toMatchObject({ type: "positional", required: false });
    expect(argsOf("passt").command).toBeUndefined();
  });
});

describe("readCommandLine() through citty's parseArgs()", () => {
  test("a getopt_long command line reaches citty as one normalised vector", () => {
    const argv = ["-4f", "-t22", "--config-n", "--mtu", "1500", "-D::1", "ip", "-4", "addr"];
    expect(vectorsOf(() => readCommandLine("pasta", argv))).toEqual([[
      "--ipv4-only", "--foreground", "--tcp-ports=22", "--config-net", "--mtu=1500", "--dns=::1",
      "--", "ip", "-4", "addr",
    ]]);
    expect(vectorsOf(() => readCommandLine("passt", ["-s", "-weird", "--sock", "x"]))).toEqual([
      ["--socket=-weird"],
      ["--socket=x", "--"],
    ]);
  });

  test("citty parses against the command's own args, for the options in the vector", () => {
    argsDefs.length = 0;
    vectorsOf(() => readCommandLine("pasta", ["-t22", "--no-splice", "-d"]));
    const given = argsDefs.splice(0);
    expect(given).toHaveLength(1);
    expect(Object.keys(given[0]!)).toEqual(["tcp-ports", "no-splice", "debug"]);
    for (const [name, arg] of Object.entries(given[0]!)) expect(arg).toBe(argsOf("pasta")[name]!);
  });

  test("values and operands are what citty read back", () => {
    const line = readCommandLine("pasta", ["-t22", "--search", "a=b c", "--runas=", "--", "sh", "--help"]);
    expect(line.options.map((t) => [t.def.name, t.typed, t.value])).toEqual([
      ["tcp-ports", "-t", "22"],
      ["search", "--search", "a=b c"],
      ["runas", "--runas", ""],
    ]);
    expect(line.operands).toEqual(["sh", "--help"]);
    expect(line.error).toBeNull();
  });

  test("a repeated option starts a new segment, so citty keeps every value, in argv order", () => {
    let line!: ReturnType<typeof readCommandLine>;
    const seen = vectorsOf(() => (line = readCommandLine("pasta", ["-t", "22", "-u", "53", "-t", "80", "ip"])));
    expect(seen).toEqual([["--tcp-ports=22", "--udp-ports=53"], ["--tcp-ports=80", "--", "ip"]]);
    expect(line.options.map((t) => `${t.typed} ${t.value}`)).toEqual(["-t 22", "-u 53", "-t 80"]);
  });

  test("--no-X options stay options of their own, read back from citty's X: false", () => {
    const line = readCommandLine("passt", ["--no-tcp", "--no-dhcp", "--no-dhcpv6", "--no-dhcp-dns", "-d"]);
    expect(line.options.map((t) => t.def.name)).toEqual(["no-tcp", "no-dhcp", "no-dhcpv6", "no-dhcp-dns", "debug"]);
    const parsed: Record<string, unknown> = realParseArgs(["--no-tcp"], argsOf("passt"));
    expect(parsed.tcp).toBe(false);
  });

  test("a repeated --no-X option gets a segment of its own too", () => {
    const seen = vectorsOf(() => readCommandLine("passt", ["--no-dhcp-search", "--no-dhcp-search"]));
    expect(seen).toEqual([["--no-dhcp-search"], ["--no-dhcp-search", "--"]]);
  });

  test("the first option the mode does not declare ends the line; what came before is still read", () => {
    const line = readCommandLine("pasta", ["-d", "--socket", "/tmp/s", "-q"]);
    expect(line.options.map((t) => t.def.name)).toEqual(["debug"]);
    expect(line.error?.message).toBe("--socket is for passt mode only");
  });

  test("--vhost-user selects passt's command before anything is read", () => {
    const line = readCommandLine("pasta", ["-s", "/tmp/s", "--vhost-user"]);
    expect(line.mode).toBe("passt");
    expect(line.options.map((t) => t.value)).toEqual(["/tmp/s", ""]);
  });

  test("parseArgs() of conf.ts gets every option type through citty", () => {
    const seen = vectorsOf(() => parseArgs("pasta", ["--no-splice", "-T", "8080", "-q", "--", "true"]));
    expect(seen).toEqual([["--no-splice", "--tcp-ns=8080", "--quiet", "--", "true"]]);
  });
});

describe("usage() and versionLine()", () => {
  test.each<[Mode]>([["pasta"], ["passt"]])("%s --help is citty's rendering of the command's listed options", async (mode) => {
    const args = argsOf(mode);
    const listed: Record<string, citty.ArgDef> = {};
    for (const def of OPTIONS) {
      if (acceptedBy(def, mode) && (def.section === "common" || def.section === mode)) listed[def.name] = args[def.name]!;
    }
    if (args.command) listed.command = args.command;
    const expected = await citty.renderUsage(citty.defineCommand({ meta: command(mode).meta!, args: listed }));
    expect(await usage(mode)).toBe(`${Bun.stripANSI(expected).replace(/[ \t]+$/gm, "")}\n`);
  });

  test("--version is the command's meta name and version", () => {
    expect(versionLine("pasta")).toBe(`pasta ${VERSION}`);
    expect(versionLine("passt")).toBe(`passt ${VERSION}`);
  });
});
