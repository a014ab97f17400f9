// SPDX-License-Identifier: GPL-2.0-or-later
// soak.ts - memory soak: the forwarder's RSS over a 10 GB transfer and 100,000 connections
//
// Run (as root; the forwarders themselves run as nobody):
//   npm run perf:soak                  builds dist/pasta, then 3-5 minutes (at most 12: phase limits)
//   npm run perf:soak -- --quick       1 GB each way and 10,000 connections: about 1 minute
// Options: --no-build, --no-readme (a full run otherwise refreshes the table in
// perf/README.md), --bytes N, --connections N, --concurrency N (default 200), --tools ours,debian,
// --ours-bin PATH (another build of ours, e.g. one instrumented for heap statistics), --limit S
// (time limit of each phase and tool; default 120 s, 60 s with --quick).
//
// Output: a table on the terminal, perf/results/soak.json (every sample, the machine, the
// versions); a full run also writes the table into perf/README.md ("Memory soak").
//
// Theory of operation
//
// The requirement (issue #7): no RSS growth over a 10 GB transfer and over 100,000 connections
// opened and closed. Three phases, each on a fresh session (session.ts: the forwarder attached
// to a new namespace of the topology, MTU 65520) for our pasta and then Debian's:
//
//   n2h  BYTES (10 GB: 10 × 10^9 bytes, decimal GB; --quick: 1 GB) from the namespace to the
//        host's loopback through the gateway address (the tap path), one connection (soak.c
//        bulk-client "send" to bulk-server, which reports what it received)
//   h2n  the same amount from the host to the namespace, one connection ("recv")
//   crr  CONNS connections from the namespace to a host server through the gateway address, at
//        most CONCURRENCY at a time: connect, send 16 bytes, read them back, read EOF, close
//        (soak.c crr-client and crr-server)
//
// While a phase runs, the forwarder's /proc/PID/status (VmRSS, VmHWM, RssAnon, RssFile) and its
// descriptor count (all, and sockets) are sampled every second, together with the client's
// progress (bytes or connections done so far, which the client prints every 250 ms). A transfer
// that fails (Debian's 2023 pasta sometimes resets a long namespace→host connection) is reported
// and continued on a new connection for the bytes still missing, at most MAX_ATTEMPTS times;
// every phase has a time limit, after which it stops and reports what it did.
//
// TIME_WAIT: the host server closes each connection first (after its reply), so TIME_WAIT is on
// the server's side, keyed by the server's port and the forwarder's ephemeral port. That never
// blocks the forwarder's next connect() (a different local port pair from its own point of
// view), and a new SYN that lands on such a TIME_WAIT entry is accepted because its timestamp is
// newer. The client in the namespace closes second (passive close: CLOSE_WAIT, LAST_ACK,
// CLOSED), so neither the namespace nor the forwarder's host socket holds TIME_WAIT, and the
// connections close in order (FIN both ways), the path that must free a flow. SO_LINGER 0 on
// the client would also avoid TIME_WAIT, but it would exercise the reset path instead.
//
// Figures per tool and phase: RSS after start-up (before any traffic), at 10% of the phase's
// progress (after warm-up: JIT, buffers and pools), peak (VmHWM at the end), at the end (first
// sample after the traffic stopped), after IDLE_S more seconds, and the growth slope from the
// 10% sample to the end, per GB (10^9 bytes) or per 10,000 connections. For connections, the
// forwarder's sockets at start, peak and end stand for its flow count: each flow holds one host
// socket, so the count returning to the idle value means every flow was freed.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { type SpawnHandle, Topology, topologyUnavailable } from "../tests/harness/netns.ts";
import { buildDist, compileHelper, installed, machine, replaceReadmeBlock, RESULTS, TOOLS, versions } from "./common.ts";
import { fdCounts, memStatus } from "./measure.ts";
import { gridMarkdown, gridText } from "./report.ts";
import { PORT, type Session, startSession, type Tool, waitListening } from "./session.ts";

const { values: flags } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    quick: { type: "boolean", default: false },
    "no-build": { type: "boolean", default: false },
    "no-readme": { type: "boolean", default: false },
    bytes: { type: "string" },
    connections: { type: "string" },
    concurrency: { type: "string" },
    tools: { type: "string", default: "ours,debian" },
    "ours-bin": { type: "string" },
    limit: { type: "string" },
  },
});

/** A GB here is 10^9 bytes (slopes are in MiB per GB). */
const GB = 1e9;
const QUICK = flags.quick === true;
const BYTES = Number(flags.bytes ?? (QUICK ? 1 : 10) * GB);
const CONNS = Number(flags.connections ?? (QUICK ? 10_000 : 100_000));
const CONCURRENCY = Number(flags.concurrency ?? 200);
const MTU = 65520;
/** Time limit of one transfer phase (all its attempts), seconds. */
const TRANSFER_LIMIT_S = Number(flags.limit ?? (QUICK ? 60 : 120));
/** Time limit of the connection phase, seconds. */
const CONNS_LIMIT_S = Number(flags.limit ?? (QUICK ? 60 : 120));
/** Connections one transfer phase may use (the first, and retries after a failure). */
const MAX_ATTEMPTS = 5;
/** Seconds sampled after the traffic of a phase stopped. */
const IDLE_S = 3;
/** After the connection phase, how long to wait at most for the forwarder's sockets to drain. */
const DRAIN_S = 20;
const SAMPLE_MS = 1000;

const TOOL_IDS = String(flags.tools).split(",");
const tools: Tool[] = installed(
  TOOLS.map((t) => (t.id === "ours" && flags["ours-bin"] ? { ...t, bin: resolve(flags["ours-bin"]) } : t)),
).filter((t) => TOOL_IDS.includes(t.id) && t.kind === "pasta");

type PhaseId = "n2h" | "h2n" | "crr";
interface Phase {
  id: PhaseId;
  label: string;
  /** Progress units per slope unit: 10^9 bytes, or 10,000 connections. */
  per: number;
  slopeUnit: string;
  target: number;
}

const PHASES: Phase[] = [
  { id: "n2h", label: `${fmtBytes(BYTES)} ns→host`, per: GB, slopeUnit: "MiB/GB", target: BYTES },
  { id: "h2n", label: `${fmtBytes(BYTES)} host→ns`, per: GB, slopeUnit: "MiB/GB", target: BYTES },
  { id: "crr", label: `${CONNS.toLocaleString("en-US")} connections`, per: 10_000, slopeUnit: "MiB/10k conn", target: CONNS },
];

function fmtBytes(n: number): string {
  return `${+(n / GB).toFixed(2)} GB`;
}

/** One sample of the forwarder, `t` seconds after the phase's traffic started. */
interface Sample {
  t: number;
  /** start: after start-up, before traffic; run: during; end: first after; idle: later. */
  stage: "start" | "run" | "end" | "idle";
  /** Bytes or connections done so far. */
  progress: number;
  /** Connections failed so far (crr). */
  failed: number;
  rssKiB: number;
  hwmKiB: number;
  anonKiB: number;
  fileKiB: number;
  fds: number;
  sockets: number;
}

interface Summary {
  startMiB: number;
  at10MiB: number;
  /** Progress at the sample taken as "10%". */
  at10Progress: number;
  /** VmHWM at the end: the highest RSS of the process's life. */
  peakMiB: number;
  /** Highest VmRSS among the samples. */
  maxSampledMiB: number;
  endMiB: number;
  idleMiB: number;
  growthMiB: number;
  /** (end - at10) per slope unit. */
  slope: number | null;
  /** Least-squares slope of VmRSS against progress over the samples from 10% to the end. */
  fitSlope: number | null;
  sockets: { start: number; peak: number; end: number };
  fds: { start: number; peak: number; end: number };
}

interface PhaseResult {
  tool: string;
  phase: PhaseId;
  label: string;
  target: number;
  done: number;
  failed: number;
  complete: boolean;
  /** Seconds of traffic (client start to end). */
  seconds: number;
  /** Seconds until the forwarder's sockets were back to their idle count (crr), null if never. */
  drainSeconds?: number | null;
  attempts: { bytes: number; seconds: number | null; error: string | null }[];
  errors: Record<string, number>;
  notes: string[];
  summary: Summary | null;
  samples: Sample[];
}

// ---------------------------------------------------------------------------------------------
// The topology and its host servers

let topo: Topology | null = null;
let tmp: string | null = null;
let soakBin = "";
let rrBin = "";
let bulkServer: SpawnHandle | null = null;
let crrServer: SpawnHandle | null = null;
const timers = new Set<ReturnType<typeof setInterval>>();

async function startHostServers(t: Topology): Promise<void> {
  if (!bulkServer?.alive()) {
    bulkServer = t.spawn([soakBin, "bulk-server", String(PORT.hostBulk)], { timeoutMs: 60 * 60_000 });
    await waitListening(t, PORT.hostBulk);
  }
  if (!crrServer?.alive()) {
    crrServer = t.spawn([soakBin, "crr-server", String(PORT.hostCrr)], { timeoutMs: 60 * 60_000 });
    await waitListening(t, PORT.hostCrr);
  }
}

// ---------------------------------------------------------------------------------------------
// Sampling

/** Returns the last "progress A B" line's numbers printed by a client, or [0, 0]. */
function lastProgress(h: SpawnHandle | null): [number, number] {
  if (!h) return [0, 0];
  const out = h.output().stdout;
  const i = out.lastIndexOf("progress ");
  if (i < 0) return [0, 0];
  const end = out.indexOf("\n", i);
  if (end < 0) {
    // A line still being written: take the one before.
    const j = out.lastIndexOf("progress ", i - 1);
    if (j < 0) return [0, 0];
    return parseProgress(out.slice(j, out.indexOf("\n", j)));
  }
  return parseProgress(out.slice(i, end));
}

function parseProgress(line: string): [number, number] {
  const f = line.split(" ");
  return [Number(f[1]) || 0, Number(f[2]) || 0];
}

/** Returns the client's final JSON line, or null. */
function finalJson<T>(stdout: string): T | null {
  const line = stdout.split("\n").reverse().find((l) => l.startsWith("{"));
  if (!line) return null;
  try {
    return JSON.parse(line) as T;
  } catch {
    return null;
  }
}

/** Samples a forwarder every second while a phase runs. */
class Sampler {
  readonly samples: Sample[] = [];
  private t0 = performance.now();
  private timer: ReturnType<typeof setInterval> | null = null;
  stage: Sample["stage"] = "start";
  /** Whether the forwarder was found gone (exited, crashed). */
  gone = false;

  constructor(
    private readonly pid: number,
    private readonly progress: () => [number, number],
    private readonly onGone: () => void,
  ) {}

  /** Takes one sample now; returns it, or null (and calls onGone once) if the forwarder is gone. */
  take(stage: Sample["stage"] = this.stage): Sample | null {
    const m = memStatus(this.pid);
    const f = fdCounts(this.pid);
    if (!m || !Number.isFinite(m.rssKiB)) {
      if (!this.gone) {
        this.gone = true;
        this.onGone();
      }
      return null;
    }
    const [progress, failed] = this.progress();
    const s: Sample = {
      t: Math.round(performance.now() - this.t0) / 1000,
      stage,
      progress,
      failed,
      ...m,
      fds: f?.fds ?? NaN,
      sockets: f?.sockets ?? NaN,
    };
    this.samples.push(s);
    return s;
  }

  /** Starts the clock of the phase and samples every SAMPLE_MS from now on. */
  start(): void {
    this.t0 = performance.now();
    this.stage = "run";
    this.timer = setInterval(() => this.take(), SAMPLE_MS);
    timers.add(this.timer);
  }

  stop(): void {
    if (this.timer) {
      clearInterval(this.timer);
      timers.delete(this.timer);
    }
    this.timer = null;
  }
}

// ---------------------------------------------------------------------------------------------
// Phases

/** Moves BYTES over the tap in one direction, on new connections after a failure. */
async function bulk(t: Topology, s: Session, dir: "n2h" | "h2n", cur: Progress, r: PhaseResult): Promise<void> {
  const started = performance.now();
  while (cur.base < BYTES && r.attempts.length < MAX_ATTEMPTS && !cur.gone) {
    const left = TRANSFER_LIMIT_S - (performance.now() - started) / 1000;
    if (left <= 1) break;
    const argv = [soakBin, "bulk-client", s.gw4, String(PORT.hostBulk), dir === "n2h" ? "send" : "recv", String(BYTES - cur.base), left.toFixed(1)];
    const h = t.spawn(s.enter(argv), { timeoutMs: (left + 30) * 1000 });
    cur.handle = h;
    const res = await h.result;
    cur.handle = null;
    const j = finalJson<{ bytes: number; seconds: number; complete: boolean; error?: string }>(res.stdout);
    const bytes = j?.bytes ?? lastProgress(h)[0];
    const error = j ? (j.error ?? null) : `exit ${res.code} without a result: ${res.stderr.trim().slice(0, 200)}`;
    r.attempts.push({ bytes, seconds: j?.seconds ?? null, error });
    cur.base += bytes;
    if (error) console.log(`    connection ${r.attempts.length}: ${error} after ${fmtBytes(bytes)}`);
    if (j?.complete || error === "time limit") break;
    await Bun.sleep(500);
  }
  r.done = cur.base;
  r.complete = cur.base >= BYTES;
  const failures = r.attempts.filter((a) => a.error && a.error !== "time limit").length;
  if (failures) {
    r.notes.push(`${failures} connection(s) failed (${[...new Set(r.attempts.map((a) => a.error).filter(Boolean))].join("; ")}), continued on a new one`);
  }
  if (!r.complete) r.notes.push(`stopped at the ${TRANSFER_LIMIT_S} s limit or after ${MAX_ATTEMPTS} connections`);
  if (dir === "n2h" && failures) r.notes.push("bytes of a failed connection: what the client wrote, not what arrived");
}

/** Opens and closes CONNS connections over the tap. */
async function churn(t: Topology, s: Session, cur: Progress, r: PhaseResult): Promise<void> {
  const argv = [soakBin, "crr-client", s.gw4, String(PORT.hostCrr), String(CONNS), String(CONCURRENCY), String(CONNS_LIMIT_S)];
  const h = t.spawn(s.enter(argv), { timeoutMs: (CONNS_LIMIT_S + 60) * 1000 });
  cur.handle = h;
  const res = await h.result;
  const j = finalJson<{ done: number; failed: number; seconds: number; complete: boolean; errors: Record<string, number> }>(res.stdout);
  const [done, failed] = lastProgress(h);
  cur.handle = null;
  cur.base = j?.done ?? done;
  cur.failed = j?.failed ?? failed;
  r.done = cur.base;
  r.failed = cur.failed;
  r.complete = j?.complete ?? false;
  r.errors = j?.errors ?? {};
  if (!j) r.notes.push(`client exited ${res.code} without a result: ${res.stderr.trim().slice(0, 200)}`);
  if (r.failed) r.notes.push(`${r.failed} connection(s) failed: ${JSON.stringify(r.errors)}`);
  if (j && !j.complete && r.done + r.failed < CONNS) r.notes.push(`stopped at the ${CONNS_LIMIT_S} s limit`);
}

/** What a phase's client has done so far: `base` from finished clients plus the running one's. */
interface Progress {
  /** Set when the forwarder is gone: stop the phase. */
  gone: boolean;
  base: number;
  failed: number;
  handle: SpawnHandle | null;
}

async function runPhase(t: Topology, tool: Tool, phase: Phase): Promise<PhaseResult> {
  const r: PhaseResult = {
    tool: tool.id, phase: phase.id, label: phase.label, target: phase.target, done: 0, failed: 0, complete: false,
    seconds: 0, attempts: [], errors: {}, notes: [], summary: null, samples: [],
  };
  console.log(`${tool.label}: ${phase.label}`);
  let s: Session;
  try {
    await startHostServers(t);
    s = await startSession(t, tool, MTU, rrBin);
  } catch (e) {
    r.notes.push(`session: ${e instanceof Error ? e.message : String(e)}`);
    console.log(`  ! ${r.notes.at(-1)}`);
    return r;
  }
  const cur: Progress = { gone: false, base: 0, failed: 0, handle: null };
  const sampler = new Sampler(
    s.pid,
    () => {
      const [p, f] = lastProgress(cur.handle);
      return [cur.base + p, cur.failed + (phase.id === "crr" ? f : 0)];
    },
    () => {
      // The forwarder exited or crashed: a failure to report; stop the client rather than wait for its limit.
      cur.gone = true;
      r.notes.push("the forwarder exited during the phase");
      void cur.handle?.kill("SIGKILL");
    },
  );
  try {
    sampler.take("start");
    sampler.start();
    const t0 = performance.now();
    if (phase.id === "crr") await churn(t, s, cur, r);
    else await bulk(t, s, phase.id, cur, r);
    r.seconds = (performance.now() - t0) / 1000;
    sampler.stop();
    sampler.take("end");
    const idleSockets = sampler.samples[0]?.sockets ?? NaN;
    const drainFrom = performance.now();
    r.drainSeconds = null;
    for (let i = 0; i < (phase.id === "crr" ? DRAIN_S : IDLE_S) && !sampler.gone; i++) {
      await Bun.sleep(SAMPLE_MS);
      const x = sampler.take("idle");
      if (phase.id === "crr" && x && x.sockets <= idleSockets && r.drainSeconds === null) {
        r.drainSeconds = (performance.now() - drainFrom) / 1000;
      }
      if (i + 1 >= IDLE_S && (phase.id !== "crr" || r.drainSeconds !== null)) break;
    }
    if (phase.id !== "crr") delete r.drainSeconds;
  } catch (e) {
    r.notes.push(`${e instanceof Error ? e.message : String(e)}`);
  } finally {
    sampler.stop();
    await s.stop();
  }
  r.samples = sampler.samples;
  r.summary = summarize(r.samples, phase.per);
  printPhase(r, phase);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Summary

const MIB = 1024;

function summarize(samples: Sample[], per: number): Summary | null {
  const start = samples.find((x) => x.stage === "start");
  // Without an "end" sample (the forwarder died), the last one it gave.
  const end = samples.find((x) => x.stage === "end") ?? samples.at(-1);
  const last = samples.at(-1);
  if (!start || !end || !last) return null;
  const traffic = samples.filter((x) => x.stage === "run" || x.stage === "end");
  const p10 = 0.1 * end.progress;
  const at10 = traffic.find((x) => x.progress >= p10 && x.progress > 0) ?? end;
  const dp = (end.progress - at10.progress) / per;
  const window = traffic.filter((x) => x.t >= at10.t);
  return {
    startMiB: start.rssKiB / MIB,
    at10MiB: at10.rssKiB / MIB,
    at10Progress: at10.progress,
    peakMiB: last.hwmKiB / MIB,
    maxSampledMiB: Math.max(...samples.map((x) => x.rssKiB)) / MIB,
    endMiB: end.rssKiB / MIB,
    idleMiB: last.rssKiB / MIB,
    growthMiB: (end.rssKiB - at10.rssKiB) / MIB,
    slope: dp > 0 ? (end.rssKiB - at10.rssKiB) / MIB / dp : null,
    fitSlope: fit(window.map((x) => x.progress / per), window.map((x) => x.rssKiB / MIB)),
    sockets: { start: start.sockets, peak: Math.max(...samples.map((x) => x.sockets)), end: last.sockets },
    fds: { start: start.fds, peak: Math.max(...samples.map((x) => x.fds)), end: last.fds },
  };
}

/** Least-squares slope of ys against xs, or null with fewer than 3 points or no spread. */
function fit(xs: number[], ys: number[]): number | null {
  const n = xs.length;
  if (n < 3) return null;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  return sxx > 0 ? sxy / sxx : null;
}

const f1 = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? "n/a" : v.toFixed(1));
const fSlope = (v: number | null | undefined) => (v === null || v === undefined ? "n/a" : `${v >= 0 ? "+" : ""}${v.toFixed(2)}`);

function doneCell(r: PhaseResult): string {
  if (r.phase === "crr") {
    const fail = r.failed ? ` (${r.failed} failed)` : "";
    return `${r.done.toLocaleString("en-US")}${fail}`;
  }
  const conns = r.attempts.length > 1 ? ` (${r.attempts.length} conn.)` : "";
  return `${fmtBytes(r.done)}${conns}`;
}

function printPhase(r: PhaseResult, phase: Phase): void {
  const x = r.summary;
  if (!x) return void console.log(`  no samples${r.notes.length ? `: ${r.notes.join("; ")}` : ""}`);
  console.log(
    `  ${doneCell(r)} in ${r.seconds.toFixed(1)} s; RSS MiB: start ${f1(x.startMiB)}, 10% ${f1(x.at10MiB)}, peak ${f1(x.peakMiB)}, ` +
      `end ${f1(x.endMiB)}, +${IDLE_S} s ${f1(x.idleMiB)}; ${fSlope(x.slope)} ${phase.slopeUnit} (fit ${fSlope(x.fitSlope)}); ` +
      `sockets ${x.sockets.start}/${x.sockets.peak}/${x.sockets.end}${r.drainSeconds !== undefined ? `, drained ${r.drainSeconds === null ? "never" : `after ${r.drainSeconds.toFixed(0)} s`}` : ""}`,
  );
  for (const n of r.notes) console.log(`  ! ${n}`);
}

const HEAD = [
  "tool", "phase", "done", "time s", "RSS start", "RSS at 10%", "peak (VmHWM)", "RSS end", `end + ${IDLE_S} s`,
  "growth 10%→end", "slope 10%→end", "sockets start/peak/end",
];

function rows(results: PhaseResult[], labels: Record<string, string>): string[][] {
  return results.map((r) => {
    const x = r.summary;
    const phase = PHASES.find((p) => p.id === r.phase)!;
    return [
      labels[r.tool] ?? r.tool, r.label, doneCell(r), r.seconds.toFixed(0),
      f1(x?.startMiB), f1(x?.at10MiB), f1(x?.peakMiB), f1(x?.endMiB), f1(x?.idleMiB),
      x ? `${x.growthMiB >= 0 ? "+" : ""}${x.growthMiB.toFixed(1)}` : "n/a",
      x ? `${fSlope(x.slope)} ${phase.slopeUnit}` : "n/a",
      x ? `${x.sockets.start}/${x.sockets.peak}/${x.sockets.end}` : "n/a",
    ];
  });
}

const RATIO_HEAD = ["phase", "RSS start", "RSS at 10%", "peak", "RSS end"];

/** ours / Debian per phase for the RSS columns. */
function ratioRows(results: PhaseResult[]): string[][] {
  const out: string[][] = [];
  for (const p of PHASES) {
    const a = results.find((r) => r.tool === "ours" && r.phase === p.id)?.summary;
    const b = results.find((r) => r.tool === "debian" && r.phase === p.id)?.summary;
    if (!a || !b) continue;
    const q = (x: number, y: number) => (y > 0 ? `${(x / y).toFixed(2)}x` : "n/a");
    out.push([p.label, q(a.startMiB, b.startMiB), q(a.at10MiB, b.at10MiB), q(a.peakMiB, b.peakMiB), q(a.endMiB, b.endMiB)]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

async function cleanup(): Promise<void> {
  for (const t of timers) clearInterval(t);
  timers.clear();
  const t = topo;
  topo = null;
  if (t) await t.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = null;
}

async function main(): Promise<void> {
  const started = Date.now();
  const unavailable = topologyUnavailable(["gcc", "ss", "iperf3"]);
  if (unavailable) {
    console.error(`perf:soak: cannot run: ${unavailable}`);
    process.exit(1);
  }
  const buildNote = buildDist(flags["no-build"] === true, "perf:soak");
  if (tools.length === 0) throw new Error(`none of the tools ${TOOL_IDS.join(", ")} is installed`);

  tmp = mkdtempSync(join(tmpdir(), "pasta-soak-"));
  const load0 = loadavg();
  topo = await Topology.start();
  rrBin = compileHelper("tcp_rr.c", tmp, topo.dir);
  soakBin = compileHelper("soak.c", tmp, topo.dir);
  await startHostServers(topo);
  console.log(
    `soak: ${fmtBytes(BYTES)} each way and ${CONNS.toLocaleString("en-US")} connections (${CONCURRENCY} at a time), ` +
      `MTU ${MTU}; ${tools.map((x) => x.label).join(", ")}`,
  );

  const results: PhaseResult[] = [];
  for (const phase of PHASES) for (const tool of tools) results.push(await runPhase(topo, tool, phase));
  const load1 = loadavg();
  await cleanup();

  const labels = Object.fromEntries(TOOLS.map((x) => [x.id, x.label]));
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  const when = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const m = machine();
  const v = versions();
  const table = rows(results, labels);
  const ratios = ratioRows(results);
  console.log(`\nRSS in MiB (VmRSS of the forwarder process); slopes from the 10% sample to the end\n`);
  console.log(gridText(HEAD, table, 3));
  if (ratios.length) console.log(`\nours / Debian\n\n${gridText(RATIO_HEAD, ratios, 1)}`);
  console.log(`\n${minutes} min; load average ${load0[0]?.toFixed(2)} at start, ${load1[0]?.toFixed(2)} at end`);

  const result = {
    date: when,
    quick: QUICK,
    bytesPerTransfer: BYTES,
    connections: CONNS,
    concurrency: CONCURRENCY,
    mtu: MTU,
    limits: { transferSeconds: TRANSFER_LIMIT_S, connectionsSeconds: CONNS_LIMIT_S, attempts: MAX_ATTEMPTS },
    minutes: Number(minutes),
    loadAverage: { start: load0, end: load1 },
    build: buildNote,
    machine: m,
    versions: v,
    results,
  };
  mkdirSync(RESULTS, { recursive: true });
  const file = join(RESULTS, QUICK ? "soak-quick.json" : "soak.json");
  writeFileSync(file, JSON.stringify(result, null, 2) + "\n");
  console.log(`wrote ${file.slice(file.indexOf("perf/"))}`);

  if (!QUICK && !flags["no-readme"] && flags.bytes === undefined && flags.connections === undefined) {
    const notes = results.flatMap((r) => r.notes.map((n) => `- ${labels[r.tool] ?? r.tool}, ${r.label}: ${n}`));
    const block = [
      "<!-- soak-table:start (written by perf/soak.ts) -->",
      `Measured ${when} on ${m.nproc} × ${m.cpuModel}, ${m.memGiB} GiB, Linux ${m.kernel}, Bun ${m.bun}; ${minutes} min in all;`,
      `load average ${load0[0]?.toFixed(2)} at start, ${load1[0]?.toFixed(2)} at end. Ours: ${v.ours}; build: ${buildNote}. Debian: ${v.debian}.`,
      "",
      "RSS in MiB (VmRSS of the forwarder process).",
      "",
      gridMarkdown(HEAD, table, 3),
      "",
      ...(ratios.length ? ["ours / Debian:", "", gridMarkdown(RATIO_HEAD, ratios, 1), ""] : []),
      ...(notes.length ? ["Notes from this run:", "", ...notes, ""] : []),
      "<!-- soak-table:end -->",
    ].join("\n");
    if (replaceReadmeBlock("soak-table", block)) console.log("updated the table in perf/README.md");
    else {
      writeFileSync(join(RESULTS, "soak-table.md"), block + "\n");
      console.log("perf/README.md has no soak-table markers: wrote perf/results/soak-table.md instead");
    }
  }
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    console.log(`\nperf:soak: ${sig}, cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (e) {
  console.error(`perf:soak: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  await cleanup();
  process.exit(1);
}
