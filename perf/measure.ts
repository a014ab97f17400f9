// SPDX-License-Identifier: GPL-2.0-or-later
// measure.ts - one transfer or one latency run through a Session, with the forwarder's CPU time
//
// Throughput comes from iperf3's JSON (`.end.sum_received`, what actually arrived), latency from
// perf/tcp_rr.c. Around every run we read the forwarder's utime + stime from /proc (its whole
// process tree: our pasta forks a helper), so CPU seconds per GB moved need no separate run.

import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { Topology } from "../tests/harness/netns.ts";
import { childrenOf, PORT, type Session } from "./session.ts";

/** Clock ticks per second of /proc/PID/stat times (sysconf(_SC_CLK_TCK); 100 on Linux). */
const CLK_TCK = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

/** Returns CPU seconds (user + system) used so far by `pid` and its live descendants. */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  const seen = new Set<number>();
  const walk = (p: number) => {
    if (seen.has(p)) return;
    seen.add(p);
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      // Fields after the parenthesised comm, which may itself contain spaces: state is field 3,
      // utime 14, stime 15 (proc(5)); they cover every thread of the process.
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      return;
    }
    for (const c of childrenOf(p)) walk(c);
  };
  walk(pid);
  return ticks / CLK_TCK;
}

/** Resident set sizes of one process, in bytes (VmRSS now, VmHWM peak), or null if it is gone. */
export function rss(pid: number): { rssBytes: number; peakBytes: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
    return { rssBytes: kib("VmRSS"), peakBytes: kib("VmHWM") };
  } catch {
    return null;
  }
}

/** Memory of one process from /proc/PID/status, in KiB: VmRSS, VmHWM and VmRSS's anonymous and file parts. */
export interface MemStatus {
  rssKiB: number;
  hwmKiB: number;
  anonKiB: number;
  fileKiB: number;
}

/** Returns the memory figures of `pid` (MemStatus), or null if it is gone. */
export function memStatus(pid: number): MemStatus | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return null;
  }
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssKiB: kib("VmRSS"), hwmKiB: kib("VmHWM"), anonKiB: kib("RssAnon"), fileKiB: kib("RssFile") };
}

/**
 * Returns how many descriptors `pid` holds, and how many of them are sockets, or null if it is
 * gone. For a pasta, the sockets above its idle count are its open flows' host sockets.
 */
export function fdCounts(pid: number): { fds: number; sockets: number } | null {
  let names: string[];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return null;
  }
  let sockets = 0;
  for (const n of names) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${n}`).startsWith("socket:")) sockets++;
    } catch {}
  }
  return { fds: names.length, sockets };
}

/** Which way data flows and over which path. */
export interface FlowSpec {
  /** "tap": namespace client to the gateway address; "fwd": host client to the forwarded port. */
  path: "tap" | "fwd";
  /** "n2h": namespace to host; "h2n": host to namespace. */
  dir: "n2h" | "h2n";
  /** IPv6 gateway instead of IPv4 (tap path only). */
  v6?: boolean;
  /** UDP at this target rate (iperf3 -b), datagrams of UDP_LEN bytes; TCP if absent. */
  udpBitrate?: string;
}

/** Size of each UDP datagram's payload (iperf3 -l): fits a 1500-byte MTU. */
export const UDP_LEN = 1400;

/** Outcome of one iperf3 run. */
export interface TransferResult {
  /** Received rate, bit/s. */
  bitsPerSecond: number;
  /** Bytes received. */
  bytes: number;
  /** UDP only: datagrams lost, percent. */
  lossPercent: number | null;
  /** TCP only: segments the sender retransmitted (iperf3 reports it for the sending side it sees). */
  retransmits: number | null;
  /** CPU seconds of the forwarder during the run. */
  cpuSeconds: number;
}

/**
 * Runs iperf3 for a time or a byte count (`-n`, e.g. "512M") in the direction and over the path
 * `spec` gives and returns what arrived; throws with iperf3's error if it failed.
 *
 * The client always runs at the side that initiates (namespace for "tap", host for "fwd"); the
 * other direction is iperf3 -R, so each path is one connection whichever way data flows.
 */
export async function transfer(
  topo: Topology,
  s: Session,
  spec: FlowSpec,
  amount: { seconds: number } | { bytes: string },
): Promise<TransferResult> {
  const common = "seconds" in amount ? ["-t", String(amount.seconds), "-J"] : ["-n", amount.bytes, "-J"];
  const seconds = "seconds" in amount ? amount.seconds : 60;
  if (spec.udpBitrate) common.push("-u", "-b", spec.udpBitrate, "-l", String(UDP_LEN));
  let argv: string[];
  if (spec.path === "tap") {
    const reverse = spec.dir === "h2n" ? ["-R"] : [];
    argv = s.enter(["iperf3", "-c", spec.v6 ? s.gw6 : s.gw4, "-p", String(PORT.hostIperf), ...common, ...reverse]);
  } else {
    const reverse = spec.dir === "n2h" ? ["-R"] : [];
    argv = ["iperf3", "-c", "127.0.0.1", "-p", String(PORT.nsIperf), ...common, ...reverse];
  }
  const before = cpuSeconds(s.pid);
  const r = await topo.run(argv, { timeoutMs: (seconds + 20) * 1000 });
  const cpu = cpuSeconds(s.pid) - before;
  let j: IperfJson;
  try {
    j = JSON.parse(r.stdout) as IperfJson;
  } catch {
    throw new Error(`iperf3 exited ${r.code} without JSON: ${r.stderr.trim() || r.stdout.slice(0, 200)}`);
  }
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  const rx = j.end?.sum_received;
  if (!rx || typeof rx.bits_per_second !== "number") throw new Error("iperf3: no end.sum_received in its JSON");
  const lossPercent = spec.udpBitrate ? (rx.lost_percent ?? j.end?.sum?.lost_percent ?? null) : null;
  const retransmits = spec.udpBitrate ? null : (j.end?.sum_sent?.retransmits ?? null);
  return { bitsPerSecond: rx.bits_per_second, bytes: rx.bytes ?? 0, lossPercent, retransmits, cpuSeconds: cpu };
}

/** The part of iperf3's -J output we read. */
interface IperfJson {
  error?: string;
  end?: {
    sum_received?: IperfSum;
    sum_sent?: IperfSum;
    sum?: IperfSum;
  };
}

interface IperfSum {
  bytes?: number;
  bits_per_second?: number;
  lost_percent?: number;
  retransmits?: number;
}

/**
 * Runs tcp_rr for `seconds` (1-byte request, 1-byte response, TCP_NODELAY) and returns
 * transactions per second: over the tap (namespace client to the host's server through the
 * gateway) or the forwarded port (host client to the namespace's server).
 */
export async function requestResponse(topo: Topology, s: Session, path: "tap" | "fwd", rr: string, seconds: number): Promise<number> {
  const argv =
    path === "tap"
      ? s.enter([rr, "client", s.gw4, String(PORT.hostRr), String(seconds)])
      : [rr, "client", "127.0.0.1", String(PORT.nsRr), String(seconds)];
  const r = await topo.run(argv, { timeoutMs: (seconds + 20) * 1000 });
  if (r.code !== 0) throw new Error(`tcp_rr exited ${r.code}: ${r.stderr.trim()}`);
  const j = JSON.parse(r.stdout) as { transactions: number; seconds: number };
  return j.transactions / j.seconds;
}

/**
 * Times `argv` (run in the topology as nobody) `runs` times, interleaving the binaries so that
 * drift in machine load hits all alike; returns wall-clock milliseconds per binary. One untimed
 * warm-up run each first. A failed run throws.
 */
export async function startupTimes(topo: Topology, bins: string[], argvTail: string[], runs: number): Promise<number[][]> {
  const script = `
import json, subprocess, sys, time
bins = json.loads(sys.argv[1]); tail = json.loads(sys.argv[2]); runs = int(sys.argv[3])
out = [[] for _ in bins]
def once(b):
    t = time.perf_counter()
    r = subprocess.run([b] + tail, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = (time.perf_counter() - t) * 1000
    if r.returncode != 0:
        sys.exit(f"{b} exited {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
    return dt
for b in bins:
    once(b)
for _ in range(runs):
    for i, b in enumerate(bins):
        out[i].append(once(b))
print(json.dumps(out))
`;
  const r = await topo.run(["python3", "-c", script, JSON.stringify(bins), JSON.stringify(argvTail), String(runs)], {
    timeoutMs: 120_000,
  });
  if (r.code !== 0) throw new Error(`start-up timing failed: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as number[][];
}
