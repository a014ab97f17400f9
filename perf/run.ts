// SPDX-License-Identifier: GPL-2.0-or-later
// run.ts - throughput, latency, CPU, memory and start-up of our pasta against Debian's pasta and slirp4netns
//
// Run (as root; the forwarders themselves run as nobody):
//   npm run perf                 full run, about 9 minutes: 3 repetitions, MTU 65520 and 1500
//   npm run perf -- --quick      1 repetition, MTU 65520, IPv4 only, about 2 minutes
//   npm run perf -- --quick --mtu 1500   the same at MTU 1500 (--mtu takes a comma-separated list)
// Options: --reps N, --seconds S (per transfer), --no-build, --no-readme (full runs otherwise
// refresh the table in perf/README.md and perf/ratios.svg), --only GROUPS (a comma-separated
// subset of tcp, splice, udp, rr, startup: measure only those rows; implies --no-readme).
//
// Output: a table on the terminal, perf/results/latest.json (every sample, the machine, the
// versions), perf/results/ratios.svg, and for full runs the copies meant to be committed.
//
// Theory of operation
//
// One topology (tests/harness/netns.ts) serves the whole run, so every tool sees the same
// namespaces, addresses and servers (session.ts draws the paths). Each repetition starts a fresh
// session per tool and MTU, and the tools take turns in a rotating order, so slow drifts in the
// load of this shared machine spread over all of them. Every figure is the median of the
// repetitions; ratios compare medians, and only ratios are worth quoting: the machine is shared.
//
// Metrics per session (MTU 65520; the 1500 session measures the TCP tap rows only):
//   TCP over the tap, IPv4 and IPv6, namespace→host (iperf3 -c GW) and host→namespace (-R)
//   TCP through the forwarded port, host→namespace and back (pasta's splice path)
//   UDP over the tap, both ways, at a fixed target rate: received rate and loss
//   request/response transactions per second, tap and forwarded port (perf/tcp_rr.c)
//   forwarder CPU seconds per GB moved (utime+stime of its process tree around each transfer)
//   RSS: after start-up, peak (VmHWM) and steady (VmRSS after traffic) at the end of the session
// and once per run: start-up time of `pasta --config-net -- true`, pastas only.

import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type SpawnHandle, Topology, topologyUnavailable } from "../tests/harness/netns.ts";
import { buildDist, compileHelper, installed, machine, replaceReadmeBlock, RESULTS, ROOT, TOOLS, versions } from "./common.ts";
import { cpuSeconds, requestResponse, rss, startupTimes, transfer, type FlowSpec, type TransferResult } from "./measure.ts";
import { markdownTable, median, type Metric, ratioOf, ratioSvg, textTable } from "./report.ts";
import { PORT, type Session, startSession, type Tool, waitListening } from "./session.ts";

const { values: flags } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    quick: { type: "boolean", default: false },
    reps: { type: "string" },
    seconds: { type: "string" },
    mtu: { type: "string" },
    "no-build": { type: "boolean", default: false },
    "no-readme": { type: "boolean", default: false },
    only: { type: "string" },
  },
});
/** Row groups --only can pick. */
const GROUPS = ["tcp", "splice", "udp", "rr", "startup"] as const;
type Group = (typeof GROUPS)[number];
const ONLY = new Set<string>(flags.only !== undefined ? flags.only.split(",") : GROUPS);
for (const g of ONLY) if (!(GROUPS as readonly string[]).includes(g)) throw new Error(`--only: unknown group ${g} (${GROUPS.join(", ")})`);
/** Returns true if the rows of `group` are to be measured. */
const measures = (group: Group): boolean => ONLY.has(group);
const QUICK = flags.quick === true;
const REPS = Number(flags.reps ?? (QUICK ? 1 : 3));
const SECONDS = Number(flags.seconds ?? (QUICK ? 2 : 3));
const MTUS = flags.mtu !== undefined ? flags.mtu.split(",").map(Number) : QUICK ? [65520] : [65520, 1500];
const STARTUP_RUNS = QUICK ? 5 : 11;
/** iperf3 -b for the UDP rows: about what the fastest forwarder here carries at 1400-byte datagrams. */
const UDP_BITRATE = "1G";

const LABELS: Record<string, string> = Object.fromEntries(TOOLS.map((t) => [t.id, t.label]));

// ---------------------------------------------------------------------------------------------
// Metrics, in the order the table shows them

const metrics = new Map<string, Metric>();

function metric(id: string, label: string, unit: string, better: "higher" | "lower", digits: number, hidden = false): Metric {
  let m = metrics.get(id);
  if (!m) {
    m = { id, label, unit, better, digits, samples: {}, na: {}, ...(hidden ? { hidden } : {}) };
    metrics.set(id, m);
  }
  return m;
}

/** Table order: tap TCP by MTU, splice, UDP, latency, CPU, memory, start-up; else first seen. */
const ORDER = [/^tcp\d_tap_.*_65520$/, /^tcp\d_tap_.*_1500$/, /^tcp\d_fwd_/, /^udp/, /^rr_/, /^cpu_.*_65520$/, /^cpu_/, /^rss_/, /^startup/];

function rank(m: Metric): number {
  const i = ORDER.findIndex((re) => re.test(m.id));
  return i < 0 ? ORDER.length : i;
}

function record(m: Metric, tool: string, value: number): void {
  (m.samples[tool] ??= []).push(value);
}

const errors: string[] = [];

function fail(what: string, e: unknown): void {
  const msg = `${what}: ${e instanceof Error ? e.message : String(e)}`;
  errors.push(msg);
  console.log(`  ! ${msg}`);
}

const GBIT = "Gbit/s";

/** Label of a flow: "TCP4 tap ns→host". */
function flowName(spec: FlowSpec): string {
  const proto = `${spec.udpBitrate ? "UDP" : "TCP"}${spec.v6 ? "6" : "4"}`;
  const dir = spec.dir === "n2h" ? "ns→host" : "host→ns";
  return spec.path === "tap" ? `${proto} tap ${dir}` : `${proto} splice ${dir}`;
}

function flowId(spec: FlowSpec): string {
  return `${spec.udpBitrate ? "udp" : "tcp"}${spec.v6 ? 6 : 4}_${spec.path}_${spec.dir}`;
}

// ---------------------------------------------------------------------------------------------
// The topology's long-lived servers on the host side

let topo: Topology | null = null;
let tmp: string | null = null;
let rrBin = "";
let hostIperf: SpawnHandle | null = null;
let hostRr: SpawnHandle | null = null;

async function startHostServers(t: Topology): Promise<void> {
  if (!hostIperf?.alive()) {
    hostIperf = t.spawn(["iperf3", "-s", "-p", String(PORT.hostIperf)], { timeoutMs: 60 * 60_000 });
    await waitListening(t, PORT.hostIperf);
  }
  if (!hostRr?.alive()) {
    hostRr = t.spawn([rrBin, "server", String(PORT.hostRr)], { timeoutMs: 60 * 60_000 });
    await waitListening(t, PORT.hostRr);
  }
}

/** After a failed tap transfer the host's iperf3 may still hold the dead test: start it afresh. */
async function restartHostIperf(t: Topology): Promise<void> {
  if (hostIperf?.alive()) await hostIperf.kill("SIGKILL");
  hostIperf = null;
  await startHostServers(t);
}

// ---------------------------------------------------------------------------------------------
// One session: every measurement of one tool at one MTU

async function runTransfer(t: Topology, s: Session, spec: FlowSpec, cpuMetric: boolean): Promise<TransferResult | null> {
  const name = `${flowName(spec)}, MTU ${s.mtu}`;
  const tool = s.tool.id;
  try {
    const r = await transfer(t, s, spec, { seconds: SECONDS });
    const gbps = r.bitsPerSecond / 1e9;
    if (spec.udpBitrate) {
      record(metric(`${flowId(spec)}_${s.mtu}`, `${name}, ${spec.udpBitrate.replace(/([0-9.]+)([KMG])$/, "$1 $2")}bit/s offered`, GBIT, "higher", 2), tool, gbps);
      record(metric(`${flowId(spec)}_loss_${s.mtu}`, `${name}, loss`, "%", "lower", 1), tool, r.lossPercent ?? NaN);
    } else {
      record(metric(`${flowId(spec)}_${s.mtu}`, name, GBIT, "higher", 2), tool, gbps);
    }
    if (r.retransmits !== null) {
      record(metric(`retrans_${flowId(spec)}_${s.mtu}`, `retransmissions, ${name}`, "segments", "lower", 0, true), tool, r.retransmits);
    }
    let cpuNote = "";
    if (cpuMetric && r.bytes > 0) {
      const perGb = r.cpuSeconds / (r.bytes / 1e9);
      record(metric(`cpu_${flowId(spec)}_${s.mtu}`, `CPU per GB, ${name}`, "s/GB", "lower", 2), tool, perGb);
      cpuNote = `, ${perGb.toFixed(2)} CPU s/GB`;
    }
    const loss = r.lossPercent === null ? "" : `, loss ${r.lossPercent.toFixed(1)}%`;
    const retrans = r.retransmits === null ? "" : `, ${r.retransmits} retransmitted`;
    console.log(`  ${name}: ${gbps.toFixed(2)} Gbit/s${loss}${retrans}${cpuNote}`);
    return r;
  } catch (e) {
    fail(`${s.tool.label} ${name}`, e);
    if (spec.path === "tap") await restartHostIperf(t);
    return null;
  }
}

async function runSession(t: Topology, tool: Tool, mtu: number): Promise<void> {
  console.log(`${tool.label}, MTU ${mtu}`);
  let s: Session;
  try {
    s = await startSession(t, tool, mtu, rrBin);
  } catch (e) {
    fail(`${tool.label} MTU ${mtu}: session`, e);
    return;
  }
  try {
    await startHostServers(t);
    const full = mtu === 65520;
    const idle = rss(s.pid);
    if (full && idle) record(metric("rss_start", "RSS after start-up", "MiB", "lower", 1), tool.id, idle.rssBytes / 2 ** 20);

    const versions = QUICK ? [false] : [false, true];
    for (const v6 of measures("tcp") ? versions : []) {
      for (const dir of ["n2h", "h2n"] as const) await runTransfer(t, s, { path: "tap", dir, v6 }, !v6);
    }
    if (!full) return;

    const spliceNa = s.spliced === false ? "no splice path yet (-t goes through the tap)" : null;
    for (const dir of measures("splice") ? (["h2n", "n2h"] as const) : []) {
      const spec: FlowSpec = { path: "fwd", dir };
      if (spliceNa) {
        const name = `${flowName(spec)}, MTU ${mtu}`;
        metric(`${flowId(spec)}_${mtu}`, name, GBIT, "higher", 2).na[tool.id] = spliceNa;
        metric(`cpu_${flowId(spec)}_${mtu}`, `CPU per GB, ${name}`, "s/GB", "lower", 2).na[tool.id] = spliceNa;
        continue;
      }
      await runTransfer(t, s, spec, true);
    }
    for (const dir of measures("udp") ? (["n2h", "h2n"] as const) : []) {
      await runTransfer(t, s, { path: "tap", dir, udpBitrate: UDP_BITRATE }, true);
    }

    for (const path of measures("rr") ? (["tap", "fwd"] as const) : []) {
      const m = metric(`rr_${path}`, `TCP_RR 1 byte, ${path === "tap" ? "tap" : "splice"} (tcp_rr.c)`, "trans/s", "higher", 0);
      if (path === "fwd" && spliceNa) {
        m.na[tool.id] = spliceNa;
        continue;
      }
      try {
        const tps = await requestResponse(t, s, path, rrBin, SECONDS);
        record(m, tool.id, tps);
        console.log(`  ${m.label}: ${Math.round(tps)} transactions/s`);
      } catch (e) {
        fail(`${tool.label} ${m.label}`, e);
      }
    }

    await Bun.sleep(3000); // steady state: our loop makes a full collection once traffic stops
    const end = rss(s.pid);
    if (end) {
      record(metric("rss_peak", "RSS peak (VmHWM)", "MiB", "lower", 1), tool.id, end.peakBytes / 2 ** 20);
      record(metric("rss_steady", "RSS after traffic (VmRSS)", "MiB", "lower", 1), tool.id, end.rssBytes / 2 ** 20);
      console.log(`  RSS: start ${((idle?.rssBytes ?? NaN) / 2 ** 20).toFixed(1)} MiB, peak ${(end.peakBytes / 2 ** 20).toFixed(1)} MiB, after ${(end.rssBytes / 2 ** 20).toFixed(1)} MiB; CPU total ${cpuSeconds(s.pid).toFixed(2)} s`);
    }
  } finally {
    await s.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Start-up

async function runStartup(t: Topology, tools: Tool[]): Promise<void> {
  const pastas = tools.filter((x) => x.kind === "pasta");
  const m = metric("startup", "start-up, pasta --config-net -- true", "ms", "lower", 1);
  m.na["slirp4netns"] = "start-up not comparable (no command mode)";
  console.log(`start-up: ${STARTUP_RUNS} runs each`);
  try {
    const times = await startupTimes(t, pastas.map((x) => x.bin), ["--config-net", "--", "true"], STARTUP_RUNS);
    pastas.forEach((tool, i) => {
      for (const ms of times[i] ?? []) record(m, tool.id, ms);
      console.log(`  ${tool.label}: median ${median(times[i] ?? [])?.toFixed(1)} ms`);
    });
  } catch (e) {
    fail("start-up", e);
  }
}

// ---------------------------------------------------------------------------------------------

async function cleanup(): Promise<void> {
  const t = topo;
  topo = null;
  if (t) await t.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = null;
}

async function main(): Promise<void> {
  const started = Date.now();
  const unavailable = topologyUnavailable(["iperf3", "socat", "gcc", "ss", "slirp4netns"]);
  if (unavailable) {
    console.error(`perf: cannot run: ${unavailable}`);
    process.exit(1);
  }

  const buildNote = buildDist(flags["no-build"] === true);
  const tools = installed(TOOLS);
  if (!existsSync(join(ROOT, "dist/pasta"))) console.log("perf: no dist/pasta, measuring the others only");

  tmp = mkdtempSync(join(tmpdir(), "pasta-perf-"));
  const load0 = loadavg();
  topo = await Topology.start();
  rrBin = compileHelper("tcp_rr.c", tmp, topo.dir);
  await startHostServers(topo);

  for (let rep = 0; rep < REPS; rep++) {
    console.log(`\n=== repetition ${rep + 1} of ${REPS} ===`);
    const order = tools.map((_, i) => tools[(i + rep) % tools.length]!);
    for (const tool of order) for (const mtu of MTUS) await runSession(topo, tool, mtu);
  }
  if (measures("startup")) await runStartup(topo, tools);
  const load1 = loadavg();
  await cleanup();

  const all = [...metrics.values()].sort((a, b) => rank(a) - rank(b));
  const list = all.filter((x) => !x.hidden);
  const toolIds = TOOLS.map((x) => x.id);
  const table = textTable(list, toolIds, LABELS);
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  const m = machine();
  const when = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  console.log(`\n${table}\n`);
  console.log(`${REPS} repetition(s), ${SECONDS} s per transfer, ${minutes} min; load average ${load0[0]?.toFixed(2)} at start, ${load1[0]?.toFixed(2)} at end`);
  if (errors.length) console.log(`${errors.length} error(s):\n  ${errors.join("\n  ")}`);

  const v = versions();
  const result = {
    date: when,
    quick: QUICK,
    repetitions: REPS,
    secondsPerTransfer: SECONDS,
    udpBitrate: UDP_BITRATE,
    minutes: Number(minutes),
    loadAverage: { start: load0, end: load1 },
    build: buildNote,
    machine: m,
    versions: v,
    errors,
    metrics: all.map((x) => ({
      ...x,
      median: Object.fromEntries(toolIds.map((id) => [id, median(x.samples[id] ?? [])])),
      ratioOursDebian: ratioOf(x, "ours", "debian"),
      ratioSlirpDebian: ratioOf(x, "slirp4netns", "debian"),
    })),
  };
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, "latest.json"), JSON.stringify(result, null, 2) + "\n");
  const subtitle = `${when.slice(0, 10)}, ${m.nproc} × ${m.cpuModel}, Linux ${m.kernel}, median of ${REPS}`;
  const svg = ratioSvg(list, subtitle);
  writeFileSync(join(RESULTS, "ratios.svg"), svg);
  console.log(`wrote perf/results/latest.json, perf/results/ratios.svg`);

  if (!QUICK && !flags["no-readme"] && flags.only === undefined) {
    writeFileSync(join(ROOT, "perf/ratios.svg"), svg);
    const block = [
      "<!-- perf-table:start (written by perf/run.ts) -->",
      `Measured ${when} on ${m.nproc} × ${m.cpuModel} (AVX2: ${m.avx2 ? "yes" : "no"}), ${m.memGiB} GiB, Linux ${m.kernel}, Bun ${m.bun};`,
      `${REPS} repetitions of ${SECONDS} s per transfer, medians; ${minutes} min in all; load average ${load0[0]?.toFixed(2)} at start, ${load1[0]?.toFixed(2)} at end.`,
      `Ours: ${v.ours}; build: ${buildNote}. Debian: ${v.debian}. ${v.slirp4netns}. ${v.iperf3}.`,
      "",
      markdownTable(list, toolIds, LABELS),
      ...(errors.length ? ["", "Errors in this run:", "", ...errors.map((e) => `- ${e}`)] : []),
      "<!-- perf-table:end -->",
    ].join("\n");
    if (replaceReadmeBlock("perf-table", block)) {
      console.log("updated the table in perf/README.md and perf/ratios.svg");
    } else {
      writeFileSync(join(RESULTS, "table.md"), block + "\n");
      console.log("perf/README.md has no perf-table markers: wrote perf/results/table.md instead; wrote perf/ratios.svg");
    }
  }
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    console.log(`\nperf: ${sig}, cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (e) {
  console.error(`perf: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  await cleanup();
  process.exit(1);
}
