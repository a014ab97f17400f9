// SPDX-License-Identifier: GPL-2.0-or-later
// pasta.ts - pasta: create or join the namespace, set it up, run the command, serve its tap
//
// Theory of operation
//
// 1. Read the host (host.ts) and build the context: the namespace gets a copy
//    of the host's addresses and routes.
// 2. A forked C agent (syscalls/ns.ts; Bun itself cannot unshare a user
//    namespace) creates a user and network namespace, or joins one (PID,
//    --netns), opens the tap and an rtnetlink socket there and hands both over.
// 3. We configure the namespace through that netlink socket: `lo` up always;
//    with --config-net also MTU, addresses, routes and link up (IFF_NOARP when
//    IPv6 is on, to skip duplicate address detection, as upstream does).
// 4. The command is forked by the agent's C code as our own child, inside the
//    namespaces, and watched through a pidfd: its exit ends pasta with its status.
//    When attached to an existing namespace, pasta instead runs until that
//    namespace goes away (unless --no-netns-quit), checked once a second.
// 5. The loop serves the tap: frames go to tapInput(), which answers ARP, DHCP,
//    NDP and DHCPv6 itself and hands ICMP, UDP and TCP to their translators.
// 6. Port forwarding: fixed -t/-u ports are opened by the translators; `auto`
//    and `all` rules and every -T rule by fwd_auto.ts, which rescans the
//    namespace's and the host's /proc/net tables every second. Connections
//    between the host's and the namespace's loopback are spliced
//    (proto/tcp_splice.ts); with --splice-only there is no tap at all.

import { statSync, writeFileSync } from "node:fs";
import { daemonReady } from "./daemon.ts";
import type { Config } from "./conf.ts";
import type { Ctx } from "./ctx.ts";
import { buildCtx, HostError, type HostInfo, readHost, templateName } from "./host.ts";
import { die, log } from "./log.ts";
import { EpollType, Loop } from "./loop/loop.ts";
import { childReap, childWatch } from "./loop/child.ts";
import { stopOnSignals } from "./loop/signal.ts";
import { timerOnce, timerPeriodic, timerRead } from "./loop/timer.ts";
import { tcpActive } from "./proto/tcp.ts";
import {
  nlAddAddr,
  nlAddDefaultRoute,
  nlCopyAddrs,
  nlCopyRoutes,
  nlLinkIndex,
  nlLinks,
  nlLoopbackUp,
  nlOpen,
  nlSetLink,
} from "./netlink.ts";
import { PcapWriter } from "./pcap.ts";
import { sandbox } from "./sandbox.ts";
import { TapDevice } from "./tap/tap.ts";
import type { TapSink } from "./tap/frame.ts";
import { setupGuestPath } from "./guest.ts";
import { fwdInit } from "./fwd_auto.ts";
import { tcpSpliceActive, tcpSpliceInit } from "./proto/tcp_splice.ts";
import { udpSpliceInit } from "./proto/udp_splice.ts";
import { type NsAgent, nsCreate, nsJoin, nsSpawn, nsWait, nsWriteFile, strerror } from "../syscalls/ns.ts";
import { close, EPOLLIN, getrlimit, RLIMIT, RLIMIT_NOFILE, setrlimit } from "../syscalls/mod.ts";
import { formatIp, formatMac } from "./wire/addr.ts";

/** Namespace interface name when the host has no template interface (upstream's default). */
const DEFAULT_NS_IFNAME = "tap0";
/**
 * Bytes of frames the namespace's tap queue should hold. The kernel's default of
 * 1000 frames is 1.5 MB at MTU 1500, less than a TCP window, so the guest's
 * frames were dropped before we could read them (rootlesskit#615); at MTU 65520
 * the default already holds 64 MB.
 */
const TAP_QUEUE_BYTES = 16 * 1024 * 1024;
const TAP_QUEUE_MIN_FRAMES = 1000;

/** How often we check that an attached namespace still exists. */
const NETNS_QUIT_INTERVAL_MS = 1000;

/** Returns "name: strerror" for a negative errno result, for die(). */
function failed(what: string, rc: number): string {
  return `${what}: ${strerror(-rc)}`;
}

/**
 * Sets up the namespace side through its netlink socket: loopback up, the tap's MAC
 * read back into ctx.guestMac (or set from --ns-mac-addr), and with --config-net the
 * MTU, addresses and routes. Dies with one line on failure.
 * @syscalls sendto recvfrom
 */
function configureNamespace(ctx: Ctx, conf: Config, host: HostInfo, nl: number, ifname: string): void {
  let rc = nlLoopbackUp(nl);
  if (rc < 0) die(failed("can't bring up loopback in namespace", rc));
  if (conf.spliceOnly) return; // no tap, nothing else to set up
  const index = nlLinkIndex(nl, ifname);
  if (index < 0) die(failed(`can't find ${ifname} in namespace`, index));

  if (conf.nsMac) {
    rc = nlSetLink(nl, index, { mac: conf.nsMac });
    if (rc < 0) die(failed("can't set MAC address in namespace", rc));
    ctx.guestMac.set(conf.nsMac);
  } else {
    const links = nlLinks(nl);
    const mac = typeof links === "number" ? null : links.find((l) => l.index === index)?.mac;
    if (mac && mac.length === 6) ctx.guestMac.set(mac);
  }

  // The queue the guest's frames wait in until we read them.
  const mtu = ctx.mtu || 65520;
  rc = nlSetLink(nl, index, { txqlen: Math.max(TAP_QUEUE_MIN_FRAMES, Math.ceil(TAP_QUEUE_BYTES / mtu)) });
  if (rc < 0) log.debug(failed("can't set the tap queue length", rc));

  if (!conf.configNet) return;
  if (ctx.mtu) {
    rc = nlSetLink(nl, index, { mtu: ctx.mtu });
    if (rc < 0) die(failed(`can't set MTU ${ctx.mtu} in namespace`, rc));
  }
  rc = nlSetLink(nl, index, ctx.ip6 ? { up: true, noarp: true } : { up: true });
  if (rc < 0) die(failed(`can't bring up ${ifname} in namespace`, rc));

  if (ctx.ip4) {
    const t = host.v4;
    rc =
      conf.noCopyAddrs4 || !t || !ctx.ip4.ifindex
        ? nlAddAddr(nl, index, ctx.ip4.addr, ctx.ip4.prefixLen)
        : nlCopyAddrs(nl, index, t.addrs);
    if (rc < 0) die(failed("can't set IPv4 address(es) in namespace", rc));
    rc =
      conf.noCopyRoutes4 || !t || !ctx.ip4.ifindex
        ? nlAddDefaultRoute(nl, index, ctx.ip4.gw)
        : nlCopyRoutes(nl, t.ifindex, index, t.routes);
    if (rc < 0) die(failed("can't set IPv4 route(s) in namespace", rc));
  }
  if (ctx.ip6) {
    const t = host.v6;
    rc =
      conf.noCopyAddrs6 || !t || !ctx.ip6.ifindex
        ? ctx.ip6.addr.some((b) => b !== 0)
          ? nlAddAddr(nl, index, ctx.ip6.addr, ctx.ip6.prefixLen)
          : 0
        : nlCopyAddrs(nl, index, t.addrs);
    if (rc < 0) die(failed("can't set IPv6 address(es) in namespace", rc));
    rc =
      conf.noCopyRoutes6 || !t || !ctx.ip6.ifindex
        ? nlAddDefaultRoute(nl, index, ctx.ip6.gw)
        : nlCopyRoutes(nl, t.ifindex, index, t.routes);
    if (rc < 0) die(failed("can't set IPv6 route(s) in namespace", rc));
  }
}

/** Returns the agent for the namespace pasta serves, or dies with the failing step. */
function openNamespace(conf: Config, ifname: string): NsAgent {
  const tap = conf.spliceOnly ? { nonblock: true } : { ifname, nonblock: true, vnetHdr: true };
  let agent;
  if (conf.netns !== null) {
    agent =
      conf.userns !== null
        ? nsJoin({ ...tap, netns: conf.netns, userns: conf.userns })
        : nsJoin({ ...tap, netns: conf.netns, netnsOnly: conf.netnsOnly });
  } else {
    agent = nsCreate({ ...tap, uts: true });
  }
  if (!agent.ok) die(agent.message);
  return agent;
}

/** The guest path's sink with --splice-only: there is no tap, frames are dropped. */
const NO_TAP: TapSink = { send: () => false };

/** Loop indices of pasta's own descriptors (one each). */
const enum Slot {
  TAP = 0,
  CHILD = 0,
  NSQUIT = 0,
  DRAIN = 0,
}

/** Longest wait, once the command exited, for its TCP connections to close (see drainThenStop()). */
const CHILD_DRAIN_MS = 2000;

/**
 * Runs pasta until the command exits (its status is returned) or the namespace
 * goes away (0). Dies with one line on any start-up failure.
 */
export function runPasta(conf: Config): number {
  raiseFileLimit();
  const hostNl = nlOpen();
  if (hostNl < 0) die(failed("can't open rtnetlink socket", hostNl));
  let host: HostInfo;
  let ctx: Ctx;
  try {
    host = readHost(conf, hostNl);
    ctx = buildCtx(conf, host);
  } catch (e) {
    if (e instanceof HostError) die(e.message);
    throw e;
  }
  const ifname = conf.nsIfname ?? templateName(host, ctx) ?? DEFAULT_NS_IFNAME;
  logContext(ctx, ifname);

  const agent = openNamespace(conf, ifname);
  configureNamespace(ctx, conf, host, agent.netlinkFd, ifname);
  if (conf.netns === null) {
    // Let the namespace's root use ping sockets (ICMP echo without privileges).
    const rc = nsWriteFile(agent, "/proc/sys/net/ipv4/ping_group_range", "0 0");
    if (rc < 0) log.debug(failed("can't set ping_group_range in namespace", rc));
  }

  const loop = new Loop();
  stopOnSignals(loop);
  const pcap = conf.pcap ? new PcapWriter(conf.pcap) : null;
  // --splice-only: no tap; what would go to the guest is dropped.
  const tap = conf.spliceOnly ? null : new TapDevice(ctx, agent.tapFd, pcap, { vnetHdr: true });
  const guest = setupGuestPath(ctx, loop, tap ?? NO_TAP);
  if (!conf.noTcp) tcpSpliceInit(ctx, loop, agent);
  if (!conf.noUdp) udpSpliceInit(ctx, loop, agent);
  fwdInit(ctx, loop, agent);
  if (tap !== null) {
    loop.add(tap.fd, EPOLLIN, EpollType.TAP_PASTA, Slot.TAP);
    loop.on(EpollType.TAP_PASTA, () => {
      const n = tap.readBatch(guest.input, guest.batchEnd);
      if (n < 0) {
        log.info(`tap: ${strerror(-n)}, exiting`);
        loop.stop(0);
      }
    });
  }

  if (conf.netns === null) {
    const argv = conf.command ?? [process.env.SHELL || "/bin/sh"];
    const spawned = nsSpawn(agent, argv);
    if (spawned.failure) {
      // As a shell does: a command that cannot be run gives status 127, any other failure 1.
      log.err(spawned.failure.message);
      if (spawned.pid > 0) process.exit(nsWait(spawned.pid));
      process.exit(1);
    }
    const pidfd = childWatch(loop, spawned.pid, Slot.CHILD);
    if (pidfd < 0) die(failed("pidfd_open", pidfd));
    loop.on(EpollType.CHILD, () => {
      const status = childReap(pidfd);
      if (status >= 0) drainThenStop(loop, status);
    });
  } else if (!conf.noNetnsQuit) {
    const path = conf.netns;
    timerPeriodic(loop, EpollType.NSQUIT_TIMER, Slot.NSQUIT, NETNS_QUIT_INTERVAL_MS);
    loop.on(EpollType.NSQUIT_TIMER, (_i, _e, fd) => {
      timerRead(fd);
      if (!namespaceExists(path)) {
        log.info(`Namespace ${path} is gone, exiting`);
        loop.stop(0);
      }
    });
  }

  if (conf.pidFile) writeFileSync(conf.pidFile, `${process.pid}\n`);
  daemonReady();
  sandbox(conf);
  const code = loop.run();
  logStats(ctx);
  if (log.debugEnabled) log.debug(`loop: ${loop.pollHints} poll hints, ${loop.spinWindows} polls before sleeping, ${loop.spinHits} found events`);
  pcap?.close();
  close(hostNl);
  return code;
}

/**
 * The command exited with `status`: stops the loop once no TCP connection is
 * left, or after CHILD_DRAIN_MS. A command's sockets outlive it: what it wrote
 * just before it exited may still sit in the namespace's send queues (measured:
 * 437,504 bytes of a 64 MiB upload to a remote host, lost when pasta stopped at
 * once and reset the connection). Its connections end by themselves, the kernel
 * closed every socket of the command, so the wait is short.
 */
function drainThenStop(loop: Loop, status: number): void {
  const done = () => tcpActive() + tcpSpliceActive() === 0;
  if (done()) return loop.stop(status);
  log.debug(`command exited (${status}): waiting for ${tcpActive() + tcpSpliceActive()} TCP connections to close`);
  const deadline = timerOnce(loop, EpollType.TIMER, Slot.DRAIN, CHILD_DRAIN_MS);
  loop.on(EpollType.TIMER, () => {
    log.debug(`${tcpActive() + tcpSpliceActive()} TCP connections still open ${CHILD_DRAIN_MS} ms after the command exited`);
    loop.stop(status);
  });
  if (deadline < 0) return loop.stop(status);
  loop.onTurn(() => {
    if (done()) loop.stop(status);
  });
}

/**
 * Raises the soft limit on open files to the hard one, as upstream does: a
 * spliced connection takes six descriptors, `-t all` one per port.
 * @syscalls prlimit64
 */
function raiseFileLimit(): void {
  const rlim = new Uint8Array(RLIMIT.SIZE);
  if (getrlimit(RLIMIT_NOFILE, rlim) < 0) return;
  rlim.copyWithin(RLIMIT.CUR, RLIMIT.MAX, RLIMIT.MAX + 8);
  const r = setrlimit(RLIMIT_NOFILE, rlim);
  if (r < 0) log.debug(`can't raise the open file limit: ${strerror(-r)}`);
}

/** Returns false once `path` is gone; EACCES (an existing procfs entry) counts as present. */
function namespaceExists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EACCES";
  }
}

/** Logs the frame counters at debug level, for "where did my packets go" questions. */
export function logStats(ctx: Ctx): void {
  if (!log.debugEnabled) return;
  const s = ctx.stats;
  const drops = [...s.drops].map(([k, v]) => `${k} ${v}`).join(", ");
  log.debug(`frames in ${s.framesIn}, out ${s.framesOut}, dropped ${s.dropped()}${drops ? `: ${drops}` : ""}`);
}

function logContext(ctx: Ctx, ifname: string): void {
  if (ctx.ip4) {
    const i = ctx.ip4;
    log.info(`Template interface for namespace ${ifname}; IPv4: ${formatIp(i.addr)}/${i.prefixLen} via ${formatIp(i.gw)}`);
    if (i.dns.length) log.debug(`IPv4 DNS: ${i.dns.map(formatIp).join(", ")}`);
  }
  if (ctx.ip6) {
    const i = ctx.ip6;
    log.info(`IPv6: ${formatIp(i.addr)}/${i.prefixLen} via ${formatIp(i.gw)}, router ${formatIp(i.ourTapLl)}`);
  }
  log.debug(`MAC ${formatMac(ctx.ourMac)}, MTU ${ctx.mtu}`);
}
