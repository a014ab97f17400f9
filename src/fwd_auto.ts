// SPDX-License-Identifier: GPL-2.0-or-later
// fwd_auto.ts - automatic and `all` port forwarding: port scans and listener sync (passt fwd.c)
//
// Theory of operation
//
// Four forwarding tables come from the command line (conf.ts): -t and -u
// listen on the host and forward into the namespace (or guest); -T and -U
// listen inside the namespace and forward to the host's loopback. tcp.ts and
// udp.ts open the fixed rules of -t and -u themselves when they start. This
// module owns every other listener:
//
// - `all` rules (from `all`, from excludes alone, and from `auto` alone):
//   every port of the rule that is not excluded and not ephemeral on the
//   host (/proc/sys/net/ipv4/ip_local_port_range, read once; RFC 6335's
//   49152-65535 if unreadable). Best effort: a port that cannot be bound is
//   skipped, and only a rule with no port bound at all is reported.
// - `auto` rules: of those ports, only the ones bound on the target side,
//   rescanned every FWD_SCAN_INTERVAL_MS (1 s, a timerfd in the loop):
//   listeners appear when a port starts being bound there and go away
//   when it stops.
// - every rule of -T and -U: sockets created inside the namespace by the
//   agent (nsSocket), bound to the namespace's 127.0.0.1 and ::1.
// - for -u rules that may be spliced, UDP listeners on the host's 127.0.0.1
//   and ::1 as well (proto/udp_splice.ts), for fixed rules too.
//
// A scan looks at the namespace for -t/-u and at the host for -T/-U. TCP
// listeners come from two NETLINK_SOCK_DIAG dumps (AF_INET, then AF_INET6)
// asking for state LISTEN only (TcpListenDiag); UDP sockets come from
// /proc/net/{udp,udp6}, read from the start each time (pread). The
// namespace's diag socket and tables are made there by the agent (nsSocket,
// nsOpen), so that they keep showing that namespace. TCP ports in state
// LISTEN and UDP ports in state 07 (bound, unconnected) count, whatever the
// address, and a port bound on IPv6 counts for IPv4 too: IPv6 sockets
// usually serve both. As upstream, UDP also forwards the ports bound by TCP
// listeners (iperf3 and friends use a TCP control port next to the same UDP
// port).
//
// Why not /proc/net/tcp{,6} as upstream: reading them walks the kernel's
// whole established hash for every read() (and once more for the read that
// finds the end), whatever the number of sockets: 2.7 ms per read with
// 262144 buckets on a 24 GiB machine, so 20 ms of CPU per second for the
// eight reads of a scan of both sides. A dump that asks for LISTEN alone
// walks only the listening hash: the two dumps of a side take about 50 us
// from here, against 10 ms for the two tables. The tables stay open as the
// fallback: if the diag socket cannot be made (no sock_diag) or a dump
// fails (no inet_diag or tcp_diag: -ENOENT), that side reads
// /proc/net/tcp{,6} from then on, which is logged once at debug level. Both
// sources list the same sockets: the listeners of the socket's network
// namespace, each family on its own (a dual-stack listener shows in
// AF_INET6 / tcp6 only).
//
// Our own listeners must not be forwarded back: a scan of the namespace
// leaves out every port we listen on in the namespace (-T/-U), and a scan of
// the host every port we listen on on the host (-t/-u), per protocol. One
// difference from upstream, on purpose: the TCP ports lent to the UDP map are
// taken after that exclusion and the UDP exclusion applies to the union, so a
// -T listener of ours never creates a -u listener.
//
// As upstream, a scanned rule listens on port P when port P itself is bound
// on the target side (the listening port number, also for rules that
// translate ports).
//
// Port sets are PortSets (fwd_ports.ts), never 65536-entry maps walked end
// to end: a scan clears them in O(1), the scanners add what they find, our
// own ports are taken out by walking the (few) ports found, and each rule
// keeps the set of ports it has listeners on (`open`) and the set whose
// failure it has logged (`warned`). The sync of an `auto` rule then visits,
// in ascending order, the scanned ports in its range plus those two sets:
// any other port of the range has no listener and no warning, so the full
// walk would change nothing there. Before PortSets, a scan walked 65536
// ports a dozen times, and at start-up (cold, JavaScriptCore's interpreter)
// that took 19-28 ms of fwdInit() for sets of a few ports.
//
// Limits: one scan does work in the size of the tables (UDP), of the
// listener dumps (TCP) and of the port sets involved; the sync of a fixed
// range or `all` rule (at start) walks its whole range, which is inherent.

import { readFileSync } from "node:fs";
import {
  AF_INET, AF_INET6, AF_NETLINK, close, errnoName, Errno, IPPROTO_TCP, MSG_DONTWAIT, MSG_TRUNC, NETLINK_SOCK_DIAG,
  NLMSGHDR, O_CLOEXEC, O_RDONLY, open, pread, recv, send, SOCK_CLOEXEC, SOCK_RAW, socket, TCP_LISTEN,
} from "../syscalls/mod.ts";
import { type NsAgent, nsOpen, nsSocket } from "../syscalls/ns.ts";
import type { Ctx } from "./ctx.ts";
import type { FwdTable, PortRule } from "./conf.ts";
import { Pif } from "./flow/table.ts";
import { INANY_ANY4, INANY_ANY6, INANY_LOOPBACK4, INANY_LOOPBACK6, inanyFrom, inanyIsLoopback } from "./inany.ts";
import { log } from "./log.ts";
import { buildInetDiagDump, DiagStatus, INET_DIAG_DUMP_LEN, InetDiagReply } from "./netlink/diag.ts";
import { EpollType, type Loop } from "./loop/loop.ts";
import { timerPeriodic, timerRead } from "./loop/timer.ts";
import { PORT_COUNT, PortSet } from "./fwd_ports.ts";
import { listeners as tcpListeners, tcpListenCloseSlot, tcpListenOpen } from "./proto/tcp_listen.ts";
import { udpListenClose, udpListenOpen } from "./proto/udp.ts";
import { udpSpliceEnabled, udpSpliceListen, udpSpliceUnlisten } from "./proto/udp_splice.ts";

export { PORT_COUNT };
/** Interval between two scans (upstream FWD_PORT_SCAN_INTERVAL). */
export const FWD_SCAN_INTERVAL_MS = 1000;
/** /proc/net/tcp state of a listening socket (TCP_LISTEN in the kernel's tcp_states.h). */
export const PROC_TCP_LISTEN = 0x0a;
/** /proc/net/udp state of a bound, unconnected socket (TCP_CLOSE, 7). */
export const PROC_UDP_BOUND = 0x07;
/** Ephemeral ports when ip_local_port_range cannot be read (RFC 6335 section 6). */
export const EPHEMERAL_DEFAULT = { first: 49152, last: 65535 } as const;
/** Set in the handle of a UDP listener of udp_splice.ts (others are udp.ts's). */
const UDP_SPLICE_HANDLE = 1 << 29;

// procfs parsing -------------------------------------------------------------------

const NL = 0x0a;
const SPACE = 0x20;
const COLON = 0x3a;

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Returns the local port of the /proc/net/{tcp,udp}[6] line text[start..end)
 * if its state is `state`, 0 for a line in another state, -1 for a line
 * that does not parse. The line looks like
 * "   7: 0100007F:1F90 00000000:0000 0A 00000000:00000000 ...", with 32 hex
 * digits per address in the IPv6 tables.
 */
function lineLocalPort(t: Uint8Array, start: number, end: number, state: number): number {
  let i = start;
  while (i < end && t[i] === SPACE) i++;
  const slStart = i;
  while (i < end && t[i]! >= 0x30 && t[i]! <= 0x39) i++;
  if (i === slStart || t[i] !== COLON) return -1;
  i++;
  while (i < end && t[i] === SPACE) i++;
  const addrStart = i;
  while (i < end && hexDigit(t[i]!) >= 0) i++;
  const addrLen = i - addrStart;
  if ((addrLen !== 8 && addrLen !== 32) || t[i] !== COLON) return -1;
  i++;
  let port = 0;
  for (let k = 0; k < 4; k++, i++) {
    const d = i < end ? hexDigit(t[i]!) : -1;
    if (d < 0) return -1;
    port = (port << 4) | d;
  }
  if (t[i] !== SPACE) return -1;
  while (i < end && t[i] === SPACE) i++;
  const remStart = i;
  while (i < end && t[i] !== SPACE) i++;
  if (i === remStart) return -1;
  while (i < end && t[i] === SPACE) i++;
  const hi = i < end ? hexDigit(t[i]!) : -1;
  const lo = i + 1 < end ? hexDigit(t[i + 1]!) : -1;
  if (hi < 0 || lo < 0) return -1;
  if (i + 2 < end && t[i + 2] !== SPACE) return -1;
  return ((hi << 4) | lo) === state ? port : 0;
}

/**
 * Adds to `out` the local port of every socket in state `state`
 * (PROC_TCP_LISTEN, PROC_UDP_BOUND) listed in `text`, the contents of a
 * /proc/net/tcp, tcp6, udp or udp6 file (header line first), and returns how
 * many lines matched. Lines that do not parse and port 0 are skipped. Never
 * throws; O(text length).
 * @example procNetScan(bytesOf("  sl  local_address ...\n   0: 00000000:0016 00000000:0000 0A ...\n"), PROC_TCP_LISTEN, set) // 1, set.has(22)
 */
export function procNetScan(text: Uint8Array, state: number, out: PortSet): number {
  const n = text.byteLength;
  let i = 0;
  while (i < n && text[i] !== NL) i++; // the header
  let found = 0;
  while (i < n) {
    const start = ++i;
    while (i < n && text[i] !== NL) i++;
    if (i === start) continue;
    const port = lineLocalPort(text, start, i, state);
    if (port > 0) {
      out.add(port);
      found++;
    }
  }
  return found;
}

/**
 * Returns the range in the text of /proc/sys/net/ipv4/ip_local_port_range
 * ("32768\t60999\n"), or null if it does not read as two ports, first <= last.
 */
export function parsePortRange(text: string): { first: number; last: number } | null {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  if (!m) return null;
  const first = Number(m[1]), last = Number(m[2]);
  if (first > last || last >= PORT_COUNT) return null;
  return { first, last };
}

/** A /proc/net table kept open and reread from its start for each scan. */
export class ProcNetFile {
  private buf = new Uint8Array(64 * 1024);

  /** `fd` is an open, readable descriptor of the table; `label` names it in logs. */
  constructor(readonly fd: number, readonly label: string) {}

  /**
   * Returns the whole table as it is now (a view of an internal buffer, valid
   * until the next call), or null if reading failed (logged once per call).
   * @syscalls pread64
   */
  read(): Uint8Array | null {
    let off = 0;
    for (;;) {
      if (off === this.buf.byteLength) {
        const bigger = new Uint8Array(this.buf.byteLength * 2);
        bigger.set(this.buf);
        this.buf = bigger;
      }
      const r = pread(this.fd, this.buf.subarray(off), this.buf.byteLength - off, off);
      if (r === -Errno.EINTR) continue;
      if (r < 0) {
        log.debug(`fwd: reading ${this.label}: ${errnoName(r)}`);
        return null;
      }
      if (r === 0) return this.buf.subarray(0, off);
      off += r;
    }
  }

  /** Adds the ports of sockets in `state` to `out` (see procNetScan()); returns how many. */
  scan(state: number, out: PortSet): number {
    const text = this.read();
    return text === null ? 0 : procNetScan(text, state, out);
  }
}

// TCP listeners through sock_diag ---------------------------------------------------

/**
 * Receive buffer of the listener dumps, shared (scans run one at a time). The kernel fills a
 * dump datagram up to the size of the reads it has seen, at most 32 KiB; 16 KiB is the size
 * netlink(7) users are told to offer, and MSG_TRUNC tells us if a datagram was larger.
 */
const diagRx = new Uint8Array(16 * 1024);

/** Returns a NETLINK_SOCK_DIAG socket in our own network namespace, or -errno. @syscalls socket */
export function diagOpen(): number {
  return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
}

/**
 * The TCP listeners of one network namespace, read with two inet_diag dumps (IPv4, then IPv6)
 * of sockets in state LISTEN. The requests and the reply walker are built once: a scan
 * allocates nothing.
 */
export class TcpListenDiag {
  private readonly req4 = new Uint8Array(INET_DIAG_DUMP_LEN);
  private readonly req6 = new Uint8Array(INET_DIAG_DUMP_LEN);
  private readonly req4View = new DataView(this.req4.buffer);
  private readonly req6View = new DataView(this.req6.buffer);
  private readonly reply = new InetDiagReply();
  private seq = 0;

  /**
   * `fd` is a NETLINK_SOCK_DIAG socket of the namespace to scan (diagOpen(), or nsSocket() for
   * the namespace's); the caller closes it.
   */
  constructor(readonly fd: number) {
    buildInetDiagDump(this.req4, 0, { family: AF_INET, protocol: IPPROTO_TCP, states: 1 << TCP_LISTEN });
    buildInetDiagDump(this.req6, 0, { family: AF_INET6, protocol: IPPROTO_TCP, states: 1 << TCP_LISTEN });
  }

  /**
   * Adds to `out` the local port of every TCP socket in LISTEN, IPv4 and IPv6, and returns
   * how many sockets it saw, or -errno if a dump failed: then `out` may hold part of the
   * answer, and must be cleared.
   * @syscalls sendto recvfrom
   */
  scan(out: PortSet): number {
    const n4 = this.dump(this.req4, this.req4View, AF_INET, out);
    if (n4 < 0) return n4;
    const n6 = this.dump(this.req6, this.req6View, AF_INET6, out);
    return n6 < 0 ? n6 : n4 + n6;
  }

  /** Runs one dump; returns the number of listeners marked, or -errno. */
  private dump(req: Uint8Array, reqView: DataView, family: number, out: PortSet): number {
    this.seq = (this.seq + 1) >>> 0;
    reqView.setUint32(NLMSGHDR.SEQ, this.seq, true);
    let n = send(this.fd, req, req.length, 0);
    if (n < 0) return n;
    if (n !== req.length) return -Errno.EMSGSIZE;
    const reply = this.reply;
    reply.begin(this.seq, family, 1 << TCP_LISTEN);
    for (;;) {
      // The kernel makes each part of a dump when the previous one is read, before recv()
      // returns: MSG_DONTWAIT only guards the loop against a kernel that would not.
      n = recv(this.fd, diagRx, diagRx.length, MSG_DONTWAIT | MSG_TRUNC);
      if (n === -Errno.EINTR) continue;
      if (n < 0) return n;
      if (n > diagRx.length) return -Errno.EMSGSIZE;
      const status = reply.take(diagRx, n, out);
      if (status === DiagStatus.DONE) return reply.found;
      if (status < 0) return status;
    }
  }
}

/**
 * The TCP listeners of one side: from sock_diag dumps while they work; from /proc/net/tcp and
 * tcp6 if no diag socket could be made, or from the first failed dump on (a kernel that fails
 * one would fail the next ones too: no inet_diag or tcp_diag), which is logged once.
 */
export class TcpListenScan {
  /**
   * `diag` reads the side's listeners (null: none could be made), `tables` are its open
   * /proc/net/tcp and tcp6 (null where unreadable), `side` names it in logs. We own them all
   * from now on: close() closes them.
   */
  constructor(
    private diag: TcpListenDiag | null,
    readonly tables: readonly [ProcNetFile | null, ProcNetFile | null],
    readonly side: string,
  ) {}

  /** Whether scans still use the diag socket. */
  get usingDiag(): boolean {
    return this.diag !== null;
  }

  /**
   * Sets `out` to exactly the local ports of TCP sockets in LISTEN, IPv4 and IPv6, whatever
   * their address; returns how many sockets were seen.
   * @syscalls sendto recvfrom pread64 close
   */
  scan(out: PortSet): number {
    out.clear();
    const diag = this.diag;
    if (diag !== null) {
      const r = diag.scan(out);
      if (r >= 0) return r;
      log.debug(`fwd: ${this.side} TCP listener dump: ${errnoName(r)}; reading /proc/net/tcp and tcp6 instead`);
      close(diag.fd);
      this.diag = null;
      out.clear();
    }
    return (this.tables[0]?.scan(PROC_TCP_LISTEN, out) ?? 0) + (this.tables[1]?.scan(PROC_TCP_LISTEN, out) ?? 0);
  }

  /** Closes the diag socket and the tables. @syscalls close */
  close(): void {
    if (this.diag !== null) close(this.diag.fd);
    this.diag = null;
    for (const f of this.tables) if (f !== null) close(f.fd);
  }
}

// Listener sync --------------------------------------------------------------------

/** The listeners of one rule, one per (port, address). */
export interface RuleListeners {
  readonly rule: PortRule;
  readonly proto: "TCP" | "UDP";
  /** Pif.HOST (-t, -u) or Pif.SPLICE (-T, -U: inside the namespace). */
  readonly pif: number;
  /**
   * Listening addresses: 4/16 bytes or null (TCP, dual-stack wildcard); inany for UDP, where a
   * loopback address (and every -U address) is a listener of udp_splice.ts, others of udp.ts.
   */
  readonly addrs: readonly (Uint8Array | null)[];
  /** allowed[port - first] = 1 if the rule may forward that port (not excluded, not ephemeral for `all`). */
  readonly allowed: Uint8Array;
  /** Listener handle per ((port - first) * addrs.length + address index): TCP slot or UDP index; -1 for none. */
  readonly handles: Int32Array;
  /** Ports with at least one listener (a handle >= 0 in `handles`); kept by syncPort(). */
  readonly open: PortSet;
  /** Ports whose failure to listen was logged; a port leaves when it is no longer wanted. */
  readonly warned: PortSet;
  /** For logs, e.g. "-t 8000-8010". */
  readonly label: string;
}

/** How syncRule() opens and closes listeners: the sockets in fwdInit(), spies in tests. */
export interface ListenerIo {
  /** Returns the handle of a new listener for `port` of `rl` on address number `a`, or -errno. */
  open(rl: RuleListeners, port: number, a: number): number;
  /** Closes the listener of `rl` with handle `handle`. */
  close(rl: RuleListeners, handle: number): void;
}

/** Scan sets: each port bound on the side that table forwards to. */
const maps = {
  tcpNs: new PortSet(),
  udpNs: new PortSet(),
  tcpHost: new PortSet(),
  udpHost: new PortSet(),
};
/** Ports we listen on ourselves, per side and protocol (rebuilt before each scan). */
const ours = {
  tcpNs: new PortSet(),
  udpNs: new PortSet(),
  tcpHost: new PortSet(),
  udpHost: new PortSet(),
};
/** The ports syncRule() visits for one rule: scratch, refilled for each call. */
const visit = new PortSet();

/** Where the scan of one side looks. */
interface ScanSource {
  readonly tcp: TcpListenScan;
  /** The side's /proc/net/udp and udp6 (null where one could not be opened). */
  readonly udp: readonly (ProcNetFile | null)[];
}

interface FwdState {
  readonly ctx: Ctx;
  readonly loop: Loop;
  readonly agent: NsAgent | null;
  readonly io: ListenerIo;
  readonly tcpIn: RuleListeners[];
  readonly udpIn: RuleListeners[];
  readonly tcpOut: RuleListeners[];
  readonly udpOut: RuleListeners[];
  /** The namespace, for -t/-u auto; null without such rules. */
  readonly ns: ScanSource | null;
  /** The host, for -T/-U auto; null without such rules. */
  readonly host: ScanSource | null;
  /**
   * 1 at each port of a fixed -u rule, where udp.ts listens on the host: never forwarded back
   * by -U auto. Built once (fill(), per range) when the host is scanned, else null.
   */
  readonly udpFixedIn: Uint8Array | null;
  timerFd: number;
}

let state: FwdState | null = null;

const LOOPBACK4 = Uint8Array.of(127, 0, 0, 1);
const LOOPBACK6 = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);
const PROC_TABLES = ["/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"] as const;

/** Returns the host's ephemeral port range (ip_local_port_range), or RFC 6335's. */
function ephemeralRange(): { first: number; last: number } {
  let text = "";
  try {
    text = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8");
  } catch {
    log.warn("Unable to read /proc/sys/net/ipv4/ip_local_port_range");
  }
  const r = parsePortRange(text);
  if (r === null && text !== "") log.warn("Unable to parse /proc/sys/net/ipv4/ip_local_port_range");
  return r ?? EPHEMERAL_DEFAULT;
}

function ruleLabel(opt: string, rule: PortRule): string {
  const ports = rule.all ? (rule.auto ? "auto" : "all") : `${rule.first}-${rule.last}${rule.auto ? ",auto" : ""}`;
  return `${opt} ${ports}`;
}

/** Clears allowed[] over the part of [first, last] that falls in `rule`'s range. */
function disallow(allowed: Uint8Array, rule: PortRule, first: number, last: number): void {
  const from = Math.max(first, rule.first), to = Math.min(last, rule.last);
  if (from <= to) allowed.fill(0, from - rule.first, to - rule.first + 1);
}

/**
 * Returns the (empty) listener state of `rule` for table `opt` ("-t", "-u", "-T", "-U"):
 * `addrs` are the addresses to listen on, `ephemeral` the host's ephemeral ports, which an
 * `all` rule leaves alone.
 */
export function ruleListeners(
  opt: string, proto: "TCP" | "UDP", pif: number, rule: PortRule,
  addrs: readonly (Uint8Array | null)[], ephemeral: { first: number; last: number },
): RuleListeners {
  const span = rule.last - rule.first + 1;
  const allowed = new Uint8Array(span).fill(1);
  for (const x of rule.exclude) disallow(allowed, rule, x.first, x.last);
  if (rule.all) disallow(allowed, rule, ephemeral.first, ephemeral.last);
  return {
    rule, proto, pif, addrs, allowed,
    handles: new Int32Array(span * addrs.length).fill(-1),
    open: new PortSet(rule.first, rule.last),
    warned: new PortSet(rule.first, rule.last),
    label: ruleLabel(opt, rule),
  };
}

/** Returns a fresh inany copy of `addr` (4 or 16 bytes). */
function inanyOf(addr: Uint8Array): Uint8Array {
  return inanyFrom(addr, new Uint8Array(16));
}

/**
 * Returns the handle of a new listener for `port` of `rl` on address number
 * `a`, or -errno.  @syscalls socket setsockopt bind listen epoll_ctl close
 */
function openOne(s: FwdState, rl: RuleListeners, port: number, a: number): number {
  const rule = rl.rule;
  const addr = rl.addrs[a] ?? null;
  if (rl.proto === "TCP") {
    const agent = s.agent;
    return tcpListenOpen(s.ctx, s.loop, {
      pif: rl.pif, addr, ifname: rule.ifname, port,
      toPort: rule.toFirst + (port - rule.first), toAddr: rule.toAddr,
      ...(rl.pif === Pif.SPLICE && agent !== null
        ? { makeSocket: (d: number, t: number, p: number) => nsSocket(agent, d, t, p) }
        : {}),
    });
  }
  if (addr === null) return -Errno.EINVAL;
  if (rl.pif === Pif.SPLICE || inanyIsLoopback(addr)) {
    const id = udpSpliceListen(rl.pif, addr, port, rule.toFirst + (port - rule.first));
    return id < 0 ? id : id | UDP_SPLICE_HANDLE;
  }
  return udpListenOpen(s.ctx, s.loop, rule, addr, port);
}

function closeOne(s: FwdState, rl: RuleListeners, handle: number): void {
  if (rl.proto === "TCP") tcpListenCloseSlot(s.loop, handle);
  else if (handle & UDP_SPLICE_HANDLE) udpSpliceUnlisten(handle & ~UDP_SPLICE_HANDLE);
  else udpListenClose(s.loop, handle);
}

/**
 * Opens or closes the listeners of `rl` on `port` so that it listens there on every address
 * if `want` (those that fail are logged: warn the first time unless `quiet`, then debug), on
 * none otherwise; keeps `rl.open` and `rl.warned`. `scanned`: the rule follows a scan, and
 * logs each listener it opens.
 */
function syncPort(io: ListenerIo, rl: RuleListeners, port: number, want: boolean, scanned: boolean, quiet: boolean): void {
  const { addrs, handles, warned } = rl;
  const na = addrs.length;
  const base = (port - rl.rule.first) * na;
  let any = false;
  for (let a = 0; a < na; a++) {
    const h = handles[base + a]!;
    if (!want) {
      if (h >= 0) {
        io.close(rl, h);
        handles[base + a] = -1;
        if (log.debugEnabled) log.debug(`${rl.label}: ${rl.proto} port ${port} no longer forwarded`);
      }
      continue;
    }
    if (h >= 0) {
      any = true;
      continue;
    }
    const r = io.open(rl, port, a);
    if (r < 0) {
      if (quiet || warned.has(port)) log.debug(`${rl.label}: can't listen on ${rl.proto} port ${port}: ${errnoName(r)}`);
      else log.warn(`${rl.label}: can't listen on ${rl.proto} port ${port}: ${errnoName(r)}`);
      warned.add(port);
      continue;
    }
    handles[base + a] = r;
    any = true;
    if (scanned && log.debugEnabled) log.debug(`${rl.label}: ${rl.proto} port ${port} now forwarded`);
  }
  if (!want) warned.delete(port);
  if (any) rl.open.add(port);
  else rl.open.delete(port);
}

/**
 * Opens and closes listeners of `rl` so that it listens exactly on its allowed ports that are
 * in `map` (every allowed port if `map` is null), in ascending port order. Returns how many
 * ports have at least one listener afterwards.
 *
 * With a map, only the ports of the map in the rule's range and those in `rl.open` or
 * `rl.warned` are visited: every other port of the range has no listener to close and no
 * warning to forget, and is not wanted, so visiting it would change nothing. O(k log k) for
 * the k ports visited. Without a map, the whole range: O(last - first).
 */
export function syncRule(io: ListenerIo, rl: RuleListeners, map: PortSet | null, quiet: boolean): number {
  const { rule, allowed } = rl;
  if (map === null) {
    for (let port = rule.first; port <= rule.last; port++) syncPort(io, rl, port, allowed[port - rule.first] === 1, false, quiet);
    return rl.open.count;
  }
  visit.clear();
  for (let i = 0; i < map.count; i++) {
    const port = map.list[i]!;
    if (port >= rule.first && port <= rule.last) visit.add(port);
  }
  visit.addAll(rl.open);
  visit.addAll(rl.warned);
  visit.sort();
  for (let i = 0; i < visit.count; i++) {
    const port = visit.list[i]!;
    syncPort(io, rl, port, allowed[port - rule.first] === 1 && map.has(port), true, quiet);
  }
  return rl.open.count;
}

/** Adds to `out` the ports `rls` currently listen on. */
function markOurs(rls: readonly RuleListeners[], out: PortSet): void {
  for (const rl of rls) out.addAll(rl.open);
}

/**
 * Sets `tcp` and `udp` to what is bound on one side, minus our own listeners there (`oursTcp`,
 * `oursUdp`, and 1 in `fixedUdp` for the ports of fixed -u rules on the host).
 */
function scanSide(
  src: ScanSource, tcp: PortSet, udp: PortSet, oursTcp: PortSet, oursUdp: PortSet, fixedUdp: Uint8Array | null,
): void {
  src.tcp.scan(tcp);
  tcp.deleteAll(oursTcp);
  udp.clear();
  src.udp[0]?.scan(PROC_UDP_BOUND, udp);
  src.udp[1]?.scan(PROC_UDP_BOUND, udp);
  udp.addAll(tcp);
  udp.deleteAll(oursUdp);
  if (fixedUdp !== null) udp.deleteMarked(fixedUdp);
}

/** Rebuilds `ours`: every port we listen on, per side and protocol (fixed -u rules: s.udpFixedIn). */
function collectOurs(s: FwdState): void {
  for (const set of Object.values(ours)) set.clear();
  for (let i = 0; i < tcpListeners.count; i++) {
    if (tcpListeners.fd[i]! < 0) continue;
    const set = tcpListeners.pif[i] === Pif.SPLICE ? ours.tcpNs : ours.tcpHost;
    set.add(tcpListeners.port[i]!);
  }
  markOurs(s.udpIn, ours.udpHost);
  markOurs(s.udpOut, ours.udpNs);
}

/** Scans what is bound where and brings the listeners of `auto` rules in line. */
function scanAndSync(s: FwdState): void {
  collectOurs(s);
  if (s.ns !== null) scanSide(s.ns, maps.tcpNs, maps.udpNs, ours.tcpNs, ours.udpNs, null);
  if (s.host !== null) scanSide(s.host, maps.tcpHost, maps.udpHost, ours.tcpHost, ours.udpHost, s.udpFixedIn);
  for (const rl of s.tcpIn) if (rl.rule.auto) syncRule(s.io, rl, maps.tcpNs, false);
  for (const rl of s.tcpOut) if (rl.rule.auto) syncRule(s.io, rl, maps.tcpHost, false);
  for (const rl of s.udpIn) if (rl.rule.auto) syncRule(s.io, rl, maps.udpNs, false);
  for (const rl of s.udpOut) if (rl.rule.auto) syncRule(s.io, rl, maps.udpHost, false);
}

/**
 * Opens the diag socket and the tables of one side: through the agent for the namespace, else
 * our own. @syscalls socket openat
 */
function openSource(agent: NsAgent | null, side: string): ScanSource {
  const [tcp, tcp6, udp, udp6] = PROC_TABLES.map((path) => {
    const fd = agent !== null ? nsOpen(agent, path) : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      log.debug(`fwd: can't open ${side} ${path}: ${errnoName(fd)}`);
      return null;
    }
    return new ProcNetFile(fd, `${side} ${path}`);
  });
  const fd = agent !== null ? nsSocket(agent, AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG) : diagOpen();
  if (fd < 0) log.debug(`fwd: no ${side} sock_diag socket (${errnoName(fd)}); reading /proc/net/tcp and tcp6 instead`);
  const diag = fd < 0 ? null : new TcpListenDiag(fd);
  return { tcp: new TcpListenScan(diag, [tcp ?? null, tcp6 ?? null], side), udp: [udp ?? null, udp6 ?? null] };
}

/** What fwdInit() set up, for logs and tests. */
export interface FwdInit {
  /** Whether the periodic scan runs (some table has an `auto` rule). */
  readonly scanning: boolean;
  /** Ports with a listener after the first sync, per table. */
  readonly bound: { readonly tcpIn: number; readonly udpIn: number; readonly tcpOut: number; readonly udpOut: number };
}

/**
 * Opens the listeners of the `all` and `auto` rules of -t and -u and of every
 * -T rule, and starts the periodic scan if a table has an `auto` rule.
 * `agent` is pasta's namespace agent (null for passt: no -T/-U, no `auto`).
 * Returns what was set up; dies only on bugs.
 * @syscalls openat pread64 socket sendto recvfrom setsockopt bind listen epoll_ctl timerfd_create timerfd_settime close
 */
export function fwdInit(ctx: Ctx, loop: Loop, agent: NsAgent | null): FwdInit {
  const conf = ctx.conf;
  const eph = ephemeralRange();
  const tcpHostAddrs = (r: PortRule) => [r.bindAddr];
  const udpHostAddrs = (r: PortRule): Uint8Array[] =>
    r.bindAddr !== null
      ? [inanyOf(r.bindAddr)]
      : [...(ctx.ip4 !== null ? [INANY_ANY4] : []), ...(ctx.ip6 !== null ? [INANY_ANY6] : [])];
  const nsLoopbacks = [...(ctx.ip4 !== null ? [LOOPBACK4] : []), ...(ctx.ip6 !== null ? [LOOPBACK6] : [])];
  const loopbacksAny = [...(ctx.ip4 !== null ? [INANY_LOOPBACK4] : []), ...(ctx.ip6 !== null ? [INANY_LOOPBACK6] : [])];
  const dynamic = (t: FwdTable) => t.rules.filter((r) => r.auto || r.all);
  const udpSplice = agent !== null && udpSpliceEnabled();
  // -u: udp.ts listens on the wildcard of fixed rules itself; we add the wildcard of `auto`
  // and `all` rules and, when loopback datagrams may be spliced, the loopback addresses.
  const udpInAddrs = (r: PortRule): Uint8Array[] => [
    ...(r.auto || r.all ? udpHostAddrs(r) : []),
    ...(udpSplice && !conf.noSplice && r.bindAddr === null && r.toAddr === null ? loopbacksAny : []),
  ];

  const tcpIn = conf.noTcp ? [] : dynamic(conf.fwd.tcpIn).map((r) => ruleListeners("-t", "TCP", Pif.HOST, r, tcpHostAddrs(r), eph));
  const udpIn = conf.noUdp
    ? []
    : conf.fwd.udpIn.rules.filter((r) => udpInAddrs(r).length > 0).map((r) => ruleListeners("-u", "UDP", Pif.HOST, r, udpInAddrs(r), eph));
  const tcpOut = conf.noTcp || agent === null ? [] : conf.fwd.tcpOut.rules.map((r) => ruleListeners("-T", "TCP", Pif.SPLICE, r, nsLoopbacks, eph));
  const udpOut = conf.noUdp || !udpSplice ? [] : conf.fwd.udpOut.rules.map((r) => ruleListeners("-U", "UDP", Pif.SPLICE, r, loopbacksAny, eph));

  const nsAuto = agent !== null && [...tcpIn, ...udpIn].some((rl) => rl.rule.auto);
  const hostAuto = [...tcpOut, ...udpOut].some((rl) => rl.rule.auto);
  let udpFixedIn: Uint8Array | null = null;
  if (hostAuto) {
    udpFixedIn = new Uint8Array(PORT_COUNT);
    for (const r of conf.fwd.udpIn.rules) if (!r.auto && !r.all) udpFixedIn.fill(1, r.first, r.last + 1);
  }
  const io: ListenerIo = {
    open: (rl, port, a) => openOne(s, rl, port, a),
    close: (rl, handle) => closeOne(s, rl, handle),
  };
  const s: FwdState = {
    ctx, loop, agent, io, tcpIn, udpIn, tcpOut, udpOut,
    ns: nsAuto ? openSource(agent, "namespace") : null,
    host: hostAuto ? openSource(null, "host") : null,
    udpFixedIn,
    timerFd: -1,
  };
  state = s;

  // Fixed ports first (`all`, fixed -T/-U), then what the first scan finds.
  for (const rl of [...tcpIn, ...udpIn, ...tcpOut, ...udpOut]) {
    if (rl.rule.auto) continue;
    // A fixed -u rule has only our loopback listeners here; udp.ts reports its own.
    const extra = rl.proto === "UDP" && rl.pif === Pif.HOST && !rl.rule.all;
    const n = syncRule(io, rl, null, rl.rule.all || extra);
    if (n === 0 && !extra) log.warn(`${rl.label}: all listens failed`);
    else if (rl.rule.all) log.info(`${rl.label}: listening on ${n} ${rl.proto} ports`);
  }

  const scanning = nsAuto || hostAuto;
  if (scanning) {
    scanAndSync(s);
    loop.on(EpollType.FWD_SCAN, (_i, _e, fd) => {
      timerRead(fd);
      scanAndSync(s);
    });
    s.timerFd = timerPeriodic(loop, EpollType.FWD_SCAN, 0, FWD_SCAN_INTERVAL_MS);
    if (s.timerFd < 0) log.warn(`fwd: can't start the port scan timer: ${errnoName(s.timerFd)}`);
  }
  const count = (rls: RuleListeners[]) => rls.reduce((n, rl) => n + rl.open.count, 0);
  return {
    scanning,
    bound: { tcpIn: count(tcpIn), udpIn: count(udpIn), tcpOut: count(tcpOut), udpOut: count(udpOut) },
  };
}

/** Runs one scan and sync now (tests; the timer does it every second). */
export function fwdScanNow(): void {
  if (state !== null) scanAndSync(state);
}

/** Closes every listener, table and timer fwdInit() opened. @syscalls epoll_ctl close */
export function fwdClose(): void {
  const s = state;
  if (s === null) return;
  state = null;
  for (const rl of [...s.tcpIn, ...s.udpIn, ...s.tcpOut, ...s.udpOut]) {
    const na = rl.addrs.length;
    for (let i = 0; i < rl.open.count; i++) {
      const base = (rl.open.list[i]! - rl.rule.first) * na;
      for (let a = base; a < base + na; a++) {
        const h = rl.handles[a]!;
        if (h >= 0) closeOne(s, rl, h);
        rl.handles[a] = -1;
      }
    }
    rl.open.clear();
  }
  for (const src of [s.ns, s.host]) {
    if (src === null) continue;
    src.tcp.close();
    for (const f of src.udp) if (f !== null) close(f.fd);
  }
  if (s.timerFd >= 0) {
    s.loop.del(s.timerFd);
    close(s.timerFd);
  }
}
