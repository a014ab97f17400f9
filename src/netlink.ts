// SPDX-License-Identifier: GPL-2.0-or-later
// netlink.ts - rtnetlink: read links, addresses and routes; configure the namespace interface
//
// Every function takes the netlink socket as an fd: the host one comes from nlOpen(), the
// namespace one from the agent (syscalls/ns.ts), which opened it inside the namespace. Requests
// are built into one preallocated buffer and answers read into another (64 KiB, the size the
// kernel documentation recommends so no dump datagram is truncated). Calls block until the
// kernel answers, which it does at once: use them at start-up, not from the packet loop.
// Failures come back as -errno, as the kernel reports them in NLMSG_ERROR.

import * as sys from "../syscalls/libc.ts";
import { AF_NETLINK, SOCK_RAW, SOCK_CLOEXEC } from "../syscalls/constants.ts";
import { Errno } from "../syscalls/errno.ts";
import {
  AF_INET,
  AF_INET6,
  IFA_F_DEPRECATED,
  IFF_LOOPBACK,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLM_F_DUMP_INTR,
  NlBuilder,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  RT_SCOPE_LINK,
  RT_TABLE_MAIN,
  buildGetAddrs,
  buildGetLinks,
  buildGetRoutes,
  buildNewAddr,
  buildNewRoute,
  buildSetLink,
  parseAddr,
  parseError,
  parseLink,
  parseMessages,
  parseRoute,
  type AddrInfo,
  type LinkChange,
  type LinkInfo,
  type NlMessage,
  type RouteInfo,
  type RouteSpec,
} from "./netlink/msg.ts";

export type { AddrInfo, LinkChange, LinkInfo, NextHop, RouteInfo, RouteSpec } from "./netlink/msg.ts";
export { AF_INET, AF_INET6 } from "./netlink/msg.ts";

const NETLINK_ROUTE = 0;
const NLBUF_BYTES = 65536;
const DUMP_TRIES = 3;

const reqBuf = new Uint8Array(8192);
const rxBuf = new Uint8Array(NLBUF_BYTES);
const builder = new NlBuilder(reqBuf);
let seq = 1;

/**
 * Returns a new rtnetlink socket in our own network namespace, or -errno.
 * @syscalls socket
 */
export function nlOpen(): number {
  return sys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
}

/** Returns 0 once `len` bytes of reqBuf are sent, or -errno. */
function sendReq(fd: number, len: number): number {
  const n = sys.send(fd, reqBuf, len, 0);
  if (n < 0) return n;
  return n === len ? 0 : -Errno.EMSGSIZE;
}

/**
 * Sends the request in reqBuf and waits for its acknowledgement. Returns 0, or the kernel's
 * -errno. Answers to other sequence numbers (left over from an aborted call) are skipped.
 * @syscalls sendto recvfrom
 */
function doRequest(fd: number, len: number, want: number): number {
  const r = sendReq(fd, len);
  if (r < 0) return r;
  for (;;) {
    const n = sys.recv(fd, rxBuf, rxBuf.length, 0);
    if (n < 0) {
      if (n === -Errno.EINTR) continue;
      return n;
    }
    for (const m of parseMessages(rxBuf.subarray(0, n))) {
      if (m.seq !== want) continue;
      if (m.type === NLMSG_ERROR || m.type === NLMSG_DONE) return parseError(m.payload) ?? -Errno.EPROTO;
    }
  }
}

/**
 * Runs a dump built by `build` and hands every message of type `type` to `take`. Returns 0,
 * or -errno (the kernel's, or -EAGAIN if the dump kept being interrupted by changes).
 * @syscalls sendto recvfrom
 */
function dump(fd: number, build: (s: number) => number, type: number, take: (m: NlMessage) => void): number {
  for (let attempt = 0; attempt < DUMP_TRIES; attempt++) {
    const want = seq++;
    const r = sendReq(fd, build(want));
    if (r < 0) return r;
    const taken: NlMessage[] = [];
    let interrupted = false;
    let status: number | null = null;
    while (status === null) {
      const n = sys.recv(fd, rxBuf, rxBuf.length, 0);
      if (n < 0) {
        if (n === -Errno.EINTR) continue;
        return n;
      }
      for (const m of parseMessages(rxBuf.subarray(0, n))) {
        if (m.seq !== want) continue;
        if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
        if (m.type === NLMSG_DONE || m.type === NLMSG_ERROR) {
          status = parseError(m.payload) ?? 0;
          break;
        }
        // Payloads alias rxBuf, which the next recv() overwrites: copy what we keep.
        if (m.type === type) taken.push({ ...m, payload: m.payload.slice() });
      }
    }
    if (status < 0) return status;
    if (interrupted) continue;
    for (const m of taken) take(m);
    return 0;
  }
  return -Errno.EAGAIN;
}

/** Returns every link in the namespace of `fd`, or -errno. @syscalls sendto recvfrom */
export function nlLinks(fd: number): LinkInfo[] | number {
  const out: LinkInfo[] = [];
  const r = dump(fd, (s) => buildGetLinks(builder, s), RTM_NEWLINK, (m) => {
    const l = parseLink(m.payload);
    if (l) out.push(l);
  });
  return r < 0 ? r : out;
}

/** Returns every address of `family` (AF_INET or AF_INET6), or -errno. @syscalls sendto recvfrom */
export function nlAddrs(fd: number, family: number): AddrInfo[] | number {
  const out: AddrInfo[] = [];
  const r = dump(fd, (s) => buildGetAddrs(builder, s, family), RTM_NEWADDR, (m) => {
    const a = parseAddr(m.payload);
    if (a && a.family === family) out.push(a);
  });
  return r < 0 ? r : out;
}

/** Returns the main-table routes of `family`, in kernel order, or -errno. @syscalls sendto recvfrom */
export function nlRoutes(fd: number, family: number): RouteInfo[] | number {
  const out: RouteInfo[] = [];
  const r = dump(fd, (s) => buildGetRoutes(builder, s, family), RTM_NEWROUTE, (m) => {
    const rt = parseRoute(m.payload);
    if (rt && rt.family === family && rt.table === RT_TABLE_MAIN) out.push(rt);
  });
  return r < 0 ? r : out;
}

/** Returns true if dst/dstLen lies within the link-local prefix (169.254/16, fe80::/10). */
function isLinkLocalPrefix(r: RouteInfo): boolean {
  if (r.family === AF_INET) return r.dstLen >= 16 && r.dst[0] === 169 && r.dst[1] === 254;
  return r.dstLen >= 10 && r.dst[0] === 0xfe && ((r.dst[1] ?? 0) & 0xc0) === 0x80;
}

/** Returns the output interface of a route: its oif, or its highest-weight nexthop's (first on ties). */
export function routeIfindex(r: RouteInfo): number {
  if (r.oif) return r.oif;
  let best = 0;
  let weight = 0;
  for (const hop of r.nexthops) {
    if (hop.weight > weight) {
      best = hop.ifindex;
      weight = hop.weight;
    }
  }
  return best;
}

/**
 * Returns the template interface for one IP version, chosen from that version's main-table
 * routes as pasta does: the interface of the first default route (multipath: the
 * highest-weight path), else the only interface that has routes, else 0: no template
 * ("local mode"). Loopback interfaces (`loopback`, ifindex values) and link-local prefixes
 * are ignored. The cost is O(routes).
 */
export function chooseTemplate(routes: readonly RouteInfo[], loopback: ReadonlySet<number> = new Set([1])): number {
  const withRoutes = new Set<number>();
  for (const r of routes) {
    const ifindex = routeIfindex(r);
    if (!ifindex || loopback.has(ifindex) || isLinkLocalPrefix(r)) continue;
    if (r.dstLen === 0) return ifindex;
    withRoutes.add(ifindex);
  }
  if (withRoutes.size === 1) return withRoutes.values().next().value ?? 0;
  return 0;
}

/** What the host looks like for one IP version, for conf and --config-net. */
export interface HostTemplate {
  /** Template interface index, 0 in local mode. */
  ifindex: number;
  link: LinkInfo | null;
  /** Addresses of the template, not deprecated, link-local ones last. */
  addrs: AddrInfo[];
  /** Main-table routes through the template. */
  routes: RouteInfo[];
  /** Gateway of the first default route through the template, or null. */
  gateway: Uint8Array | null;
}

/**
 * Returns the template interface of `family` (the one chosen by chooseTemplate(), or
 * `forceIndex` as -i asks) with its link, addresses, routes and default gateway as the
 * socket `fd` sees them, or -errno if a dump failed.
 * @syscalls sendto recvfrom
 */
export function nlHostTemplate(fd: number, family: number, forceIndex = 0): HostTemplate | number {
  const links = nlLinks(fd);
  if (typeof links === "number") return links;
  const routes = nlRoutes(fd, family);
  if (typeof routes === "number") return routes;
  const loopback = new Set(links.filter((l) => l.flags & IFF_LOOPBACK).map((l) => l.index));
  const ifindex = forceIndex || chooseTemplate(routes, loopback);
  const empty: HostTemplate = { ifindex: 0, link: null, addrs: [], routes: [], gateway: null };
  if (!ifindex) return empty;
  const addrs = nlAddrs(fd, family);
  if (typeof addrs === "number") return addrs;
  const mine = routes.filter((r) => r.oif === ifindex || r.nexthops.some((h) => h.ifindex === ifindex));
  let gateway: Uint8Array | null = null;
  for (const r of mine) {
    if (r.dstLen !== 0) continue;
    gateway = r.gateway ?? bestHop(r, ifindex)?.gateway ?? null;
    if (gateway) break;
  }
  return {
    ifindex,
    link: links.find((l) => l.index === ifindex) ?? null,
    addrs: addrs
      .filter((a) => a.ifindex === ifindex && !(a.flags & IFA_F_DEPRECATED))
      .sort((a, b) => Number(a.scope === RT_SCOPE_LINK) - Number(b.scope === RT_SCOPE_LINK)),
    routes: mine,
    gateway,
  };
}

function bestHop(r: RouteInfo, ifindex: number) {
  let best = null;
  for (const h of r.nexthops) if (h.ifindex === ifindex && (!best || h.weight > best.weight)) best = h;
  return best;
}

/**
 * Returns the index of the link called `name`, or -errno (-ENODEV if there is none).
 * @syscalls sendto recvfrom
 */
export function nlLinkIndex(fd: number, name: string): number {
  const links = nlLinks(fd);
  if (typeof links === "number") return links;
  return links.find((l) => l.name === name)?.index ?? -Errno.ENODEV;
}

/**
 * Changes flags (up, noarp), MTU and/or MAC of link `index`. Returns 0, or -errno.
 * @example nlSetLink(nsFd, tapIndex, { mtu: 65520, up: true })
 * @syscalls sendto recvfrom
 */
export function nlSetLink(fd: number, index: number, change: LinkChange): number {
  const s = seq++;
  return doRequest(fd, buildSetLink(builder, s, index, change), s);
}

/** Brings `lo` of the namespace of `fd` up. Returns 0, or -errno. @syscalls sendto recvfrom */
export function nlLoopbackUp(fd: number): number {
  const lo = nlLinkIndex(fd, "lo");
  return lo < 0 ? lo : nlSetLink(fd, lo, { up: true });
}

/**
 * Adds `address`/`prefixLen` to link `index` (IPv6 with IFA_F_NODAD). Returns 0, or -errno
 * (-EEXIST if it is already there).
 * @syscalls sendto recvfrom
 */
export function nlAddAddr(fd: number, index: number, address: Uint8Array, prefixLen: number): number {
  const family = address.length === 4 ? AF_INET : AF_INET6;
  const s = seq++;
  return doRequest(fd, buildNewAddr(builder, s, { family, index, address, prefixLen }), s);
}

/** Adds one route in the main table. Returns 0, or -errno (-EEXIST if present). @syscalls sendto recvfrom */
export function nlAddRoute(fd: number, route: RouteSpec): number {
  const s = seq++;
  return doRequest(fd, buildNewRoute(builder, s, route), s);
}

/**
 * Adds a default route via `gateway` on link `index`. Returns 0, or -errno.
 * @syscalls sendto recvfrom
 */
export function nlAddDefaultRoute(fd: number, index: number, gateway: Uint8Array): number {
  const family = gateway.length === 4 ? AF_INET : AF_INET6;
  return nlAddRoute(fd, { family, oif: index, gateway });
}

/**
 * Adds the non-link-local addresses in `addrs` to link `index`. Addresses already present
 * count as added. Returns 0, or the first other -errno.
 * @syscalls sendto recvfrom
 */
export function nlCopyAddrs(fd: number, index: number, addrs: readonly AddrInfo[]): number {
  for (const a of addrs) {
    if (a.scope === RT_SCOPE_LINK) continue;
    const r = nlAddAddr(fd, index, a.address, a.prefixLen);
    if (r < 0 && r !== -Errno.EEXIST) return r;
  }
  return 0;
}

/**
 * Adds `routes` (read from the template `fromIndex`) to link `index`, as --config-net does.
 * Routes without a gateway go first, and a route whose gateway is not reachable yet
 * (-ENETUNREACH, -EHOSTUNREACH) is retried after the others, until a round adds nothing.
 * Multipath routes keep only their paths through the template. Routes already present
 * (the kernel adds prefix routes with addresses) count as added. Returns 0, or -errno.
 * @syscalls sendto recvfrom
 */
export function nlCopyRoutes(fd: number, fromIndex: number, index: number, routes: readonly RouteInfo[]): number {
  const specs: RouteSpec[] = [];
  for (const r of routes) {
    const spec: RouteSpec = { family: r.family, dst: r.dst, dstLen: r.dstLen, priority: r.priority, oif: index };
    if (r.nexthops.length > 0) {
      const hops = r.nexthops.filter((h) => h.ifindex === fromIndex).map((h) => ({ ...h, ifindex: index }));
      if (hops.length === 0) continue;
      if (hops.length === 1) spec.gateway = hops[0]?.gateway ?? null;
      else spec.nexthops = hops;
    } else if (r.oif === fromIndex) {
      spec.gateway = r.gateway;
    } else {
      continue;
    }
    specs.push(spec);
  }
  const direct = (s: RouteSpec) => !s.gateway && !s.nexthops;
  let pending = [...specs.filter(direct), ...specs.filter((s) => !direct(s))];
  let lastError = 0;
  while (pending.length > 0) {
    const retry: RouteSpec[] = [];
    for (const spec of pending) {
      const r = nlAddRoute(fd, spec);
      if (r === 0 || r === -Errno.EEXIST) continue;
      if (r !== -Errno.ENETUNREACH && r !== -Errno.EHOSTUNREACH) return r;
      retry.push(spec);
      lastError = r;
    }
    if (retry.length === pending.length) return lastError;
    pending = retry;
  }
  return 0;
}

/** Returns the text form of a 4- or 16-byte address ("198.51.100.1", "2001:db8::1"). */
export function ipToString(a: Uint8Array): string {
  if (a.length === 4) return a.join(".");
  const words: number[] = [];
  for (let i = 0; i + 1 < a.length; i += 2) words.push(((a[i] ?? 0) << 8) | (a[i + 1] ?? 0));
  // RFC 5952: compress the longest run of two or more zero words, the first on ties.
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < words.length; ) {
    let j = i;
    while (j < words.length && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestAt < 0) return hex.join(":");
  return `${hex.slice(0, bestAt).join(":")}::${hex.slice(bestAt + bestLen).join(":")}`;
}

/** Returns the 4 or 16 bytes of a textual IPv4 or IPv6 address, or null if it is not one. */
export function ipFromString(s: string): Uint8Array | null {
  if (!s.includes(":")) {
    const parts = s.split(".");
    if (parts.length !== 4) return null;
    const out = new Uint8Array(4);
    for (let i = 0; i < 4; i++) {
      const p = parts[i] ?? "";
      if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
      out[i] = Number(p);
    }
    return out;
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const words: number[] = [];
  const tailWords: number[] = [];
  for (const [list, into] of [
    [head, words],
    [tail, tailWords],
  ] as const) {
    for (const w of list) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(w)) return null;
      into.push(parseInt(w, 16));
    }
  }
  const missing = 8 - words.length - tailWords.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const all = [...words, ...new Array<number>(missing).fill(0), ...tailWords];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}
