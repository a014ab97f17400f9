// SPDX-License-Identifier: GPL-2.0-or-later
// ab.ts - A/B of several pasta builds on one path, repetitions interleaved, medians compared
//
// Run (as root):
//   bun run perf/ab.ts --bin /tmp/a --bin /tmp/b [--bin /usr/bin/pasta] --path fwd --dir h2n --reps 9
//   bun run perf/ab.ts --bin /tmp/a --bin /tmp/b --rr tap --reps 9     TCP_RR over the tap (or: fwd)
//   bun run perf/ab.ts --bin /tmp/a --bin "VAR=1 /tmp/a" ...            the same build, with VAR set
// Options: --path tap|fwd (default fwd: the splice path), --dir n2h,h2n, --mtu N, --seconds S,
// --v6 (tap only), --udp RATE (UDP at that offered rate, iperf3 -b, instead of TCP).
//
// Each repetition starts a fresh session per binary, in a rotating order, so that drift in
// the machine's load hits every binary alike; a change is worth keeping when its median moves
// by more than the spread of the repetitions (printed as the interquartile range). Besides the
// rate, it prints the forwarder's CPU seconds and the whole machine's busy CPU seconds (from
// /proc/stat) per GB or per 100k transactions: on 2 vCPUs the forwarder competes with the
// iperf3 pair, so work it leaves to the applications' kernel context shows up only there.
// A diagnostic for work on one path, not a benchmark: `npm run perf` is the benchmark.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Topology, topologyUnavailable } from "../tests/harness/netns.ts";
import { compileHelper } from "./common.ts";
import { cpuSeconds, requestResponse, transfer } from "./measure.ts";
import { PORT, startSession, type Tool, waitListening } from "./session.ts";

const { values: flags } = parseArgs({
  options: {
    bin: { type: "string", multiple: true },
    path: { type: "string", default: "fwd" },
    dir: { type: "string", default: "n2h,h2n" },
    mtu: { type: "string", default: "65520" },
    seconds: { type: "string", default: "3" },
    reps: { type: "string", default: "7" },
    rr: { type: "string" },
    v6: { type: "boolean", default: false },
    udp: { type: "string" },
  },
});
const BINS = flags.bin ?? [];
if (BINS.length === 0) throw new Error("ab.ts: give at least one --bin");
const PATH = (flags.rr ?? flags.path) as "tap" | "fwd";
if (PATH !== "tap" && PATH !== "fwd") throw new Error(`ab.ts: unknown path ${PATH} (tap, fwd)`);
const DIRS = String(flags.dir).split(",") as ("n2h" | "h2n")[];
const REPS = Number(flags.reps);
const SECONDS = Number(flags.seconds);
const MTU = Number(flags.mtu);

/** Busy CPU seconds of the whole machine so far (all CPUs, everything but idle and iowait). */
function machineBusySeconds(): number {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f as [number, number, number, number, number, number, number, number];
  return (user + nice + system + irq + softirq + steal) / 100;
}

/** Median and interquartile range of `xs`. */
function stats(xs: number[]): { median: number; iqr: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))]!;
  return { median: q(0.5), iqr: q(0.75) - q(0.25) };
}

interface Sample {
  rate: number;
  /** UDP: datagrams lost, percent. */
  loss?: number;
  ownCpu: number;
  machineCpu: number;
}

async function main(): Promise<void> {
  const why = topologyUnavailable(["iperf3", "socat", "gcc", "ss"]);
  if (why) throw new Error(why);
  const tmp = mkdtempSync(join(tmpdir(), "pasta-ab-"));
  const topo = await Topology.start();
  const samples = new Map<string, Sample[]>();
  try {
    const rr = compileHelper("tcp_rr.c", tmp, topo.dir);
    const server = topo.spawn(["iperf3", "-s", "-p", "5201"], { timeoutMs: 3_600_000 });
    const rrServer = topo.spawn([rr, "server", String(PORT.hostRr)], { timeoutMs: 3_600_000 });
    await waitListening(topo, PORT.hostRr);
    const tasks = flags.rr !== undefined ? ["rr"] : DIRS;
    for (let rep = 0; rep < REPS; rep++) {
      const order = BINS.map((_, i) => BINS[(i + rep) % BINS.length]!);
      for (const bin of order) {
        const words = bin.split(" ");
        const env = Object.fromEntries(words.filter((w) => w.includes("=")).map((w) => w.split("=", 2) as [string, string]));
        const path = words.find((w) => !w.includes("="))!;
        const tool: Tool = { id: bin, label: bin, kind: "pasta", bin: path };
        const s = await startSession(topo, tool, MTU, rr, env);
        try {
          for (const task of tasks) {
            const key = `${bin} ${task}`;
            if (!samples.has(key)) samples.set(key, []);
            const own0 = cpuSeconds(s.pid), m0 = machineBusySeconds();
            if (task === "rr") {
              await requestResponse(topo, s, PATH, rr, 1); // warm-up
              const o0 = cpuSeconds(s.pid), mm0 = machineBusySeconds();
              const tps = await requestResponse(topo, s, PATH, rr, SECONDS);
              const per = 1e5 / (tps * SECONDS);
              samples.get(key)!.push({ rate: tps, ownCpu: (cpuSeconds(s.pid) - o0) * per, machineCpu: (machineBusySeconds() - mm0) * per });
            } else {
              const spec = { path: PATH, dir: task as "n2h" | "h2n", v6: flags.v6, ...(flags.udp ? { udpBitrate: flags.udp } : {}) };
              const r = await transfer(topo, s, spec, { seconds: SECONDS });
              const gb = r.bytes / 1e9;
              samples.get(key)!.push({
                rate: r.bitsPerSecond / 1e9, ownCpu: (cpuSeconds(s.pid) - own0) / gb, machineCpu: (machineBusySeconds() - m0) / gb,
                loss: r.lossPercent ?? 0,
              });
            }
            const last = samples.get(key)!.at(-1)!;
            console.log(`rep ${rep + 1}/${REPS} ${key}: ${last.rate.toFixed(2)}`);
          }
        } finally {
          await s.stop();
        }
      }
    }
    await server.kill();
    await rrServer.kill();
  } finally {
    await topo.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  const unit = flags.rr !== undefined ? ["trans/s", "CPU s per 100k"] : ["Gbit/s", "CPU s/GB"];
  console.log(`\n| binary, ${flags.rr !== undefined ? `TCP_RR ${PATH}` : `${PATH} MTU ${MTU}`} | ${unit[0]} median | IQR | own ${unit[1]} | machine ${unit[1]} | loss % |`);
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const [key, xs] of samples) {
    const r = stats(xs.map((x) => x.rate));
    const own = stats(xs.map((x) => x.ownCpu)).median, mach = stats(xs.map((x) => x.machineCpu)).median;
    const d = flags.rr !== undefined ? 0 : 2;
    const loss = flags.udp ? stats(xs.map((x) => x.loss ?? 0)).median.toFixed(1) : "-";
    console.log(`| ${key} | ${r.median.toFixed(d)} | ${r.iqr.toFixed(d)} | ${own.toFixed(3)} | ${mach.toFixed(3)} | ${loss} |`);
  }
}

await main();
