// SPDX-License-Identifier: GPL-2.0-or-later
// host.ts - resolve the configuration against the host: template interfaces, addresses, gateways, DNS
//
// What the guest gets is a copy of the host (REFERENCE.md §2): the address and
// gateway of the template interface of each IP version (first default route),
// unless options say otherwise. With no usable template for either version we
// fall back, as the newest upstream does, to "local mode": 169.254.2.1/16 via
// 169.254.2.2 and fe80::1 as the IPv6 router, with the guest's IPv6 address
// learned from its traffic.
//
// DNS follows upstream's rules: servers come from -D or /etc/resolv.conf; a
// resolver on the host's loopback (or one equal to the map-host-loopback
// address) is advertised as the map-host-loopback address, whose port 53/853
// traffic is then sent to the real resolver (dnsMatch -> dnsHost); with
// --dns-forward ADDR that address is advertised and matched instead.

import { readFileSync } from "node:fs";
import type { Config } from "./conf.ts";
import { type Ctx, type Ip4Ctx, type Ip6Ctx, Stats } from "./ctx.ts";
import { log } from "./log.ts";
import { AF_INET, AF_INET6, type HostTemplate, nlHostTemplate, nlLinkIndex } from "./netlink.ts";
import { addrEqual, isLinkLocal6, isLoopback4, isLoopback6, isUnspecified, parseIpv4, parseIpv6 } from "./wire/addr.ts";

/** Local mode, IPv4: guest address, gateway and prefix length (newest upstream). */
const LOCAL_ADDR4 = new Uint8Array([169, 254, 2, 1]);
const LOCAL_GW4 = new Uint8Array([169, 254, 2, 2]);
const LOCAL_PREFIX_LEN4 = 16;
/** Local mode, IPv6: the router the guest sees. */
const LOCAL_GW6 = parseIpv6("fe80::1")!;

/** At most this many DNS servers per IP version, as upstream. */
const MAX_DNS = 3;
/** At most this many search domains, as upstream. */
const MAX_SEARCH = 6;

/** What the host looks like, as read from rtnetlink (tests build it by hand). */
export interface HostInfo {
  readonly v4: HostTemplate | null;
  readonly v6: HostTemplate | null;
  /** Contents of /etc/resolv.conf, or "" if unreadable. */
  readonly resolvConf: string;
}

/**
 * Returns what rtnetlink and /etc/resolv.conf say about the host, through the
 * host netlink socket `nl`. A failed dump counts as "no template".
 * @syscalls sendto recvfrom openat read
 */
export function readHost(conf: Config, nl: number): HostInfo {
  let forced = 0;
  if (conf.ifname !== null) {
    forced = nlLinkIndex(nl, conf.ifname);
    if (forced < 0) throw new HostError(`-i ${conf.ifname}: no such interface`);
  }
  const pick = (family: number, only: boolean): HostTemplate | null => {
    if (only) return null;
    const t = nlHostTemplate(nl, family, forced);
    if (typeof t === "number") {
      log.debug(`rtnetlink dump for ${family === AF_INET ? "IPv4" : "IPv6"} failed: ${t}`);
      return null;
    }
    return t;
  };
  const v4 = pick(AF_INET, conf.ipv6Only);
  const v6 = pick(AF_INET6, conf.ipv4Only);
  let resolvConf = "";
  try {
    resolvConf = readFileSync("/etc/resolv.conf", "utf8");
  } catch {
    log.debug("can't read /etc/resolv.conf");
  }
  return { v4, v6, resolvConf };
}

/** A host configuration that cannot work, e.g. `-i` naming a missing interface. */
export class HostError extends Error {
  override name = "HostError";
}

interface ResolvConf {
  readonly nameservers: Uint8Array[];
  readonly search: string[];
}

/** Returns the nameserver addresses and search domains of a resolv.conf text. */
export function parseResolvConf(text: string): ResolvConf {
  const nameservers: Uint8Array[] = [];
  let search: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const words = line.split(/\s+/);
    if (words[0] === "nameserver" && words[1]) {
      const bare = words[1].split("%")[0]!;
      const a = parseIpv4(bare) ?? parseIpv6(bare);
      if (a) nameservers.push(a);
    } else if ((words[0] === "search" || words[0] === "domain") && words.length > 1) {
      if (words[0] === "search" || search.length === 0) search = words.slice(1).slice(0, MAX_SEARCH);
    }
  }
  return { nameservers, search };
}

function firstAddr(t: HostTemplate, linkLocal: boolean): { address: Uint8Array; prefixLen: number } | null {
  for (const a of t.addrs) {
    const ll = a.address.length === 16 ? isLinkLocal6(a.address) : false;
    if (ll === linkLocal) return { address: a.address, prefixLen: a.prefixLen };
  }
  return null;
}

/** Returns a fresh copy of `a` (context addresses that change at run time must not alias config). */
function copy(a: Uint8Array): Uint8Array {
  return new Uint8Array(a);
}

interface DnsSide {
  dns: Uint8Array[];
  dnsMatch: Uint8Array | null;
  dnsHost: Uint8Array | null;
}

/**
 * Returns the DNS servers to advertise for one IP version and the match/host
 * pair that redirects port 53/853 traffic, following upstream's add_dns_resolv().
 */
function resolveDns(
  given: readonly Uint8Array[] | null,
  resolvers: readonly Uint8Array[],
  mapHostLoopback: Uint8Array | null,
  dnsForward: Uint8Array | null,
  dnsHostOpt: Uint8Array | null,
  isLoopback: (a: Uint8Array) => boolean,
): DnsSide {
  let dnsHost = dnsHostOpt;
  let dnsMatch = dnsForward;
  const dns: Uint8Array[] = [];
  if (given !== null) {
    for (const a of given) if (dns.length < MAX_DNS) dns.push(a);
    if (dnsHost === null && resolvers[0]) dnsHost = resolvers[0];
    return { dns, dnsMatch, dnsHost };
  }
  for (const ns of resolvers) {
    if (dnsHost === null) dnsHost = ns;
    let advertised = ns;
    if (isLoopback(ns) || (mapHostLoopback && addrEqual(ns, mapHostLoopback))) {
      if (dnsMatch === null) {
        if (mapHostLoopback === null) continue; // unreachable from the guest
        advertised = mapHostLoopback;
        dnsMatch = mapHostLoopback;
      } else {
        advertised = dnsMatch;
      }
    }
    if (dns.length < MAX_DNS && !dns.some((d) => addrEqual(d, advertised))) dns.push(advertised);
  }
  if (dnsForward !== null && !dns.some((d) => addrEqual(d, dnsForward))) {
    // --dns-forward: the guest is told about the forwarding address.
    if (dns.length < MAX_DNS) dns.unshift(dnsForward);
  }
  return { dns, dnsMatch, dnsHost };
}

/**
 * Returns the run-time context for `conf` on a host described by `host`.
 * Throws HostError when the options cannot work on this host.
 */
export function buildCtx(conf: Config, host: HostInfo): Ctx {
  const resolv = parseResolvConf(host.resolvConf);
  const v4resolvers = resolv.nameservers.filter((a) => a.length === 4);
  const v6resolvers = resolv.nameservers.filter((a) => a.length === 16);
  const given4 = conf.dns === null ? null : conf.dns.filter((a) => a.length === 4);
  const given6 = conf.dns === null ? null : conf.dns.filter((a) => a.length === 16);

  // As upstream: an IP version whose template gives no address and gateway is
  // disabled; if that leaves none, local mode serves the versions enabled.
  const resolve = (local: boolean): [Ip4Ctx | null, Ip6Ctx | null] => {
    let ip4: Ip4Ctx | null = null;
    let ip6: Ip6Ctx | null = null;
    const t4 = host.v4;
    const t6 = host.v6;

    if (!conf.ipv6Only) {
      let addr: Uint8Array | null = conf.addr4;
      let prefixLen = conf.prefixLen4;
      let gw: Uint8Array | null = conf.gateway4;
      if (!local && t4 && t4.ifindex) {
        const a = firstAddr(t4, false);
        if (addr === null && a) {
          addr = a.address;
          if (prefixLen === null) prefixLen = a.prefixLen;
        }
        if (gw === null) gw = t4.gateway;
      }
      if (local) {
        addr ??= LOCAL_ADDR4;
        gw ??= LOCAL_GW4;
        prefixLen ??= LOCAL_PREFIX_LEN4;
      }
      if (addr !== null && gw !== null) {
        const mapHostLoopback = conf.noMapGw ? null : (conf.mapHostLoopback4 ?? gw);
        const d = resolveDns(given4, v4resolvers, mapHostLoopback, conf.dnsForward4, conf.dnsHost4, isLoopback4);
        ip4 = {
          addr: copy(addr),
          prefixLen: prefixLen ?? 24,
          gw: copy(gw),
          addrSeen: copy(addr),
          mapHostLoopback,
          mapGuestAddr: conf.mapGuestAddr4,
          ourTapAddr: copy(gw),
          dns: d.dns,
          dnsMatch: d.dnsMatch,
          dnsHost: d.dnsHost,
          ifindex: local ? 0 : (t4?.ifindex ?? 0),
        };
      }
    }

    if (!conf.ipv4Only) {
      let addr: Uint8Array | null = conf.addr6;
      let prefixLen = conf.prefixLen6;
      let gw: Uint8Array | null = conf.gateway6;
      let ll: Uint8Array | null = null;
      if (!local && t6 && t6.ifindex) {
        const a = firstAddr(t6, false);
        if (addr === null && a) {
          addr = a.address;
          if (prefixLen === null) prefixLen = a.prefixLen;
        }
        ll = firstAddr(t6, true)?.address ?? null;
        if (gw === null) gw = t6.gateway;
      }
      if (local) {
        gw ??= LOCAL_GW6;
        ll = LOCAL_GW6;
        addr ??= new Uint8Array(16); // learned from the guest's traffic
      }
      if (gw !== null && isLinkLocal6(gw)) ll = gw;
      if (addr !== null && gw !== null && ll !== null) {
        const mapHostLoopback = conf.noMapGw ? null : (conf.mapHostLoopback6 ?? gw);
        const d = resolveDns(given6, v6resolvers, mapHostLoopback, conf.dnsForward6, conf.dnsHost6, isLoopback6);
        ip6 = {
          addr: copy(addr),
          prefixLen: prefixLen ?? 64,
          gw: copy(gw),
          addrSeen: copy(addr),
          addrLlSeen: new Uint8Array(16),
          ourTapLl: copy(ll),
          mapHostLoopback,
          mapGuestAddr: conf.mapGuestAddr6,
          dns: d.dns,
          dnsMatch: d.dnsMatch,
          dnsHost: d.dnsHost,
          ifindex: local ? 0 : (t6?.ifindex ?? 0),
        };
      }
    }
    return [ip4, ip6];
  };
  let [ip4, ip6] = resolve(false);
  if (!ip4 && !ip6) {
    log.info("No external interface as template, switch to local mode");
    [ip4, ip6] = resolve(true);
  }
  if (!ip4 && !ip6) throw new HostError("no usable IPv4 or IPv6 configuration on this host");
  if (ip4 && isUnspecified(ip4.addr)) log.warn("IPv4 address is unspecified");

  const search = conf.search ?? resolv.search;
  return {
    conf,
    mode: conf.mode,
    ourMac: new Uint8Array(conf.mac),
    guestMac: new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    ip4,
    ip6,
    mtu: conf.mtu,
    search: search.slice(0, MAX_SEARCH),
    hostname: conf.hostname,
    fqdn: conf.fqdn,
    stats: new Stats(),
  };
}

/** Returns the name of the template interface in use (IPv4 first), or null in local mode. */
export function templateName(host: HostInfo, ctx: Ctx): string | null {
  if (ctx.ip4?.ifindex) return host.v4?.link?.name ?? null;
  if (ctx.ip6?.ifindex) return host.v6?.link?.name ?? null;
  return null;
}
