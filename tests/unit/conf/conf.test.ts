// SPDX-License-Identifier: GPL-2.0-or-later
// conf.test.ts - parseArgs(): scanning, every option's validation, implications, defaults, operands

import { describe, expect, test } from "bun:test";
import { type Config, ConfError, type LogLevel, type Mode, parseArgs, unsupportedOptions } from "../../../src/conf.ts";
import { VERSION } from "../../../src/version.ts";

const ip = (...b: number[]): Uint8Array => new Uint8Array(b);
const ip6 = (...tail: number[]): Uint8Array => {
  const a = new Uint8Array(16);
  a.set(tail, 16 - tail.length);
  return a;
};
const DOC6 = new Uint8Array([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]); // 2001:db8::1

/** Returns the ConfError message parseArgs() throws; fails the test if it accepts. */
function errorOf(name: Mode, argv: string[]): string {
  try {
    parseArgs(name, argv);
  } catch (e) {
    if (e instanceof ConfError) return e.message;
    throw e;
  }
  throw new Error(`accepted: ${name} ${argv.join(" ")}`);
}

describe("parseArgs() defaults", () => {
  test("passt forwards nothing, sends DNS and search lists, and daemonises", () => {
    const c = parseArgs("passt", []);
    expect(c.mode).toBe("passt");
    expect(c.action).toBe("run");
    expect(c.fwd.tcpIn).toEqual({ rules: [], origin: "default", auto: false });
    expect(c.fwd.udpIn).toEqual({ rules: [], origin: "default", auto: false });
    expect(c.fwd.tcpOut.rules).toEqual([]);
    expect(c.dhcpDns).toBe(true);
    expect(c.dhcpSearch).toBe(true);
    expect(c.foreground).toBe(false);
    expect(c.noSplice).toBe(true);
    expect(c.logLevel).toBe("info");
  });

  test("pasta defaults to auto in all four tables, without being reported unsupported", () => {
    const c = parseArgs("pasta", []);
    for (const t of [c.fwd.tcpIn, c.fwd.udpIn, c.fwd.tcpOut, c.fwd.udpOut]) {
      expect(t.origin).toBe("default");
      expect(t.auto).toBe(true);
      expect(t.rules).toHaveLength(1);
      expect(t.rules[0]!.all).toBe(true);
    }
    expect(unsupportedOptions(c)).toEqual([]);
    expect(c.dhcpDns).toBe(false);
    expect(c.foreground).toBe(true);
    expect(c.noSplice).toBe(false);
  });

  test("addresses and host-derived values stay null for the next layer", () => {
    const c = parseArgs("pasta", []);
    expect([c.addr4, c.addr6, c.prefixLen4, c.gateway4, c.gateway6, c.dns, c.search, c.ifname]).toEqual(
      [null, null, null, null, null, null, null, null],
    );
    expect(c.mtu).toBe(65520);
    expect(c.mac).toEqual(ip(0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55));
    expect(c.logSize).toBe(1024 * 1024);
  });

  test("the returned Config is frozen", () => {
    const c = parseArgs("passt", ["-t", "22"]);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.fwd.tcpIn.rules)).toBe(true);
  });
});

describe("parseArgs() scanning, getopt_long style", () => {
  test.each<[string, string[], (c: Config) => unknown, unknown]>([
    ["a short cluster", ["-4f"], (c) => [c.ipv4Only, c.foreground], [true, true]],
    ["a value attached to a short option", ["-m1500"], (c) => c.mtu, 1500],
    ["a value attached inside a cluster", ["-fm1500"], (c) => [c.foreground, c.mtu], [true, 1500]],
    ["--opt=value", ["--mtu=1400"], (c) => c.mtu, 1400],
    ["--opt value", ["--mtu", "1300"], (c) => c.mtu, 1300],
    ["an unambiguous long prefix", ["--fore"], (c) => c.foreground, true],
    ["an exact name that prefixes others", ["--no-dhcp"], (c) => [c.noDhcp, c.noDhcpv6], [true, false]],
    ["the --socket-path alias", ["--socket-path", "/tmp/s"], (c) => c.socketPath, "/tmp/s"],
    ["a value starting with a dash", ["-s", "-weird"], (c) => c.socketPath, "-weird"],
  ])("accepts %s", (_what, argv, get, expected) => {
    expect(get(parseArgs("passt", argv))).toEqual(expected);
  });

  test.each<[string[], string]>([
    [["--no-such-option"], "--no-such-option: unknown option"],
    [["--no-such-option=3"], "--no-such-option: unknown option"],
    [["-z"], "-z: unknown option"],
    [["-fz"], "-z: unknown option"],
    [["-m"], "-m: option requires an argument"],
    [["--mtu"], "--mtu: option requires an argument"],
    [["--debug=1"], "--debug: option takes no argument"],
  ])("refuses %p: %p", (argv, message) => {
    expect(errorOf("passt", argv)).toBe(message);
  });

  test("an ambiguous prefix lists the candidates", () => {
    expect(errorOf("passt", ["--map"])).toBe("--map: ambiguous option (--map-host-loopback, --map-guest-addr)");
  });

  test("--help wins over a later error, as getopt stops there", () => {
    expect(parseArgs("pasta", ["--help", "--bogus"]).action).toBe("help");
    expect(parseArgs("passt", ["-h"]).action).toBe("help");
    expect(errorOf("pasta", ["--bogus", "--help"])).toBe("--bogus: unknown option");
  });

  test("--version sets the version action", () => {
    expect(parseArgs("passt", ["-d", "--version"]).action).toBe("version");
  });
});

describe("parseArgs() repeated options: the last one wins", () => {
  test.each<[string[], (c: Config) => unknown, unknown]>([
    [["-m", "1000", "-m", "2000"], (c) => c.mtu, 2000],
    [["-4", "-6"], (c) => [c.ipv4Only, c.ipv6Only], [false, true]],
    [["-6", "-4"], (c) => [c.ipv4Only, c.ipv6Only], [true, false]],
    [["-M", "02:00:00:00:00:01", "-M", "02:00:00:00:00:02"], (c) => c.mac, ip(2, 0, 0, 0, 0, 2)],
    [["-p", "a.pcap", "-p", "b.pcap"], (c) => c.pcap, "b.pcap"],
    [["-l", "a.log", "-l", "b.log"], (c) => c.logFile, "b.log"],
    [["-g", "192.0.2.1", "-g", "192.0.2.2"], (c) => c.gateway4, ip(192, 0, 2, 2)],
    [["-a", "192.0.2.1", "-a", "192.0.2.9"], (c) => c.addr4, ip(192, 0, 2, 9)],
  ])("%p", (argv, get, expected) => {
    expect(get(parseArgs("passt", argv))).toEqual(expected);
  });
});

describe("parseArgs() log level", () => {
  test.each<[string[], LogLevel]>([
    [[], "info"],
    [["-q"], "warn"],
    [["-d"], "debug"],
    [["--trace"], "trace"],
    [["-d", "-q"], "warn"],
    [["-q", "-d"], "debug"],
    [["--trace", "-q"], "warn"],
    [["--trace", "-d"], "trace"],
  ])("%p logs at %p", (argv, level) => {
    expect(parseArgs("passt", argv).logLevel).toBe(level);
  });

  test("--log-size takes bytes, 0x hex, and refuses less than 40960", () => {
    expect(parseArgs("passt", ["--log-size", "65536"]).logSize).toBe(65536);
    expect(parseArgs("passt", ["--log-size", "0x10000"]).logSize).toBe(65536);
    expect(errorOf("passt", ["--log-size", "4096"])).toBe("--log-size 4096: invalid log size (minimum 40960 bytes)");
    expect(errorOf("passt", ["--log-size", "1M"])).toBe("--log-size 1M: invalid log size (minimum 40960 bytes)");
  });

  test("-e is accepted and leaves a deprecation warning", () => {
    expect(parseArgs("passt", ["-e"]).warnings).toEqual(["--stderr will be dropped soon"]);
  });
});

describe("parseArgs() MTU", () => {
  test.each<[string, number]>([
    ["0", 0],
    ["68", 68],
    ["1500", 1500],
    ["0x5dc", 1500],
    ["65521", 65521],
  ])("-m %p is MTU %p", (text, mtu) => {
    expect(parseArgs("passt", ["-m", text]).mtu).toBe(mtu);
  });

  test.each<[string, string]>([
    ["65522", "-m 65522: MTU 65522 too large (max 65521)"],
    ["100000", "-m 100000: MTU 100000 too large (max 65521)"],
    ["abc", "-m abc: invalid MTU"],
    ["-1", "-m -1: invalid MTU"],
    ["", "-m : invalid MTU"],
  ])("-m %p is refused", (text, message) => {
    expect(errorOf("passt", ["-m", text])).toBe(message);
  });
});

describe("parseArgs() addresses", () => {
  test.each<[string[], (c: Config) => unknown, unknown]>([
    [["-a", "192.0.2.1/25"], (c) => [c.addr4, c.prefixLen4], [ip(192, 0, 2, 1), 25]],
    [["-a", "10.1.2.3"], (c) => c.prefixLen4, 8],
    [["-a", "172.16.0.5"], (c) => c.prefixLen4, 16],
    [["-a", "192.168.1.5"], (c) => c.prefixLen4, 24],
    [["-n", "20", "-a", "192.168.1.5"], (c) => c.prefixLen4, 20],
    [["-a", "192.168.1.5", "-n", "255.255.0.0"], (c) => c.prefixLen4, 16],
    [["-n", "255.255.255.252"], (c) => [c.addr4, c.prefixLen4], [null, 30]],
    [["-n", "0"], (c) => c.prefixLen4, 0],
    [["-a", "2001:db8::1"], (c) => [c.addr6, c.prefixLen6], [DOC6, 64]],
    [["-a", "2001:db8::1/48"], (c) => [c.addr6, c.prefixLen6], [DOC6, 48]],
    [["-a", "[2001:db8::1]"], (c) => c.addr6, DOC6],
    [["-a", "::ffff:192.0.2.1"], (c) => c.addr4, ip(192, 0, 2, 1)],
    [["-a", "192.0.2.1", "-a", "2001:db8::1"], (c) => [c.addr4, c.addr6], [ip(192, 0, 2, 1), DOC6]],
    [["-a", "192.0.2.1"], (c) => [c.noCopyAddrs4, c.noCopyAddrs6], [true, false]],
    [["-g", "192.0.2.254"], (c) => c.gateway4, ip(192, 0, 2, 254)],
    [["-g", "fe80::1"], (c) => c.gateway6, new Uint8Array([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])],
    [["-o", "192.0.2.3"], (c) => c.outbound4, ip(192, 0, 2, 3)],
    [["-o", "2001:db8::1"], (c) => c.outbound6, DOC6],
    [["--dns-forward", "192.0.2.53"], (c) => c.dnsForward4, ip(192, 0, 2, 53)],
    [["--dns-host", "::1"], (c) => c.dnsHost6, ip6(1)],
    [["--map-guest-addr", "192.0.2.77"], (c) => c.mapGuestAddr4, ip(192, 0, 2, 77)],
    [["--map-host-loopback", "2001:db8::1"], (c) => [c.mapHostLoopback6, c.noMapGw], [DOC6, false]],
    [["--map-host-loopback", "none"], (c) => [c.mapHostLoopback4, c.noMapGw], [null, true]],
    [["--no-map-gw"], (c) => c.noMapGw, true],
    [["-M", "9A:55:9a:55:9a:56"], (c) => c.mac, ip(0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x56)],
  ])("%p", (argv, get, expected) => {
    expect(get(parseArgs("passt", argv))).toEqual(expected);
  });

  test("-g in pasta stops copying routes for that IP version only", () => {
    const c = parseArgs("pasta", ["-g", "192.0.2.254"]);
    expect([c.noCopyRoutes4, c.noCopyRoutes6]).toEqual([true, false]);
  });

  test.each<[string[], string]>([
    [["-a", "192.0.2.300"], "-a 192.0.2.300: invalid address"],
    [["-a", "127.0.0.1"], "-a 127.0.0.1: invalid address"],
    [["-a", "::1"], "-a ::1: invalid address"],
    [["-a", "0.0.0.0"], "-a 0.0.0.0: invalid address"],
    [["-a", "224.0.0.1"], "-a 224.0.0.1: invalid address"],
    [["-a", "192.0.2.1/33"], "-a 192.0.2.1/33: invalid prefix length (0-32)"],
    [["-a", "2001:db8::1/129"], "-a 2001:db8::1/129: invalid prefix length (0-128)"],
    [["-a", "192.0.2.1/x"], "-a 192.0.2.1/x: invalid prefix length (0-32)"],
    [["-n", "24", "-a", "192.0.2.1/24"], "-a 192.0.2.1/24: redundant prefix length: -n also given"],
    [["-a", "192.0.2.1/24", "-n", "24"], "-n 24: redundant prefix length: -a also gave one"],
    [["-n", "33"], "-n 33: invalid netmask or prefix length (0-32)"],
    [["-n", "255.0.255.0"], "-n 255.0.255.0: invalid netmask or prefix length (0-32)"],
    [["-M", "9a:55:9a:55:9a"], "-M 9a:55:9a:55:9a: invalid MAC address"],
    [["-M", "9a-55-9a-55-9a-55"], "-M 9a-55-9a-55-9a-55: invalid MAC address"],
    [["-g", "127.0.0.1"], "-g 127.0.0.1: invalid gateway address"],
    [["-g", "255.255.255.255"], "-g 255.255.255.255: invalid gateway address"],
    [["-g", "gw"], "-g gw: invalid gateway address"],
    [["-o", "224.0.0.1"], "-o 224.0.0.1: invalid outbound address"],
    [["-o", "::ffff:192.0.2.1"], "-o ::ffff:192.0.2.1: invalid outbound address"],
    [["--dns-forward", "127.0.0.1"], "--dns-forward 127.0.0.1: invalid DNS forwarding address"],
    [["--dns-host", "0.0.0.0"], "--dns-host 0.0.0.0: invalid host nameserver address"],
    [["--map-host-loopback", "127.0.0.1"], "--map-host-loopback 127.0.0.1: invalid address to remap"],
    [["--map-guest-addr", "ff02::1"], "--map-guest-addr ff02::1: invalid address to remap"],
  ])("%p is refused", (argv, message) => {
    expect(errorOf("passt", argv)).toBe(message);
  });
});

describe("parseArgs() DNS and names", () => {
  test("-D is cumulative, keeps at most three per IP version, and 'none' empties it", () => {
    const c = parseArgs("passt", ["-D", "192.0.2.1", "-D", "2001:db8::1", "-D", "192.0.2.2"]);
    expect(c.dns).toEqual([ip(192, 0, 2, 1), ip(192, 0, 2, 2), DOC6]);
    const many = ["1", "2", "3", "4"].flatMap((n) => ["-D", `192.0.2.${n}`]);
    expect(parseArgs("passt", many).dns).toHaveLength(3);
    expect(parseArgs("passt", ["-D", "192.0.2.1", "-D", "none"]).dns).toEqual([]);
    expect(parseArgs("passt", ["-D", "none", "-D", "192.0.2.1"]).dns).toEqual([ip(192, 0, 2, 1)]);
  });

  test("-D none also drops --dns-forward and --dns-host given before it", () => {
    const c = parseArgs("passt", ["--dns-forward", "192.0.2.53", "--dns-host", "192.0.2.1", "-D", "none"]);
    expect([c.dnsForward4, c.dnsHost4]).toEqual([null, null]);
  });

  test("-D refuses what is not an address", () => {
    expect(errorOf("passt", ["-D", "dns.example"])).toBe("-D dns.example: invalid DNS address");
  });

  test("-S takes a space-separated list, repeatable, 'none' empties it, at most six", () => {
    expect(parseArgs("passt", ["-S", "a.example b.example", "-S", "c.example"]).search).toEqual([
      "a.example", "b.example", "c.example",
    ]);
    expect(parseArgs("passt", ["-S", "a.example", "-S", "none"]).search).toEqual([]);
    expect(errorOf("passt", ["-S", "a b c d e f g"])).toBe("-S a b c d e f g: too many search domains (max 6)");
  });

  test.each<[string[], string]>([
    [["-i", "averyveryverylongname"], "-i averyveryverylongname: interface name too long (max 15)"],
    [["-i", "a/b"], "-i a/b: invalid interface name"],
    [["--outbound-if4", ""], "--outbound-if4 : invalid interface name"],
    [["-H", ""], "-H : invalid hostname (1-253 characters)"],
    [["--fqdn", "x".repeat(254)], `--fqdn ${"x".repeat(254)}: invalid FQDN (1-253 characters)`],
    [["-s", "/tmp/" + "s".repeat(110)], `-s /tmp/${"s".repeat(110)}: socket path too long (max 107 bytes)`],
    [["-P", ""], "-P : empty PID file path"],
    [["-F", "x"], "-F x: invalid file descriptor"],
    [["-F", "2147483648"], "-F 2147483648: invalid file descriptor"],
    [["--stats", "1"], "--stats: can't display statistics if not running in foreground"],
  ])("%p is refused", (argv, message) => {
    expect(errorOf("passt", argv)).toBe(message);
  });

  test.each<[string[], (c: Config) => unknown, unknown]>([
    [["-i", "eth0"], (c) => c.ifname, "eth0"],
    [["--outbound-if6", "wlan0"], (c) => c.outboundIf6, "wlan0"],
    [["-H", "guest"], (c) => c.hostname, "guest"],
    [["--fqdn", "guest.example"], (c) => c.fqdn, "guest.example"],
    [["-f", "--stats", "5"], (c) => c.statsDelayS, 5],
    [["--runas", "nobody:nogroup"], (c) => c.runas, "nobody:nogroup"],
    [["-c", "/tmp/ctl"], (c) => c.confPath, "/tmp/ctl"],
    [["-P", "/run/passt.pid"], (c) => c.pidFile, "/run/passt.pid"],
  ])("%p", (argv, get, expected) => {
    expect(get(parseArgs("passt", argv))).toEqual(expected);
  });
});

describe("parseArgs() implications", () => {
  test.each<[Mode, string[], (c: Config) => unknown, unknown]>([
    ["passt", ["--no-icmp"], (c) => [c.noIcmp, c.noNdp], [true, true]],
    ["passt", ["--no-ndp"], (c) => [c.noIcmp, c.noNdp], [false, true]],
    ["pasta", ["--config-net"], (c) => [c.configNet, c.noRa], [true, true]],
    ["passt", ["-F", "5"], (c) => [c.fd, c.oneOff, c.socketPath], [5, true, null]],
    ["passt", ["-s", "/tmp/s", "-F", "5"], (c) => [c.fd, c.socketPath], [5, null]],
    ["passt", ["-F", "5", "-s", "/tmp/s"], (c) => [c.fd, c.oneOff, c.socketPath], [null, true, "/tmp/s"]],
    ["passt", ["-1"], (c) => c.oneOff, true],
    ["pasta", ["--netns", "ns1"], (c) => [c.netns, c.netnsOnly, c.foreground], ["/run/netns/ns1", true, false]],
    ["pasta", ["--netns", "/proc/1/ns/net"], (c) => c.netns, "/proc/1/ns/net"],
    ["pasta", ["--userns", "/u", "--netns", "/n"], (c) => [c.userns, c.netnsOnly], ["/u", false]],
    ["pasta", ["--userns", "/u", "--netns-only"], (c) => [c.userns, c.netnsOnly], [null, true]],
    ["pasta", ["--dhcp-dns", "--dhcp-search"], (c) => [c.dhcpDns, c.dhcpSearch], [true, true]],
    ["passt", ["--no-dhcp-dns", "--no-dhcp-search"], (c) => [c.dhcpDns, c.dhcpSearch], [false, false]],
    ["pasta", ["--splice-only"], (c) => [c.hostLoToNsLo, c.noIcmp, c.noNdp, c.dns, c.search], [true, true, true, [], []]],
    ["pasta", ["--config-net", "--no-copy-routes"], (c) => [c.noCopyRoutes4, c.noCopyRoutes6], [true, true]],
    ["pasta", ["--ns-mac-addr", "02:00:00:00:00:09"], (c) => c.nsMac, ip(2, 0, 0, 0, 0, 9)],
    ["pasta", ["-I", "ns0"], (c) => c.nsIfname, "ns0"],
    ["passt", ["--repair-path", "none"], (c) => [c.repairPath, c.noRepair], [null, true]],
    ["passt", ["--vhost-user", "--repair-path", "/tmp/r"], (c) => c.repairPath, "/tmp/r"],
    ["pasta", ["--vhost-user"], (c) => [c.mode, c.vhostUser], ["passt", true]],
  ])("%s %p", (name, argv, get, expected) => {
    expect(get(parseArgs(name, argv))).toEqual(expected);
  });

  test.each<[Mode, string[], string]>([
    ["passt", ["--splice-only"], "--splice-only is for pasta mode only"],
    ["pasta", ["--splice-only", "--no-splice"], "--splice-only is incompatible with --no-splice"],
    ["pasta", ["--host-lo-to-ns-lo", "--no-splice"], "--host-lo-to-ns-lo is incompatible with --no-splice"],
    ["pasta", ["--no-copy-routes"], "--no-copy-routes needs --config-net"],
    ["pasta", ["--no-copy-addrs"], "--no-copy-addrs needs --config-net"],
    ["passt", ["--repair-path", "/tmp/r"], "--repair-path is for vhost-user mode only"],
    ["passt", ["--migrate-exit"], "--migrate-exit is for vhost-user mode only"],
    ["pasta", ["--vhost-user", "--config-net"], "--config-net is for pasta mode only"],
  ])("%s %p is refused", (name, argv, message) => {
    expect(errorOf(name, argv)).toBe(message);
  });
});

describe("parseArgs() options for one name only", () => {
  const pastaOnly = [
    ["-I", "ns0"], ["-T", "22"], ["-U", "53"], ["--tcp-ns", "22"], ["--host-lo-to-ns-lo"], ["--userns", "/u"],
    ["--netns", "n"], ["--netns-only"], ["--no-netns-quit"], ["--config-net"], ["--no-copy-routes"],
    ["--no-copy-addrs"], ["--ns-mac-addr", "02:00:00:00:00:01"], ["--dhcp-dns"], ["--dhcp-search"],
  ];
  const passtOnly = [["-s", "/tmp/s"], ["--socket", "/tmp/s"], ["-1"], ["--one-off"], ["--no-dhcp-dns"], ["--no-dhcp-search"]];

  test.each(pastaOnly)("passt refuses pasta's %s", (...argv) => {
    expect(errorOf("passt", argv)).toBe(`${argv[0]} is for pasta mode only`);
  });

  test.each(passtOnly)("pasta refuses passt's %s", (...argv) => {
    expect(errorOf("pasta", argv)).toBe(`${argv[0]} is for passt mode only`);
  });

  test("the message names the option as typed in a cluster", () => {
    expect(errorOf("pasta", ["-f1"])).toBe("-1 is for passt mode only");
  });
});

describe("parseArgs() port forwarding options", () => {
  test("-t is repeatable and cumulative", () => {
    const c = parseArgs("passt", ["-t", "22", "-t", "80:8080"]);
    expect(c.fwd.tcpIn.rules.map((r) => [r.first, r.toFirst])).toEqual([[22, 22], [80, 8080]]);
    expect(c.fwd.tcpIn.origin).toBe("option");
  });

  test("without -u, UDP forwards the -t port numbers untranslated", () => {
    const c = parseArgs("passt", ["-t", "22:2222,8000-8001"]);
    expect(c.fwd.udpIn.origin).toBe("copied");
    expect(c.fwd.udpIn.rules.map((r) => [r.first, r.last, r.toFirst])).toEqual([[22, 22, 22], [8000, 8001, 8000]]);
  });

  test("an explicit -u is not mixed with -t", () => {
    const c = parseArgs("passt", ["-t", "22", "-u", "53"]);
    expect(c.fwd.udpIn.origin).toBe("option");
    expect(c.fwd.udpIn.rules.map((r) => r.first)).toEqual([53]);
  });

  test("-t none after rules conflicts, before rules it is harmless", () => {
    expect(errorOf("passt", ["-t", "22", "-t", "none"])).toBe("-t none: 'none' conflicts with previous options");
    expect(parseArgs("passt", ["-t", "none", "-t", "22"]).fwd.tcpIn.rules).toHaveLength(1);
  });

  test("overlapping rules conflict", () => {
    expect(errorOf("passt", ["-t", "20-30", "-t", "25"])).toBe("-t 25: ports 25-25 conflict with earlier 20-30");
  });

  test("explicit -t none in pasta turns off the auto default", () => {
    const c = parseArgs("pasta", ["-t", "none", "-u", "none", "-T", "none", "-U", "none"]);
    for (const t of [c.fwd.tcpIn, c.fwd.udpIn, c.fwd.tcpOut, c.fwd.udpOut]) expect(t.rules).toEqual([]);
    expect(unsupportedOptions(c)).toEqual([]);
  });

  test.each<[Mode, string[], string]>([
    ["pasta", ["-t", "70000"], "-t 70000: port 70000 out of range (1-65535)"],
    ["pasta", ["--udp-ports", "5-3"], "--udp-ports 5-3: port range 5-3 is reversed"],
    ["passt", ["-t", "auto"], "-t auto: 'auto' port forwarding is only allowed for pasta"],
    ["pasta", ["-T", "127.0.0.1/22"], "-T 127.0.0.1/22: listening address not allowed here"],
    ["pasta", ["-t22,x"], "-t 22,x: invalid port 'x'"],
  ])("%s %p is refused", (name, argv, message) => {
    expect(errorOf(name, argv)).toBe(message);
  });
});

describe("parseArgs() pasta operands", () => {
  test.each<[string[], readonly string[] | null, number | null]>([
    [["--config-net", "--", "ip", "addr"], ["ip", "addr"], null],
    [["--config-net", "ip", "addr"], ["ip", "addr"], null],
    [["ip", "-4", "addr"], ["ip", "-4", "addr"], null],
    [["--", "-d"], ["-d"], null],
    [["-"], ["-"], null],
    [["1234"], null, 1234],
    [["1234", "x"], ["1234", "x"], null],
    [[], null, null],
  ])("%p gives command %p and PID %p", (argv, command, pid) => {
    const c = parseArgs("pasta", argv);
    expect(c.command).toEqual(command);
    expect(c.pid).toBe(pid);
  });

  test("options after the command belong to the command", () => {
    expect(parseArgs("pasta", ["ip", "-4", "addr"]).ipv4Only).toBe(false);
  });

  test("a PID selects its namespaces and does not keep pasta in the foreground", () => {
    const c = parseArgs("pasta", ["4321"]);
    expect([c.netns, c.userns, c.netnsOnly, c.foreground]).toEqual(["/proc/4321/ns/net", "/proc/4321/ns/user", false, false]);
  });

  test("a PID with --netns-only joins only the network namespace", () => {
    const c = parseArgs("pasta", ["--netns-only", "4321"]);
    expect([c.netns, c.userns, c.netnsOnly]).toEqual(["/proc/4321/ns/net", null, true]);
  });

  test.each<[Mode, string[], string]>([
    ["pasta", ["--netns", "n", "sh"], "sh: both --netns and PID or command given"],
    ["pasta", ["--netns", "n", "42"], "42: both --netns and PID or command given"],
    ["pasta", ["99999999999"], "99999999999: invalid PID"],
    ["passt", ["extra"], "extra: extra non-option argument"],
    ["passt", ["--", "extra"], "extra: extra non-option argument"],
  ])("%s %p is refused", (name, argv, message) => {
    expect(errorOf(name, argv)).toBe(message);
  });
});

describe("unsupportedOptions()", () => {
  test.each<[Mode, string[], string[]]>([
    ["passt", [], []],
    ["passt", ["-t", "22", "-u", "53"], []],
    ["passt", ["--vhost-user"], ["--vhost-user"]],
    ["passt", ["--print-capabilities"], ["--print-capabilities"]],
    ["passt", ["--vhost-user", "--migrate-exit", "--migrate-no-linger"], ["--vhost-user", "--migrate-exit", "--migrate-no-linger"]],
    ["passt", ["--repair-path", "none"], ["--repair-path"]],
    ["passt", ["-c", "/tmp/c"], ["--conf-path"]],
    ["passt", ["-f", "--stats", "1"], ["--stats"]],
    ["passt", ["--runas", "1000"], []],
    ["passt", ["--chroot-fallback", "--freebind"], ["--chroot-fallback", "--freebind"]],
    ["passt", ["--no-splice"], []],
    ["pasta", ["--splice-only"], []],
    ["pasta", ["--host-lo-to-ns-lo"], []],
    ["pasta", ["-T", "22"], []],
    ["pasta", ["-U", "auto"], []],
    ["pasta", ["-t", "auto"], []],
    ["pasta", ["-t", "8000-8010,auto", "-u", "auto"], []],
    ["pasta", ["-t", "22"], []],
  ])("%s %p reports %p", (name, argv, expected) => {
    expect(unsupportedOptions(parseArgs(name, argv))).toEqual(expected);
  });
});

describe("main()", () => {
  /** Runs main() in a child bun with `argv`, returning its exit status and output. */
  function runMain(name: Mode, argv: string[]): { status: number; stdout: string; stderr: string } {
    const script = `import { main } from ${JSON.stringify(`${import.meta.dir}/../../../src/conf.ts`)};
      const c = await main(${JSON.stringify(name)}, ${JSON.stringify(argv)});
      process.stdout.write("mtu=" + c.mtu);`;
    const r = Bun.spawnSync([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
    return { status: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  }

  test("--help prints every pasta option, --config-net included, and exits 0", () => {
    const r = runMain("pasta", ["--help"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("--config-net");
    expect(r.stdout).toContain("USAGE pasta [OPTIONS] [COMMAND]");
    expect(r.stdout).not.toContain("\x1b[");
  });

  test("--help for passt lists --socket", () => {
    const r = runMain("passt", ["-h"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("--socket");
  });

  test("--version prints the package version and exits 0", () => {
    const r = runMain("passt", ["--version"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`passt ${VERSION}\n`);
  });

  test("a bad option gives one line on stderr and status 1", () => {
    const r = runMain("pasta", ["--no-such-option"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("pasta: --no-such-option: unknown option\n");
    expect(r.stdout).toBe("");
  });

  test("an option not supported yet stops with status 1", () => {
    const r = runMain("passt", ["--vhost-user"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("passt: --vhost-user: not supported yet\n");
  });

  test("good options return the Config", () => {
    const r = runMain("passt", ["-f", "-m", "9000"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("mtu=9000");
  });
});
