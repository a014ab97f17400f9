// SPDX-License-Identifier: GPL-2.0-or-later
// profile.ts - where a pasta spends its time on the tap or splice TCP path: syscalls per MB, frames per wakeup
//
// Run (as root, after `npm run build`):
//   bun run perf/profile.ts                       ours and Debian's pasta, MTU 65520 and 1500
//   bun run perf/profile.ts --mb 256 --mtu 1500   smaller transfer, one MTU
//   bun run perf/profile.ts --cpu-prof            also a Bun CPU profile of ours per transfer
//                                                 (BUN_OPTIONS=--cpu-prof --cpu-prof-md), kept
//                                                 in perf/results/profile/
//   bun run perf/profile.ts --rr 5                instead of transfers, TCP_RR (tcp_rr.c) over the tap for
//                                                 5 s: syscalls, CPU and context switches per transaction
//   bun run perf/profile.ts --splice              the splice path instead of the tap: iperf3 from the
//                                                 host's loopback through the -t port (h2n) and -R (n2h);
//                                                 MTU 65520 only (the splice path has no frames). With
//                                                 --rr: TCP_RR through the -t port
//   bun run perf/profile.ts --perf-record         also `perf record` of each pasta (kernel and
//                                                 native symbols; JIT code shows as [unknown]):
//                                                 user/kernel split and the top symbols
//   bun run perf/profile.ts --udp 1G [--seconds 3] instead of TCP, `iperf3 -u -b 1G -l 1400` over the tap
//                                                 both ways (MTU of --mtu, first one): syscalls and CPU
//                                                 per datagram, and where datagrams were lost (the
//                                                 UDP and tap counters of both namespaces)
//
// For each pasta, MTU and direction, a fresh session (session.ts) moves --mb MB with
// `iperf3 -n` over the tap (IPv4), while `perf stat` counts the pasta's syscalls through the
// syscalls:sys_enter_* tracepoints (cheap, unlike strace, so batching is not distorted), its
// context switches and its CPU time. Printed per MB moved, with two ratios:
//   frames per wakeup   read() calls on the tap side per epoll_wait() (n2h: the tap's frames
//                       are read one per read(); in h2n read() is rarely used)
//   segments per send   bytes / MSS / (send-side socket calls) for n2h: >1 means batching
// With --splice, the ratios are instead
//   splices per wakeup  splice() calls per epoll_wait()
//   KiB per splice      bytes moved / (splice() calls / 2): what one read-side and write-side pair moves
// This is a diagnostic, not a benchmark: the numbers are not in `npm run perf`.

import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Topology, topologyUnavailable } from "../tests/harness/netns.ts";
import { compileHelper } from "./common.ts";
import { cpuSeconds, requestResponse, transfer, UDP_LEN } from "./measure.ts";
import { PORT, type Session, startSession, waitListening, type Tool } from "./session.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: flags } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    mb: { type: "string", default: "512" },
    mtu: { type: "string", default: "65520,1500" },
    "cpu-prof": { type: "boolean", default: false },
    "perf-record": { type: "boolean", default: false },
    bin: { type: "string", multiple: true },
    rr: { type: "string" },
    udp: { type: "string" },
    seconds: { type: "string", default: "3" },
    splice: { type: "boolean", default: false },
  },
});
const MB = Number(flags.mb);
const SPLICE = flags.splice === true;
const PATH = SPLICE ? "fwd" : "tap";
const MTUS = SPLICE ? [65520] : String(flags.mtu).split(",").map(Number);
const BINS = flags.bin?.length ? flags.bin : [join(ROOT, "dist/pasta"), "/usr/bin/pasta"];

/** Syscalls counted; glibc's send()/recv() are the sendto/recvfrom syscalls. */
const SYSCALLS = [
  "read", "write", "writev", "readv", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
  "epoll_wait", "epoll_pwait", "epoll_ctl", "getsockopt", "setsockopt", "ioctl", "timerfd_settime", "splice",
  "futex", "madvise", "mmap", "munmap", "mprotect", "openat", "close",
];
const EVENTS = ["raw_syscalls:sys_enter", ...SYSCALLS.map((s) => `syscalls:sys_enter_${s}`), "context-switches"];

/** Starts `perf stat` on every thread of `pid`; stop() ends it and returns the counts by event. */
function perfStat(pid: number, out: string): { stop: () => Promise<Map<string, number>> } {
  const proc = Bun.spawn(["perf", "stat", "-x", ",", "-o", out, "-e", EVENTS.join(","), "-p", String(pid)], {
    stdout: "ignore",
    stderr: "pipe",
  });
  return {
    async stop() {
      proc.kill("SIGINT");
      await proc.exited;
      const counts = new Map<string, number>();
      for (const line of readFileSync(out, "utf8").split("\n")) {
        const f = line.split(",");
        if (f.length < 3 || line.startsWith("#")) continue;
        const n = Number(f[0]);
        const event = f[2] ?? "";
        const key = event === "raw_syscalls:sys_enter" ? "total" : event.replace(/^syscalls:sys_enter_/, "");
        if (Number.isFinite(n)) counts.set(key, n);
      }
      return counts;
    },
  };
}

/** Runs TCP_RR over the tap (or the forwarded port, --splice) through `bin` for `seconds` and prints what one transaction costs it. */
async function profileRr(topo: Topology, bin: string, rr: string, seconds: number, statFile: string): Promise<void> {
  const ours = !bin.startsWith("/usr/");
  const tool: Tool = { id: ours ? "ours" : "debian", label: ours ? "ours" : "Debian", kind: "pasta", bin };
  const s = await startSession(topo, tool, 65520, rr);
  try {
    // Warm up (JIT) before counting.
    await requestResponse(topo, s, PATH, rr, 1);
    const stat = perfStat(s.pid, statFile);
    const recordFile = `${statFile}.data`;
    const record = flags["perf-record"]
      ? Bun.spawn(["perf", "record", "-q", "-F", "1999", "-o", recordFile, "-p", String(s.pid)], { stdout: "ignore", stderr: "ignore" })
      : null;
    await Bun.sleep(200);
    const cpu0 = cpuSeconds(s.pid);
    const t0 = performance.now();
    let tps = 0;
    try {
      tps = await requestResponse(topo, s, PATH, rr, seconds);
    } finally {
      const counts = await stat.stop();
      if (record) {
        record.kill("SIGINT");
        await record.exited;
        const rep = Bun.spawnSync(["perf", "report", "-i", recordFile, "--stdio", "--no-children", "--sort", "dso,sym", "--percent-limit", "1.5"], {
          stdout: "pipe",
          stderr: "ignore",
        });
        const lines = rep.stdout.toString().split("\n").filter((l) => /^\s+\d/.test(l));
        console.log(`${tool.label}: perf record, top symbols:\n${lines.slice(0, 25).map((l) => `    ${l.trim()}`).join("\n")}`);
      }
      const cpu = cpuSeconds(s.pid) - cpu0;
      const wall = (performance.now() - t0) / 1000;
      const n = tps * seconds;
      const per = (k: string) => (counts.get(k) ?? 0) / n;
      const busiest = SYSCALLS.map((k) => [k, per(k)] as const)
        .filter(([, v]) => v >= 0.05)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v.toFixed(2)}`)
        .join(", ");
      console.log(
        `${tool.label}: ${Math.round(tps)} trans/s; per transaction: CPU ${((cpu / n) * 1e6).toFixed(1)} µs ` +
          `(${((cpu / wall) * 100).toFixed(0)}% of a CPU), syscalls ${per("total").toFixed(1)}, ` +
          `context switches ${per("context-switches").toFixed(2)}; ${busiest}`,
      );
    }
  } finally {
    await s.stop();
  }
}

/** Prints what `perf record` saw in `recordFile`: by object, by thread, and the top symbols. */
function printRecord(recordFile: string): void {
  const rep = Bun.spawnSync(
    ["perf", "report", "-i", recordFile, "--stdio", "--no-children", "--sort", "dso,sym", "--percent-limit", "1.5"],
    { stdout: "pipe", stderr: "ignore" },
  );
  const lines = rep.stdout.toString().split("\n").filter((l) => /^\s+\d/.test(l));
  const kernel = lines.filter((l) => l.includes("[k]"));
  const pct = (ls: string[]) => ls.reduce((a, l) => a + parseFloat(l), 0).toFixed(0);
  const dso = Bun.spawnSync(["perf", "report", "-i", recordFile, "--stdio", "--no-children", "--sort", "dso"], {
    stdout: "pipe",
    stderr: "ignore",
  });
  const byDso = dso.stdout.toString().split("\n").filter((l) => /^\s+\d/.test(l)).slice(0, 6);
  console.log(`  perf record by object: ${byDso.map((l) => l.trim().replace(/\s+/g, " ")).join("; ")}`);
  const tid = Bun.spawnSync(["perf", "report", "-i", recordFile, "--stdio", "--no-children", "--sort", "pid"], {
    stdout: "pipe",
    stderr: "ignore",
  });
  const byTid = tid.stdout.toString().split("\n").filter((l) => /^\s+\d/.test(l)).slice(0, 5);
  console.log(`  perf record by thread: ${byTid.map((l) => l.trim().replace(/\s+/g, " ")).join("; ")}`);
  const pair = Bun.spawnSync(
    ["perf", "report", "-i", recordFile, "--stdio", "--no-children", "--sort", "pid,dso", "--percent-limit", "2"],
    { stdout: "pipe", stderr: "ignore" },
  );
  const byPair = pair.stdout.toString().split("\n").filter((l) => /^\s+\d/.test(l)).slice(0, 8);
  console.log(`  perf record by thread and object: ${byPair.map((l) => l.trim().replace(/\s+/g, " ")).join("; ")}`);
  console.log(`  perf record: kernel symbols ${pct(kernel)}% of samples shown (>= 1.5% each); top:`);
  for (const l of lines.slice(0, 14)) console.log(`    ${l.trim()}`);
}

/** Counters of one namespace: /proc/net/snmp's Udp line and the packet counts of its links. */
type Counters = Map<string, number>;

/** Reads the Udp counters (Udp.InDatagrams...) and, per link but lo, its rx/tx packets and drops. */
async function counters(topo: Topology, enter: (a: string[]) => string[] = (a) => a): Promise<Counters> {
  const c: Counters = new Map();
  const snmp = await topo.run(enter(["cat", "/proc/net/snmp"]));
  const udp = snmp.stdout.split("\n").filter((l) => l.startsWith("Udp:"));
  const names = udp[0]?.split(/\s+/).slice(1) ?? [];
  const values = udp[1]?.split(/\s+/).slice(1) ?? [];
  names.forEach((n, i) => c.set(`Udp.${n}`, Number(values[i])));
  const links = await topo.run(enter(["ip", "-s", "-j", "link", "show"]));
  try {
    type Stats = { packets: number; dropped: number };
    for (const l of JSON.parse(links.stdout) as { ifname: string; stats64?: { rx: Stats; tx: Stats } }[]) {
      if (l.ifname === "lo" || !l.stats64) continue;
      for (const dir of ["rx", "tx"] as const) {
        c.set(`link.${dir}.packets`, (c.get(`link.${dir}.packets`) ?? 0) + l.stats64[dir].packets);
        c.set(`link.${dir}.dropped`, (c.get(`link.${dir}.dropped`) ?? 0) + l.stats64[dir].dropped);
      }
    }
  } catch {}
  return c;
}

function delta(a: Counters, b: Counters, key: string): number {
  return (b.get(key) ?? 0) - (a.get(key) ?? 0);
}

/**
 * Runs `iperf3 -u` at `rate` over the tap through `bin` for `seconds`, both ways, and prints
 * per datagram: the pasta's syscalls and CPU time, and where datagrams were lost.
 */
async function profileUdp(topo: Topology, bin: string, rr: string, mtu: number, rate: string, seconds: number, statFile: string): Promise<string[][]> {
  const ours = !bin.startsWith("/usr/");
  // With several builds of ours (--bin), tell them apart by file name.
  const label = !ours ? "Debian" : BINS.filter((b) => !b.startsWith("/usr/")).length > 1 ? `ours (${basename(bin)})` : "ours";
  const tool: Tool = { id: ours ? "ours" : "debian", label, kind: "pasta", bin };
  const rows: string[][] = [];
  for (const dir of ["n2h", "h2n"] as const) {
    const s: Session = await startSession(topo, tool, mtu, rr);
    try {
      // Warm up (JIT, flow set-up) before counting.
      await transfer(topo, s, { path: "tap", dir, udpBitrate: rate }, { seconds: 1 });
      await Bun.sleep(300);
      const host0 = await counters(topo);
      const ns0 = await counters(topo, s.enter);
      const stat = perfStat(s.pid, statFile);
      const recordFile = `${statFile}.perf.data`;
      const record = flags["perf-record"]
        ? Bun.spawn(["perf", "record", "-q", "-F", "999", "-o", recordFile, "-p", String(s.pid)], { stdout: "ignore", stderr: "ignore" })
        : null;
      await Bun.sleep(200);
      const cpu0 = cpuSeconds(s.pid);
      let r, counts: Map<string, number>;
      try {
        r = await transfer(topo, s, { path: "tap", dir, udpBitrate: rate }, { seconds });
      } finally {
        counts = await stat.stop();
        if (record) {
          record.kill("SIGINT");
          await record.exited;
        }
      }
      const cpu = cpuSeconds(s.pid) - cpu0;
      await Bun.sleep(300);
      const host1 = await counters(topo);
      const ns1 = await counters(topo, s.enter);
      // Datagrams that went through the pasta: those that reached the receiving side's UDP,
      // delivered or dropped there (a frame may carry several datagrams, so link counters
      // would not do).
      const far = dir === "n2h" ? [host0, host1] : [ns0, ns1];
      const through = delta(far[0]!, far[1]!, "Udp.InDatagrams") + delta(far[0]!, far[1]!, "Udp.InErrors");
      const received = r.bytes / UDP_LEN;
      const per = (k: string) => (counts.get(k) ?? 0) / Math.max(through, 1);
      const busiest = SYSCALLS.map((k) => [k, per(k)] as const)
        .filter(([, v]) => v >= 0.01)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v.toFixed(2)}`)
        .join(", ");
      const lost = dir === "n2h"
        ? `tap queue full ${delta(ns0, ns1, "link.tx.dropped")} (frames read ${delta(ns0, ns1, "link.tx.packets")}), ` +
          `host rcvbuf ${delta(host0, host1, "Udp.RcvbufErrors")}, ` +
          `host sndbuf ${delta(host0, host1, "Udp.SndbufErrors")}`
        : `pasta socket rcvbuf ${delta(host0, host1, "Udp.RcvbufErrors")}, tap rx dropped ${delta(ns0, ns1, "link.rx.dropped")} ` +
          `(frames written ${delta(ns0, ns1, "link.rx.packets")}), ` +
          `namespace rcvbuf ${delta(ns0, ns1, "Udp.RcvbufErrors")}`;
      rows.push([
        `${tool.label} ${mtu} ${dir}`,
        (r.bitsPerSecond / 1e9).toFixed(2),
        (r.lossPercent ?? NaN).toFixed(1),
        String(Math.round(through)),
        ((cpu / Math.max(through, 1)) * 1e6).toFixed(2),
        per("total").toFixed(2),
        per("context-switches").toFixed(3),
        busiest,
        `${Math.round(received)} received; lost: ${lost}`,
      ]);
      console.log(rows.at(-1)!.join(" | "));
      if (record) printRecord(recordFile);
    } finally {
      await s.stop();
    }
  }
  return rows;
}

async function main(): Promise<void> {
  const why = topologyUnavailable(["iperf3", "socat", "gcc", "ss", "perf"]);
  if (why) throw new Error(why);
  const tmp = mkdtempSync(join(tmpdir(), "pasta-prof-"));
  const topo = await Topology.start();
  try {
    const rr = compileHelper("tcp_rr.c", tmp, topo.dir);
    const server = topo.spawn(["iperf3", "-s", "-p", "5201"], { timeoutMs: 3_600_000 });
    await Bun.sleep(300);
    const profDir = join(topo.dir, "prof");
    mkdirSync(profDir);
    chmodSync(profDir, 0o777);
    const keep = join(ROOT, "perf/results/profile");

    const rows: string[][] = [];
    if (flags.rr !== undefined) {
      const rrServer = topo.spawn([rr, "server", String(PORT.hostRr)], { timeoutMs: 3_600_000 });
      await waitListening(topo, PORT.hostRr);
      for (const bin of BINS) await profileRr(topo, bin, rr, Number(flags.rr), join(tmp, "stat.csv"));
      await rrServer.kill();
      return;
    }
    if (flags.udp !== undefined) {
      const udpRows: string[][] = [];
      for (const bin of BINS) {
        udpRows.push(...(await profileUdp(topo, bin, rr, MTUS[0]!, flags.udp, Number(flags.seconds), join(tmp, "stat.csv"))));
      }
      console.log(
        "\n| run | Gbit/s received | loss % | datagrams through pasta | CPU µs per datagram | syscalls per datagram | ctx sw per datagram | busiest syscalls per datagram | where lost |",
      );
      console.log("|---|---:|---:|---:|---:|---:|---:|---|---|");
      for (const r of udpRows) console.log(`| ${r.join(" | ")} |`);
      await server.kill();
      return;
    }
    for (const mtu of MTUS) {
      for (const bin of BINS) {
        for (const dir of ["n2h", "h2n"] as const) {
          const ours = !bin.startsWith("/usr/");
          const tool: Tool = { id: ours ? "ours" : "debian", label: ours ? "ours" : "Debian", kind: "pasta", bin };
          const env: Record<string, string> =
            flags["cpu-prof"] && ours ? { BUN_OPTIONS: `--cpu-prof --cpu-prof-md --cpu-prof-dir=${profDir}` } : {};
          const s = await startSession(topo, tool, mtu, rr, env);
          const stat = perfStat(s.pid, join(tmp, "stat.csv"));
          const recordFile = join(tmp, "perf.data");
          const record = flags["perf-record"]
            ? Bun.spawn(["perf", "record", "-q", "-F", "999", "-o", recordFile, "-p", String(s.pid)], { stdout: "ignore", stderr: "ignore" })
            : null;
          await Bun.sleep(200);
          const cpu0 = cpuSeconds(s.pid);
          let r, counts, cpu;
          try {
            r = await transfer(topo, s, { path: PATH, dir }, { bytes: `${MB}M` });
          } catch (e) {
            rows.push([`${tool.label} ${mtu} ${dir}`, "failed", "", "", "", "", "", String(e instanceof Error ? e.message : e)]);
            console.log(rows.at(-1)!.join(" | "));
            continue;
          } finally {
            // perf runs outside the topology: stop it ourselves, whatever happened.
            counts = await stat.stop();
            if (record) {
              record.kill("SIGINT");
              await record.exited;
            }
            cpu = cpuSeconds(s.pid) - cpu0;
            await s.stop();
          }
          const mb = r.bytes / 1e6;
          const per = (k: string) => (counts.get(k) ?? 0) / mb;
          const epolls = (counts.get("epoll_wait") ?? 0) + (counts.get("epoll_pwait") ?? 0);
          const mss = mtu - 40;
          const sends = (counts.get("sendto") ?? 0) + (counts.get("sendmsg") ?? 0);
          const splices = counts.get("splice") ?? 0;
          const busiest = SYSCALLS.map((k) => [k, per(k)] as const)
            .filter(([, v]) => v >= (SPLICE ? 0.05 : 0.5))
            .sort((a, b) => b[1] - a[1])
            .map(([k, v]) => `${k} ${v.toFixed(v < 1 ? 2 : v < 10 ? 1 : 0)}`)
            .join(", ");
          rows.push([
            `${tool.label} ${mtu} ${dir}`,
            (r.bitsPerSecond / 1e9).toFixed(2),
            (cpu / (r.bytes / 1e9)).toFixed(2),
            per("total").toFixed(SPLICE ? 1 : 0),
            per("context-switches").toFixed(SPLICE ? 2 : 1),
            epolls ? ((SPLICE ? splices : (counts.get("read") ?? 0)) / epolls).toFixed(1) : "-",
            SPLICE
              ? splices ? (r.bytes / 1024 / (splices / 2)).toFixed(0) : "-"
              : dir === "n2h" && sends ? (r.bytes / mss / sends).toFixed(1) : "-",
            busiest,
          ]);
          console.log(rows.at(-1)!.join(" | "));
          if (record) printRecord(recordFile);
          if (env.BUN_OPTIONS) {
            await Bun.sleep(500);
            mkdirSync(keep, { recursive: true });
            for (const f of readdirSync(profDir)) {
              const to = join(keep, `${mtu}-${dir}-${f}`);
              copyFileSync(join(profDir, f), to);
              rmSync(join(profDir, f));
              console.log(`  profile: ${to}`);
            }
          }
        }
      }
    }
    const ratios = SPLICE ? "splices per epoll_wait | KiB per splice pair" : "tap reads per epoll_wait | segments per send";
    console.log(`\n| run | Gbit/s | CPU s/GB | syscalls/MB | ctx sw/MB | ${ratios} | syscalls per MB, busiest |`);
    console.log("|---|---:|---:|---:|---:|---:|---:|---|");
    for (const r of rows) console.log(`| ${r.join(" | ")} |`);
    await server.kill();
  } finally {
    await topo.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
