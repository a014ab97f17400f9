// SPDX-License-Identifier: GPL-2.0-or-later
// conf.ts - command line options and defaults for pasta and passt (passt conf.c)
//
// Theory of operation
//
// parseArgs(name, argv) is a pure function: it reads nothing from the host and
// returns a frozen Config, or throws a ConfError whose message is one line
// naming the bad value ("-t 70000: port 70000 out of range (1-65535)"). main()
// wraps it for the entry point: it prints that line after the program name,
// prints --help and --version, and exits.
//
// The command line is read by conf/cli.ts: each executable name is a citty
// command, and citty's parseArgs() hands back the options (scanned
// getopt_long(3) style, as upstream: short clusters (-4f), attached short
// values (-t22), long values after '=' or as the next argument, unambiguous
// long prefixes (--fore), "--" or the first non-option ending the options)
// and the operands: for pasta the command to run, or a lone number that is a
// PID; passt takes none. This file validates what citty read, in argv order.
//
// We follow the newest upstream CLI: for a repeated option the last one wins;
// -t/-u/-T/-U are cumulative; --trace implies -d; --no-icmp implies --no-ndp;
// --config-net implies --no-ra; -F implies -1; --netns (or a PID) without
// --userns implies --netns-only; --no-map-gw equals --map-host-loopback none.
// Defaults: passt `-t none -u none`; pasta `-t auto -u auto -T auto -U auto`.
// Without -u, UDP forwards the port numbers of -t, untranslated (passt(1)).
//
// Whatever needs the host (its addresses, routes, resolv.conf, interface
// indices, the ephemeral port range, user names) is left null here for the
// next layer. Options accepted but not implemented yet are recorded and listed
// by unsupportedOptions().

import { writeSync } from "node:fs";
import { initLog, log, type LogLevel } from "./log.ts";
import { ConfError, readCommandLine, type Token, usage, versionLine } from "./conf/cli.ts";
import type { Mode } from "./conf/options.ts";
import { findConflict, IFNAME_MAX_LEN, parseInany, parsePortSpec, type PortRule } from "./conf/ports.ts";
import {
  fromMapped,
  isBroadcast,
  isIpv4Mapped,
  isLoopback4,
  isLoopback6,
  isMulticast,
  isUnspecified,
  parseIpv4,
  parseIpv6,
  parseMac,
} from "./wire/addr.ts";

export type { Mode } from "./conf/options.ts";
export type { PortRange, PortRule } from "./conf/ports.ts";
export type { LogLevel } from "./log.ts";

export { ConfError } from "./conf/cli.ts";

/** Forwarding rules for one protocol and direction. */
export interface FwdTable {
  /** Rules in the order given; empty means no forwarding. */
  readonly rules: readonly PortRule[];
  /** "default": no option given; "option": from options; "copied": -u taken from -t. */
  readonly origin: "default" | "option" | "copied";
  /** True if some rule forwards only ports bound on the target side. */
  readonly auto: boolean;
}

/** Port forwarding: inbound (-t/-u, host to guest) and outbound (-T/-U, namespace to init). */
export interface Forwarding {
  readonly tcpIn: FwdTable;
  readonly udpIn: FwdTable;
  readonly tcpOut: FwdTable;
  readonly udpOut: FwdTable;
}

/** The whole command line, validated. Addresses are 4 or 16 bytes; null means "derive from the host". */
export interface Config {
  /** What main() does: run, or print --help / --version and exit 0. */
  readonly action: "run" | "help" | "version";
  /** Operating mode: the executable's name, except that --vhost-user makes it passt. */
  readonly mode: Mode;
  /** Canonical long names of the options given, for "was it given" questions. */
  readonly given: ReadonlySet<string>;
  /** Warnings found while parsing (deprecated options), for the log once it is set up. */
  readonly warnings: readonly string[];

  /** Most verbose level logged: quiet "warn", default "info", -d "debug", --trace "trace". */
  readonly logLevel: LogLevel;
  /** -l: log file path, or null for none. */
  readonly logFile: string | null;
  /** --log-size in bytes (default 1 MiB, minimum 40960). */
  readonly logSize: number;
  /** --stats: seconds between statistics, or null. */
  readonly statsDelayS: number | null;
  /** -f (pasta also stays in the foreground when it spawns a command). */
  readonly foreground: boolean;
  /** --runas text as given (UID[:GID] or LOGIN[:GROUP]); null for the default. */
  readonly runas: string | null;
  /** -c: pesto(1) configuration socket path, or null. */
  readonly confPath: string | null;
  /** -p: pcap capture file, or null. */
  readonly pcap: string | null;
  /** -P: PID file, or null. */
  readonly pidFile: string | null;

  /** -m: MTU advertised via DHCP/NDP, 0 for none; default 65520. */
  readonly mtu: number;
  /** -a IPv4 address, or null. */
  readonly addr4: Uint8Array | null;
  /** IPv4 prefix length from -a /PLEN, -n, or the address class; null to take the host's. */
  readonly prefixLen4: number | null;
  /** -a IPv6 address, or null. */
  readonly addr6: Uint8Array | null;
  /** IPv6 prefix length from -a /PLEN (upstream still advertises /64), null if none given. */
  readonly prefixLen6: number | null;
  /** -M: our MAC address; default 9a:55:9a:55:9a:55. */
  readonly mac: Uint8Array;
  /** -g IPv4 gateway, or null. */
  readonly gateway4: Uint8Array | null;
  /** -g IPv6 gateway, or null. */
  readonly gateway6: Uint8Array | null;
  /** -i: template interface name, or null. */
  readonly ifname: string | null;
  /** -o IPv4 source address for outbound sockets, or null. */
  readonly outbound4: Uint8Array | null;
  /** -o IPv6 source address for outbound sockets, or null. */
  readonly outbound6: Uint8Array | null;
  /** --outbound-if4 interface, or null. */
  readonly outboundIf4: string | null;
  /** --outbound-if6 interface, or null. */
  readonly outboundIf6: string | null;
  /** -D addresses, at most 3 per IP version; null to read resolv.conf; empty for none. */
  readonly dns: readonly Uint8Array[] | null;
  /** -S domains; null to read resolv.conf; empty for none. */
  readonly search: readonly string[] | null;
  /** --dns-forward IPv4 address, or null. */
  readonly dnsForward4: Uint8Array | null;
  /** --dns-forward IPv6 address, or null. */
  readonly dnsForward6: Uint8Array | null;
  /** --dns-host IPv4 address, or null for the first resolv.conf nameserver. */
  readonly dnsHost4: Uint8Array | null;
  /** --dns-host IPv6 address, or null. */
  readonly dnsHost6: Uint8Array | null;
  /** Send DNS servers via DHCP/DHCPv6/NDP (passt default, pasta --dhcp-dns). */
  readonly dhcpDns: boolean;
  /** Send the search list via DHCP/DHCPv6/NDP (passt default, pasta --dhcp-search). */
  readonly dhcpSearch: boolean;
  /** --map-host-loopback IPv4 address; null for the default (the gateway, unless noMapGw). */
  readonly mapHostLoopback4: Uint8Array | null;
  /** --map-host-loopback IPv6 address, or null. */
  readonly mapHostLoopback6: Uint8Array | null;
  /** --no-map-gw or --map-host-loopback none. */
  readonly noMapGw: boolean;
  /** --map-guest-addr IPv4 address, or null for none. */
  readonly mapGuestAddr4: Uint8Array | null;
  /** --map-guest-addr IPv6 address, or null for none. */
  readonly mapGuestAddr6: Uint8Array | null;
  /** -4: IPv4 only (a later -6 clears it). */
  readonly ipv4Only: boolean;
  /** -6: IPv6 only (a later -4 clears it). */
  readonly ipv6Only: boolean;
  /** -H: DHCP hostname, or null. */
  readonly hostname: string | null;
  /** --fqdn, or null. */
  readonly fqdn: string | null;

  /** --no-tcp: no TCP handler. */
  readonly noTcp: boolean;
  /** --no-udp: no UDP handler. */
  readonly noUdp: boolean;
  /** --no-icmp (or --splice-only): no ICMP/ICMPv6 handler. */
  readonly noIcmp: boolean;
  /** --no-dhcp; the next layer also sets it when there is no IPv4 gateway. */
  readonly noDhcp: boolean;
  /** --no-ndp, or implied by --no-icmp. */
  readonly noNdp: boolean;
  /** --no-dhcpv6 */
  readonly noDhcpv6: boolean;
  /** --no-ra, or implied by --config-net. */
  readonly noRa: boolean;
  /** --no-splice; always true for passt, which has no splice path. */
  readonly noSplice: boolean;
  /** pasta --splice-only: no tap device, loopback forwarding only. */
  readonly spliceOnly: boolean;
  /** pasta --host-lo-to-ns-lo (implied by --splice-only). */
  readonly hostLoToNsLo: boolean;
  /** --freebind: IP_FREEBIND on -t/-u listening sockets. */
  readonly freebind: boolean;
  /** --chroot-fallback: chroot() if pivot_root() fails. */
  readonly chrootFallback: boolean;

  /** Port forwarding rules. */
  readonly fwd: Forwarding;

  /** passt -s: socket path, or null to probe /tmp/passt_{1..64}.socket. */
  readonly socketPath: string | null;
  /** -F: pre-opened connected socket, or null. */
  readonly fd: number | null;
  /** -1, or implied by -F. */
  readonly oneOff: boolean;
  /** --vhost-user */
  readonly vhostUser: boolean;
  /** --print-capabilities */
  readonly printCapabilities: boolean;
  /** --repair-path, or null for the default (socket path + ".repair"). */
  readonly repairPath: string | null;
  /** --repair-path none */
  readonly noRepair: boolean;
  /** --migrate-exit (vhost-user, deprecated) */
  readonly migrateExit: boolean;
  /** --migrate-no-linger (vhost-user, deprecated) */
  readonly migrateNoLinger: boolean;

  /** pasta -I: namespace interface name, or null. */
  readonly nsIfname: string | null;
  /** pasta --ns-mac-addr, or null for a random one. */
  readonly nsMac: Uint8Array | null;
  /** pasta --userns path, or /proc/PID/ns/user for a PID; null otherwise. */
  readonly userns: string | null;
  /** pasta --netns path (a NAME becomes /run/netns/NAME), or /proc/PID/ns/net; null otherwise. */
  readonly netns: string | null;
  /** Join or create only a network namespace, no user namespace. */
  readonly netnsOnly: boolean;
  /** pasta --no-netns-quit: keep running when the namespace goes away. */
  readonly noNetnsQuit: boolean;
  /** pasta --config-net: set addresses, routes and MTU in the namespace ourselves. */
  readonly configNet: boolean;
  /** IPv4 routes are not copied: --no-copy-routes, or -g with an IPv4 gateway (pasta). */
  readonly noCopyRoutes4: boolean;
  /** IPv6 routes are not copied: --no-copy-routes, or -g with an IPv6 gateway (pasta). */
  readonly noCopyRoutes6: boolean;
  /** IPv4 addresses are not copied: --no-copy-addrs, or -a with an IPv4 address. */
  readonly noCopyAddrs4: boolean;
  /** IPv6 addresses are not copied: --no-copy-addrs, or -a with an IPv6 address. */
  readonly noCopyAddrs6: boolean;
  /** pasta: command and arguments to run, or null (then $SHELL, for a new namespace). */
  readonly command: readonly string[] | null;
  /** pasta: target PID, or null. */
  readonly pid: number | null;
}

/** Default and largest MTU: 65535 less the Ethernet header, rounded down to 4 bytes. */
export const MTU_DEFAULT = 65520;
/** Largest MTU accepted by -m: 65535 less the 14-byte Ethernet header. */
export const MTU_MAX = 65521;
/** Default --log-size: 1 MiB. */
export const LOG_SIZE_DEFAULT = 1024 * 1024;
/** Smallest --log-size: five times max(BUFSIZ, page size), as upstream. */
export const LOG_SIZE_MIN = 5 * 8192;
/** Our default MAC, locally administered. */
export const MAC_DEFAULT = "9a:55:9a:55:9a:55";
/** Where `--netns NAME` looks, as ip-netns(8). */
export const NETNS_RUN_DIR = "/run/netns";

const PATH_MAX = 4096;
const UNIX_PATH_MAX = 108;
const DNS_MAX_PER_FAMILY = 3;
const SEARCH_MAX = 6;
const DNAME_MAX = 253;
const INT_MAX = 0x7fffffff;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Returns the value of `text` read as strtoul(3) with base 0 would (decimal,
 * 0x hex, leading-0 octal), requiring the whole text to be the number; null
 * otherwise.
 */
export function parseUnsigned(text: string): number | null {
  let m: RegExpExecArray | null;
  if ((m = /^0[xX]([0-9a-fA-F]+)$/.exec(text))) return parseInt(m[1]!, 16);
  if (/^0[0-7]*$/.test(text)) return parseInt(text, 8);
  if (/^[1-9][0-9]*$/.test(text)) return Number(text);
  return null;
}

/** Returns the class-based prefix length of an IPv4 address (A 8, B 16, C 24, else 32). */
export function ipv4ClassPrefixLen(addr: Uint8Array): number {
  const top = addr[0]!;
  if (top < 128) return 8;
  if (top < 192) return 16;
  if (top < 224) return 24;
  return 32;
}

/** Returns the prefix length of a contiguous dotted-quad netmask, or null if it is not one. */
function maskPrefixLen(mask: Uint8Array): number | null {
  const value = ((mask[0]! << 24) | (mask[1]! << 16) | (mask[2]! << 8) | mask[3]!) >>> 0;
  const inverted = ~value >>> 0;
  // A contiguous mask is ones then zeros, so its inverse plus one is a power of two.
  if ((inverted & (inverted + 1)) !== 0) return null;
  return 32 - Math.log2(inverted + 1);
}

/** Returns a 4-byte address for IPv4 or IPv4-mapped text, 16 bytes for IPv6, or null. */
function parseAnyIp(text: string): Uint8Array | null {
  const addr = parseInany(text);
  if (addr && isIpv4Mapped(addr)) return fromMapped(addr)!.slice();
  return addr;
}

function emptyTable(origin: FwdTable["origin"]): FwdTable {
  return { rules: [], origin, auto: false };
}

function defaults(name: Mode): Mutable<Config> {
  const pasta = name === "pasta";
  return {
    action: "run", mode: name, given: new Set(), warnings: [],
    logLevel: "info", logFile: null, logSize: LOG_SIZE_DEFAULT, statsDelayS: null, foreground: false,
    runas: null, confPath: null, pcap: null, pidFile: null,
    mtu: MTU_DEFAULT, addr4: null, prefixLen4: null, addr6: null, prefixLen6: null,
    mac: parseMac(MAC_DEFAULT)!, gateway4: null, gateway6: null, ifname: null,
    outbound4: null, outbound6: null, outboundIf4: null, outboundIf6: null,
    dns: null, search: null, dnsForward4: null, dnsForward6: null, dnsHost4: null, dnsHost6: null,
    dhcpDns: !pasta, dhcpSearch: !pasta,
    mapHostLoopback4: null, mapHostLoopback6: null, noMapGw: false, mapGuestAddr4: null, mapGuestAddr6: null,
    ipv4Only: false, ipv6Only: false, hostname: null, fqdn: null,
    noTcp: false, noUdp: false, noIcmp: false, noDhcp: false, noNdp: false, noDhcpv6: false, noRa: false,
    noSplice: false, spliceOnly: false, hostLoToNsLo: false, freebind: false, chrootFallback: false,
    fwd: { tcpIn: emptyTable("default"), udpIn: emptyTable("default"), tcpOut: emptyTable("default"), udpOut: emptyTable("default") },
    socketPath: null, fd: null, oneOff: false, vhostUser: false, printCapabilities: false,
    repairPath: null, noRepair: false, migrateExit: false, migrateNoLinger: false,
    nsIfname: null, nsMac: null, userns: null, netns: null, netnsOnly: false, noNetnsQuit: false,
    configNet: false, noCopyRoutes4: false, noCopyRoutes6: false, noCopyAddrs4: false, noCopyAddrs6: false,
    command: null, pid: null,
  };
}

/** Parsing state that is not part of Config. */
interface State {
  debug: boolean;
  trace: boolean;
  quiet: boolean;
  /** Prefix length given with -n, or null. */
  netmaskLen: number | null;
  /** The last -a carried a /PLEN. */
  addrHadPrefix: boolean;
  copyRoutesOpt: boolean;
  copyAddrsOpt: boolean;
  dns4: Uint8Array[];
  dns6: Uint8Array[];
  dnsGiven: boolean;
  search: string[] | null;
  rules: Record<keyof Forwarding, PortRule[]>;
  fwdGiven: Record<keyof Forwarding, boolean>;
}

const FWD_KEY: Readonly<Record<string, keyof Forwarding>> = {
  "tcp-ports": "tcpIn",
  "udp-ports": "udpIn",
  "tcp-ns": "tcpOut",
  "udp-ns": "udpOut",
};

function bad(tok: Token, reason: string): ConfError {
  return new ConfError(`${tok.typed} ${tok.value}: ${reason}`);
}

function checkPath(tok: Token, max: number, what: string): string {
  if (tok.value === "") throw bad(tok, `empty ${what}`);
  if (tok.value.length >= max) throw bad(tok, `${what} too long (max ${max - 1} bytes)`);
  return tok.value;
}

function checkIfname(tok: Token): string {
  const v = tok.value;
  if (v === "" || v === "." || v === ".." || /[\s/]/.test(v)) throw bad(tok, "invalid interface name");
  if (v.length > IFNAME_MAX_LEN) throw bad(tok, `interface name too long (max ${IFNAME_MAX_LEN})`);
  return v;
}

function checkName(tok: Token, what: string): string {
  if (tok.value === "" || tok.value.length > DNAME_MAX) throw bad(tok, `invalid ${what} (1-${DNAME_MAX} characters)`);
  return tok.value;
}

function macOf(tok: Token): Uint8Array {
  const mac = parseMac(tok.value);
  if (!mac) throw bad(tok, "invalid MAC address");
  return mac;
}

function netnsPath(tok: Token): string {
  const path = tok.value.includes("/") ? tok.value : `${NETNS_RUN_DIR}/${tok.value}`;
  if (tok.value === "" || path.length >= PATH_MAX) throw bad(tok, "invalid namespace name or path");
  return path;
}

/** --map-host-loopback / --map-guest-addr: sets the address of its family, or both null for "none". */
function natAddr(tok: Token): { none: true } | { none: false; addr: Uint8Array } {
  if (tok.value === "none") return { none: true };
  const addr = parseAnyIp(tok.value);
  if (!addr || isUnspecified(addr) || isLoopback4(addr) || isLoopback6(addr) || isMulticast(addr)) {
    throw bad(tok, "invalid address to remap");
  }
  return { none: false, addr };
}

function applyAddress(c: Mutable<Config>, s: State, tok: Token): void {
  const slash = tok.value.indexOf("/");
  const text = slash < 0 ? tok.value : tok.value.slice(0, slash);
  const raw = parseInany(text);
  if (!raw || isUnspecified(raw) || isMulticast(raw) || isLoopback4(raw) || isLoopback6(raw)) {
    throw bad(tok, "invalid address");
  }
  const mapped = isIpv4Mapped(raw);
  const addr = mapped ? fromMapped(raw)!.slice() : raw;
  if (addr.byteLength === 4 && isLoopback4(addr)) throw bad(tok, "invalid address");
  let plen: number | null = null;
  if (slash >= 0) {
    const plenText = tok.value.slice(slash + 1);
    const max = raw.byteLength === 4 ? 32 : 128;
    const n = /^\d+$/.test(plenText) ? Number(plenText) : null;
    if (n === null || n > max) throw bad(tok, `invalid prefix length (0-${max})`);
    if (s.netmaskLen !== null) throw bad(tok, "redundant prefix length: -n also given");
    plen = mapped ? n - 96 : n;
    if (plen < 0) throw bad(tok, "invalid prefix length for an IPv4-mapped address (96-128)");
  }
  s.addrHadPrefix = slash >= 0;
  if (addr.byteLength === 4) {
    c.addr4 = addr;
    c.prefixLen4 = plen ?? s.netmaskLen ?? ipv4ClassPrefixLen(addr);
    c.noCopyAddrs4 = true;
  } else {
    c.addr6 = addr;
    c.prefixLen6 = plen ?? 64;
    c.noCopyAddrs6 = true;
  }
}

function applyPorts(c: Mutable<Config>, s: State, tok: Token): void {
  const key = FWD_KEY[tok.def.name]!;
  const outbound = key === "tcpOut" || key === "udpOut";
  s.fwdGiven[key] = true;
  const result = parsePortSpec(tok.value, { allowAuto: c.mode === "pasta", allowBind: !outbound });
  if (!result.ok) throw bad(tok, result.reason);
  const table = s.rules[key];
  if (result.none) {
    if (table.length > 0) throw bad(tok, "'none' conflicts with previous options");
    return;
  }
  for (const rule of result.rules) {
    const clash = findConflict(rule, table);
    if (clash) {
      throw bad(tok, `ports ${rule.first}-${rule.last} conflict with earlier ${clash.first}-${clash.last}`);
    }
    table.push(rule);
  }
}

function applyOption(c: Mutable<Config>, s: State, tok: Token): void {
  const v = tok.value;
  switch (tok.def.name) {
    case "debug":
      s.debug = true;
      s.quiet = false;
      return;
    case "trace":
      s.trace = s.debug = true;
      s.quiet = false;
      return;
    case "quiet":
      s.quiet = true;
      s.debug = s.trace = false;
      return;
    case "stats": {
      const n = parseUnsigned(v);
      if (n === null) throw bad(tok, "invalid delay in seconds");
      c.statsDelayS = n;
      return;
    }
    case "foreground":
      c.foreground = true;
      return;
    case "stderr":
      c.warnings = [...c.warnings, "--stderr will be dropped soon"];
      return;
    case "log-file":
      c.logFile = checkPath(tok, PATH_MAX, "log file path");
      return;
    case "log-size": {
      const n = parseUnsigned(v);
      if (n === null || n < LOG_SIZE_MIN) throw bad(tok, `invalid log size (minimum ${LOG_SIZE_MIN} bytes)`);
      c.logSize = n;
      return;
    }
    case "runas":
      if (v === "" || v.startsWith(":") || v.endsWith(":")) throw bad(tok, "invalid user or group");
      c.runas = v;
      return;
    case "conf-path":
      c.confPath = checkPath(tok, UNIX_PATH_MAX, "configuration socket path");
      return;
    case "pcap":
      c.pcap = checkPath(tok, PATH_MAX, "pcap path");
      return;
    case "pid":
      c.pidFile = checkPath(tok, PATH_MAX, "PID file path");
      return;
    case "mtu": {
      const n = parseUnsigned(v);
      if (n === null) throw bad(tok, "invalid MTU");
      if (n > MTU_MAX) throw bad(tok, `MTU ${n} too large (max ${MTU_MAX})`);
      c.mtu = n;
      return;
    }
    case "address":
      applyAddress(c, s, tok);
      return;
    case "netmask": {
      if (s.addrHadPrefix) throw bad(tok, "redundant prefix length: -a also gave one");
      const mask = parseIpv4(v);
      let n: number | null = null;
      if (mask) n = maskPrefixLen(mask);
      else {
        const bits = parseUnsigned(v);
        if (bits !== null && bits <= 32) n = bits;
      }
      if (n === null) throw bad(tok, "invalid netmask or prefix length (0-32)");
      s.netmaskLen = n;
      c.prefixLen4 = n;
      return;
    }
    case "mac-addr":
      c.mac = macOf(tok);
      return;
    case "gateway": {
      const a6 = parseIpv6(v);
      if (a6 && !isUnspecified(a6) && !isLoopback6(a6)) {
        c.gateway6 = a6;
        if (c.mode === "pasta") c.noCopyRoutes6 = true;
        return;
      }
      const a4 = parseIpv4(v);
      if (a4 && !isUnspecified(a4) && !isBroadcast(a4) && !isLoopback4(a4)) {
        c.gateway4 = a4;
        if (c.mode === "pasta") c.noCopyRoutes4 = true;
        return;
      }
      throw bad(tok, "invalid gateway address");
    }
    case "interface":
      c.ifname = checkIfname(tok);
      return;
    case "outbound": {
      const a6 = parseIpv6(v);
      if (a6 && !isUnspecified(a6) && !isLoopback6(a6) && !isIpv4Mapped(a6) && !isMulticast(a6) && !isV4Compat(a6)) {
        c.outbound6 = a6;
        return;
      }
      const a4 = parseIpv4(v);
      if (a4 && !isUnspecified(a4) && !isBroadcast(a4) && !isMulticast(a4)) {
        c.outbound4 = a4;
        return;
      }
      throw bad(tok, "invalid outbound address");
    }
    case "outbound-if4":
      c.outboundIf4 = checkIfname(tok);
      return;
    case "outbound-if6":
      c.outboundIf6 = checkIfname(tok);
      return;
    case "dns": {
      if (v === "none") {
        s.dnsGiven = true;
        s.dns4 = [];
        s.dns6 = [];
        c.dnsForward4 = c.dnsForward6 = c.dnsHost4 = c.dnsHost6 = null;
        return;
      }
      const a4 = parseIpv4(v);
      const a6 = a4 ? null : parseIpv6(v);
      if (!a4 && !a6) throw bad(tok, "invalid DNS address");
      s.dnsGiven = true;
      // Like upstream, addresses past the third of a version are dropped silently.
      if (a4 && s.dns4.length < DNS_MAX_PER_FAMILY) s.dns4.push(a4);
      if (a6 && s.dns6.length < DNS_MAX_PER_FAMILY) s.dns6.push(a6);
      return;
    }
    case "dns-forward": {
      const a6 = parseIpv6(v);
      if (a6 && !isUnspecified(a6) && !isLoopback6(a6)) {
        c.dnsForward6 = a6;
        return;
      }
      const a4 = parseIpv4(v);
      if (a4 && !isUnspecified(a4) && !isBroadcast(a4) && !isLoopback4(a4)) {
        c.dnsForward4 = a4;
        return;
      }
      throw bad(tok, "invalid DNS forwarding address");
    }
    case "dns-host": {
      const a6 = parseIpv6(v);
      if (a6 && !isUnspecified(a6)) {
        c.dnsHost6 = a6;
        return;
      }
      const a4 = parseIpv4(v);
      if (a4 && !isUnspecified(a4) && !isBroadcast(a4)) {
        c.dnsHost4 = a4;
        return;
      }
      throw bad(tok, "invalid host nameserver address");
    }
    case "search": {
      if (v === "none") {
        s.search = [];
        return;
      }
      const domains = v.split(/\s+/).filter((d) => d !== "");
      if (domains.length === 0) throw bad(tok, "empty search list");
      const list = s.search ?? [];
      for (const d of domains) {
        if (d.length > DNAME_MAX) throw bad(tok, `search domain '${d}' too long (max ${DNAME_MAX})`);
        if (list.length >= SEARCH_MAX) throw bad(tok, `too many search domains (max ${SEARCH_MAX})`);
        list.push(d);
      }
      s.search = list;
      return;
    }
    case "no-dhcp-dns":
      c.dhcpDns = false;
      return;
    case "dhcp-dns":
      c.dhcpDns = true;
      return;
    case "no-dhcp-search":
      c.dhcpSearch = false;
      return;
    case "dhcp-search":
      c.dhcpSearch = true;
      return;
    case "no-tcp":
      c.noTcp = true;
      return;
    case "no-udp":
      c.noUdp = true;
      return;
    case "no-icmp":
      c.noIcmp = true;
      return;
    case "no-dhcp":
      c.noDhcp = true;
      return;
    case "no-ndp":
      c.noNdp = true;
      return;
    case "no-dhcpv6":
      c.noDhcpv6 = true;
      return;
    case "no-ra":
      c.noRa = true;
      return;
    case "freebind":
      c.freebind = true;
      return;
    case "map-host-loopback": {
      const r = natAddr(tok);
      if (r.none) {
        c.mapHostLoopback4 = c.mapHostLoopback6 = null;
        c.noMapGw = true;
      } else if (r.addr.byteLength === 4) c.mapHostLoopback4 = r.addr;
      else c.mapHostLoopback6 = r.addr;
      return;
    }
    case "no-map-gw":
      c.noMapGw = true;
      return;
    case "map-guest-addr": {
      const r = natAddr(tok);
      if (r.none) c.mapGuestAddr4 = c.mapGuestAddr6 = null;
      else if (r.addr.byteLength === 4) c.mapGuestAddr4 = r.addr;
      else c.mapGuestAddr6 = r.addr;
      return;
    }
    case "chroot-fallback":
      c.chrootFallback = true;
      return;
    case "ipv4-only":
      c.ipv4Only = true;
      c.ipv6Only = false;
      return;
    case "ipv6-only":
      c.ipv6Only = true;
      c.ipv4Only = false;
      return;
    case "hostname":
      c.hostname = checkName(tok, "hostname");
      return;
    case "fqdn":
      c.fqdn = checkName(tok, "FQDN");
      return;
    case "tcp-ports":
    case "udp-ports":
    case "tcp-ns":
    case "udp-ns":
      applyPorts(c, s, tok);
      return;
    case "socket":
      c.socketPath = checkPath(tok, UNIX_PATH_MAX, "socket path");
      c.fd = null;
      return;
    case "vhost-user":
      c.vhostUser = true;
      return;
    case "print-capabilities":
      c.printCapabilities = true;
      return;
    case "repair-path":
      if (v === "none") {
        c.repairPath = null;
        c.noRepair = true;
        return;
      }
      if (!c.vhostUser) throw new ConfError(`${tok.typed} is for vhost-user mode only`);
      c.repairPath = checkPath(tok, UNIX_PATH_MAX, "passt-repair socket path");
      c.noRepair = false;
      return;
    case "migrate-exit":
    case "migrate-no-linger":
      if (!c.vhostUser) throw new ConfError(`${tok.typed} is for vhost-user mode only`);
      if (tok.def.name === "migrate-exit") c.migrateExit = true;
      else c.migrateNoLinger = true;
      return;
    case "fd": {
      const n = parseUnsigned(v);
      if (n === null || n > INT_MAX) throw bad(tok, "invalid file descriptor");
      c.fd = n;
      c.oneOff = true;
      c.socketPath = null;
      return;
    }
    case "one-off":
      c.oneOff = true;
      return;
    case "ns-ifname":
      c.nsIfname = checkIfname(tok);
      return;
    case "host-lo-to-ns-lo":
      c.hostLoToNsLo = true;
      return;
    case "userns":
      c.userns = checkPath(tok, PATH_MAX, "user namespace path");
      c.netnsOnly = false;
      return;
    case "netns":
      c.netns = netnsPath(tok);
      return;
    case "netns-only":
      c.netnsOnly = true;
      c.userns = null;
      return;
    case "no-netns-quit":
      c.noNetnsQuit = true;
      return;
    case "config-net":
      c.configNet = true;
      return;
    case "no-copy-routes":
      c.warnings = [...c.warnings, "--no-copy-routes will be dropped soon"];
      c.noCopyRoutes4 = c.noCopyRoutes6 = true;
      s.copyRoutesOpt = true;
      return;
    case "no-copy-addrs":
      c.warnings = [...c.warnings, "--no-copy-addrs will be dropped soon"];
      c.noCopyAddrs4 = c.noCopyAddrs6 = true;
      s.copyAddrsOpt = true;
      return;
    case "ns-mac-addr":
      c.nsMac = macOf(tok);
      return;
    case "no-splice":
      c.noSplice = true;
      return;
    case "splice-only":
      c.spliceOnly = true;
      return;
    default:
      // "help" and "version" are handled by the caller; anything else is a table/switch mismatch.
      throw new Error(`conf: option --${tok.def.name} has no handler`);
  }
}

/** Returns true for an IPv4-compatible IPv6 address (::a.b.c.d, deprecated), not :: or ::1. */
function isV4Compat(a: Uint8Array): boolean {
  for (let i = 0; i < 12; i++) if (a[i] !== 0) return false;
  return !isUnspecified(a) && !isLoopback6(a);
}

/** pasta operands: a lone number is a PID, anything else the command to run. */
function applyOperands(c: Mutable<Config>, operands: readonly string[]): void {
  if (operands.length === 0) return;
  if (c.mode === "passt") throw new ConfError(`${operands[0]}: extra non-option argument`);
  if (c.netns !== null) throw new ConfError(`${operands[0]}: both --netns and PID or command given`);
  const only = operands.length === 1 ? operands[0]! : null;
  if (only !== null && /^\d+$/.test(only)) {
    const pid = Number(only);
    if (pid > INT_MAX) throw new ConfError(`${only}: invalid PID`);
    c.pid = pid;
    c.netns = `/proc/${pid}/ns/net`;
    if (c.userns === null && !c.netnsOnly) c.userns = `/proc/${pid}/ns/user`;
    return;
  }
  c.command = [...operands];
}

function finishTable(rules: readonly PortRule[], origin: FwdTable["origin"]): FwdTable {
  return Object.freeze({ rules: Object.freeze([...rules]), origin, auto: rules.some((r) => r.auto) });
}

/** The pasta default for a table no option touched: forward whatever is bound (`auto`). */
function autoTable(mode: Mode, spec: { allowBind: boolean }): FwdTable {
  if (mode !== "pasta") return finishTable([], "default");
  const r = parsePortSpec("auto", { allowAuto: true, allowBind: spec.allowBind });
  return finishTable(r.ok ? r.rules : [], "default");
}

function buildForwarding(mode: Mode, s: State): Forwarding {
  const table = (key: keyof Forwarding, outbound: boolean): FwdTable =>
    s.fwdGiven[key] ? finishTable(s.rules[key], "option") : autoTable(mode, { allowBind: !outbound });
  const tcpIn = table("tcpIn", false);
  let udpIn: FwdTable;
  if (s.fwdGiven.udpIn || !s.fwdGiven.tcpIn) {
    udpIn = table("udpIn", false);
  } else {
    // passt(1): "unless overridden, UDP ports with numbers corresponding to
    // forwarded TCP port numbers are forwarded too, without, however, any
    // port translation".
    udpIn = finishTable(tcpIn.rules.map((r) => ({ ...r, toFirst: r.first })), "copied");
  }
  return Object.freeze({ tcpIn, udpIn, tcpOut: table("tcpOut", true), udpOut: table("udpOut", true) });
}

function logLevelOf(s: State): LogLevel {
  if (s.trace) return "trace";
  if (s.debug) return "debug";
  if (s.quiet) return "warn";
  return "info";
}

/**
 * Returns the validated configuration for executable `name` ("pasta" or
 * "passt") given `argv` without the program name. Throws ConfError with a
 * one-line message naming the bad value on any invalid input. With --help or
 * --version (before any error in argv order), returns at once with `action`
 * set and the rest of the Config not meaningful.
 * @example parseArgs("pasta", ["--config-net", "-t", "8080", "ip", "addr"]).command // ["ip", "addr"]
 */
export function parseArgs(name: Mode, argv: readonly string[]): Config {
  const line = readCommandLine(name, argv);
  const c = defaults(name);
  c.mode = line.mode;

  const s: State = {
    debug: false, trace: false, quiet: false, netmaskLen: null, addrHadPrefix: false,
    copyRoutesOpt: false, copyAddrsOpt: false, dns4: [], dns6: [], dnsGiven: false, search: null,
    rules: { tcpIn: [], udpIn: [], tcpOut: [], udpOut: [] },
    fwdGiven: { tcpIn: false, udpIn: false, tcpOut: false, udpOut: false },
  };
  const given = new Set<string>();
  for (const tok of line.options) {
    if (tok.def.name === "help" || tok.def.name === "version") {
      c.action = tok.def.name;
      return Object.freeze(c);
    }
    given.add(tok.def.name);
    applyOption(c, s, tok);
  }
  if (line.error) throw line.error;
  applyOperands(c, line.operands);

  if (c.mode === "passt") {
    c.noSplice = true;
  } else {
    if (c.noSplice && c.hostLoToNsLo) throw new ConfError("--host-lo-to-ns-lo is incompatible with --no-splice");
    if (!c.configNet && s.copyRoutesOpt) throw new ConfError("--no-copy-routes needs --config-net");
    if (!c.configNet && s.copyAddrsOpt) throw new ConfError("--no-copy-addrs needs --config-net");
    if (c.spliceOnly) {
      if (c.noSplice) throw new ConfError("--splice-only is incompatible with --no-splice");
      c.hostLoToNsLo = true;
      c.noIcmp = true;
      s.dnsGiven = true;
      s.dns4 = [];
      s.dns6 = [];
      s.search = [];
    }
    if (c.netns !== null && c.userns === null) c.netnsOnly = true;
    // pasta stays in the foreground when it runs the command itself.
    if (c.netns === null) c.foreground = true;
  }
  if (c.statsDelayS !== null && !c.foreground) {
    throw new ConfError("--stats: can't display statistics if not running in foreground");
  }
  if (c.noIcmp) c.noNdp = true;
  if (c.configNet) c.noRa = true;

  c.logLevel = logLevelOf(s);
  c.dns = s.dnsGiven ? Object.freeze([...s.dns4, ...s.dns6]) : null;
  c.search = s.search ? Object.freeze([...s.search]) : null;
  c.fwd = buildForwarding(c.mode, s);
  c.given = given;
  c.warnings = Object.freeze([...c.warnings]);
  if (c.command) c.command = Object.freeze([...c.command]);
  return Object.freeze(c);
}

/**
 * Options that were given but are not implemented yet, one name each (e.g.
 * ["--vhost-user"]); empty if everything asked for is supported. ONE list:
 * remove an entry when its feature lands.
 */
const NOT_YET: readonly { readonly label: string; readonly test: (c: Config) => boolean }[] = [
  { label: "--vhost-user", test: (c) => c.given.has("vhost-user") },
  { label: "--print-capabilities", test: (c) => c.given.has("print-capabilities") },
  { label: "--repair-path", test: (c) => c.given.has("repair-path") },
  { label: "--migrate-exit", test: (c) => c.given.has("migrate-exit") },
  { label: "--migrate-no-linger", test: (c) => c.given.has("migrate-no-linger") },
  { label: "--conf-path", test: (c) => c.given.has("conf-path") },
  { label: "--stats", test: (c) => c.given.has("stats") },
  { label: "--chroot-fallback", test: (c) => c.given.has("chroot-fallback") },
  { label: "--freebind", test: (c) => c.given.has("freebind") },
];

/**
 * Returns the options in `config` that are parsed but not implemented yet,
 * e.g. ["--vhost-user", "-t auto"]; an empty array if there are none.
 */
export function unsupportedOptions(config: Config): string[] {
  return NOT_YET.filter((n) => n.test(config)).map((n) => n.label);
}

/**
 * Resolves to the Config for the entry point, or does not return: prints
 * usage (citty's rendering, coloured only on a terminal) or the version to
 * stdout and exits 0; prints "NAME: message" to stderr and
 * exits 1 on a bad command line or an option not supported yet. Sets up
 * logging (initLog) and logs parse warnings before returning.
 */
export async function main(name: Mode, argv: readonly string[]): Promise<Config> {
  let config: Config;
  try {
    config = parseArgs(name, argv);
  } catch (e) {
    if (!(e instanceof ConfError)) throw e;
    writeSync(2, `${name}: ${e.message}\n`);
    process.exit(1);
  }
  if (config.action === "help") {
    // node:tty is loaded only here: importing it costs start-up time on every run.
    const { isatty } = await import("node:tty");
    writeSync(1, await usage(name, isatty(1)));
    process.exit(0);
  }
  if (config.action === "version") {
    writeSync(1, `${versionLine(name)}\n`);
    process.exit(0);
  }
  const missing = unsupportedOptions(config);
  if (missing.length > 0) {
    writeSync(2, `${name}: ${missing[0]}: not supported yet\n`);
    process.exit(1);
  }
  initLog(config);
  for (const w of config.warnings) log.warn(w);
  return config;
}
