// SPDX-License-Identifier: GPL-2.0-or-later
// options.ts - the command line option table, from which cli.ts builds the citty commands
//
// One row per option, in the order and groups of the passt(1) man page.
// cli.ts makes each executable name a citty command of the rows that name
// accepts (short letter as alias, placeholder as value hint, help as
// description) and scans argv with findShort() and findLong(). Adding an
// option means adding a row here and a case in conf.ts, nothing else.

/** The executable's name, which selects the mode. */
export type Mode = "pasta" | "passt";

/** Which executable names accept an option (upstream dies otherwise). */
export type Accepted = "both" | Mode;

/** One command line option. */
export interface OptionDef {
  /** Canonical long name, without dashes; also the key the parser switches on. */
  readonly name: string;
  /** Other long names for the same option. */
  readonly aliases: readonly string[];
  /** Short letter, or null. */
  readonly short: string | null;
  /** Placeholder for the required argument, or null if it takes none. */
  readonly arg: string | null;
  /** Names that accept the option. */
  readonly accepted: Accepted;
  /** Man page group: general options, or the passt-only / pasta-only lists. */
  readonly section: "common" | Mode;
  /** One-line description, citty's description of the option in --help. */
  readonly help: string;
}

function opt(
  name: string,
  short: string | null,
  arg: string | null,
  accepted: Accepted,
  section: "common" | Mode,
  help: string,
  aliases: readonly string[] = [],
): OptionDef {
  return { name, aliases, short, arg, accepted, section, help };
}

/** Every option of both names, in man page order. */
export const OPTIONS: readonly OptionDef[] = [
  opt("debug", "d", null, "both", "common", "Be verbose, don't log to the system logger"),
  opt("trace", null, null, "both", "common", "Be extra verbose, show single packets; implies --debug"),
  opt("stats", null, "DELAY", "both", "common", "Display event statistics, at least DELAY seconds apart"),
  opt("quiet", "q", null, "both", "common", "Don't print informational messages"),
  opt("foreground", "f", null, "both", "common", "Don't run in background"),
  opt("stderr", "e", null, "both", "common", "DEPRECATED, no effect"),
  opt("log-file", "l", "PATH", "both", "common", "Log (only) to file PATH"),
  opt("log-size", null, "BYTES", "both", "common", "Maximum log file size, default 1 MiB"),
  opt("runas", null, "UID[:GID]", "both", "common", "Run as given user and group (numbers or names), default nobody if root"),
  opt("conf-path", "c", "PATH", "both", "common", "Configuration socket path for pesto(1), EXPERIMENTAL"),
  opt("help", "h", null, "both", "common", "Display this help message and exit"),
  opt("version", null, null, "both", "common", "Show version and exit"),
  opt("pcap", "p", "FILE", "both", "common", "Capture tap-facing traffic to FILE in pcap format"),
  opt("pid", "P", "FILE", "both", "common", "Write own PID to FILE"),
  opt("mtu", "m", "MTU", "both", "common", "Assign MTU via DHCP/NDP, 0 disables, default 65520"),
  opt("address", "a", "ADDR[/PLEN]", "both", "common", "Assign IPv4 or IPv6 address ADDR, up to once per version"),
  opt("netmask", "n", "MASK", "both", "common", "Assign IPv4 MASK, dot-decimal or bits"),
  opt("mac-addr", "M", "ADDR", "both", "common", "Use source MAC address ADDR, default 9a:55:9a:55:9a:55"),
  opt("gateway", "g", "ADDR", "both", "common", "Advertise IPv4 or IPv6 ADDR as gateway"),
  opt("interface", "i", "NAME", "both", "common", "Host interface for addresses and routes"),
  opt("outbound", "o", "ADDR", "both", "common", "Bind outbound sockets to IPv4 or IPv6 ADDR"),
  opt("outbound-if4", null, "NAME", "both", "common", "Bind IPv4 outbound sockets to interface NAME"),
  opt("outbound-if6", null, "NAME", "both", "common", "Bind IPv6 outbound sockets to interface NAME"),
  opt("dns", "D", "ADDR", "both", "common", "Advertise DNS server ADDR, repeatable; 'none' for no DNS"),
  opt("dns-forward", null, "ADDR", "both", "common", "Forward DNS queries sent to ADDR to --dns-host"),
  opt("dns-host", null, "ADDR", "both", "common", "Host nameserver for --dns-forward queries"),
  opt("search", "S", "LIST", "both", "common", "Space-separated DNS search list; 'none' for no list"),
  opt("no-dhcp-dns", null, null, "passt", "common", "No DNS list in DHCP/DHCPv6/NDP"),
  opt("dhcp-dns", null, null, "pasta", "common", "Pass DNS list via DHCP/DHCPv6/NDP"),
  opt("no-dhcp-search", null, null, "passt", "common", "No search list in DHCP/DHCPv6/NDP"),
  opt("dhcp-search", null, null, "pasta", "common", "Pass search list via DHCP/DHCPv6/NDP"),
  opt("no-tcp", null, null, "both", "common", "Disable the TCP protocol handler"),
  opt("no-udp", null, null, "both", "common", "Disable the UDP protocol handler"),
  opt("no-icmp", null, null, "both", "common", "Disable the ICMP/ICMPv6 handler; implies --no-ndp"),
  opt("no-dhcp", null, null, "both", "common", "Disable the DHCP server"),
  opt("no-ndp", null, null, "both", "common", "Disable NDP responses"),
  opt("no-dhcpv6", null, null, "both", "common", "Disable the DHCPv6 server"),
  opt("no-ra", null, null, "both", "common", "Disable router advertisements"),
  opt("freebind", null, null, "both", "common", "Bind to any address given to -t and -u"),
  opt("map-host-loopback", null, "ADDR", "both", "common", "Translate ADDR to the host's loopback; 'none' to disable"),
  opt("no-map-gw", null, null, "both", "common", "Don't map the gateway address to the host"),
  opt("map-guest-addr", null, "ADDR", "both", "common", "Translate ADDR to the guest's address on the host"),
  opt("chroot-fallback", null, null, "both", "common", "Use chroot() if pivot_root() fails"),
  opt("ipv4-only", "4", null, "both", "common", "Enable IPv4 operation only"),
  opt("ipv6-only", "6", null, "both", "common", "Enable IPv6 operation only"),
  opt("hostname", "H", "NAME", "both", "common", "Hostname to configure the client with (DHCP option 12)"),
  opt("fqdn", null, "NAME", "both", "common", "FQDN to configure the client with"),
  opt("tcp-ports", "t", "SPEC", "both", "common", "TCP port forwarding to guest or namespace, repeatable"),
  opt("udp-ports", "u", "SPEC", "both", "common", "UDP port forwarding to guest or namespace, repeatable"),

  opt("socket", "s", "PATH", "passt", "passt", "UNIX domain socket path", ["socket-path"]),
  opt("vhost-user", null, null, "both", "passt", "Enable vhost-user mode, on the socket given by -s"),
  opt("print-capabilities", null, null, "both", "passt", "Print back-end capabilities in JSON, for vhost-user"),
  opt("repair-path", null, "PATH", "both", "passt", "passt-repair(1) socket path; 'none' to disable"),
  opt("migrate-exit", null, null, "both", "passt", "DEPRECATED: source quits after migration"),
  opt("migrate-no-linger", null, null, "both", "passt", "DEPRECATED: close sockets on migration"),
  opt("fd", "F", "FD", "both", "passt", "Use FD as pre-opened connected socket; implies --one-off"),
  opt("one-off", "1", null, "passt", "passt", "Quit after handling one single client"),

  opt("ns-ifname", "I", "NAME", "pasta", "pasta", "Namespace interface name"),
  opt("tcp-ns", "T", "SPEC", "pasta", "pasta", "TCP port forwarding to init namespace, default auto"),
  opt("udp-ns", "U", "SPEC", "pasta", "pasta", "UDP port forwarding to init namespace, default auto"),
  opt("host-lo-to-ns-lo", null, null, "pasta", "pasta", "Deliver host-loopback forwards to namespace loopback"),
  opt("userns", null, "PATH", "pasta", "pasta", "Target user namespace to join"),
  opt("netns", null, "PATH|NAME", "pasta", "pasta", "Target network namespace to join"),
  opt("netns-only", null, null, "pasta", "pasta", "Don't join or create a user namespace"),
  opt("no-netns-quit", null, null, "pasta", "pasta", "Don't quit when the target namespace goes away"),
  opt("config-net", null, null, "pasta", "pasta", "Configure tap interface in namespace"),
  opt("no-copy-routes", null, null, "pasta", "pasta", "DEPRECATED: don't copy all routes to namespace"),
  opt("no-copy-addrs", null, null, "pasta", "pasta", "DEPRECATED: don't copy all addresses to namespace"),
  opt("ns-mac-addr", null, "ADDR", "pasta", "pasta", "Set MAC address on tap interface"),
  opt("no-splice", null, null, "both", "pasta", "Disable inbound socket splicing"),
  opt("splice-only", null, null, "pasta", "pasta", "Only forward loopback traffic, no tap device"),
];

const BY_SHORT = new Map<string, OptionDef>();
const BY_LONG = new Map<string, OptionDef>();
for (const def of OPTIONS) {
  if (def.short) BY_SHORT.set(def.short, def);
  BY_LONG.set(def.name, def);
  for (const alias of def.aliases) BY_LONG.set(alias, def);
}

/** Returns the option with short letter `letter`, or null if there is none. */
export function findShort(letter: string): OptionDef | null {
  return BY_SHORT.get(letter) ?? null;
}

/**
 * Returns the option called `--name`, accepting an unambiguous abbreviation as
 * getopt_long(3) does (`--fore` is `--foreground`); null if none matches, and
 * the list of candidates if `name` abbreviates several options.
 */
export function findLong(name: string): OptionDef | readonly string[] | null {
  const exact = BY_LONG.get(name);
  if (exact) return exact;
  const hits = new Map<OptionDef, string>();
  for (const [long, def] of BY_LONG) {
    if (long.startsWith(name) && !hits.has(def)) hits.set(def, long);
  }
  if (hits.size === 0) return null;
  if (hits.size === 1) return [...hits.keys()][0]!;
  return [...hits.values()].map((n) => `--${n}`);
}

/** Returns true if executable `name` accepts option `def`. */
export function acceptedBy(def: OptionDef, name: Mode): boolean {
  return def.accepted === "both" || def.accepted === name;
}
