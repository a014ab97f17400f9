// SPDX-License-Identifier: GPL-2.0-or-later
// common.ts - what every benchmark of perf/ does the same way: the tools, the build, C helpers,
// the machine and versions recorded with the numbers, the tables written into perf/README.md
//
// run.ts (throughput, latency, start-up) and soak.ts (memory over long runs) both use it.

import { chmodSync, copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { basename, join, resolve } from "node:path";
import type { Tool } from "./session.ts";

/** The repository's root. */
export const ROOT = resolve(import.meta.dir, "..");
/** Where benchmarks write their output (gitignored). */
export const RESULTS = join(ROOT, "perf/results");

/** The forwarders compared: our dist/pasta, Debian's pasta, slirp4netns. */
export const TOOLS: readonly Tool[] = [
  { id: "ours", label: "ours", kind: "pasta", bin: join(ROOT, "dist/pasta") },
  { id: "debian", label: "Debian pasta", kind: "pasta", bin: "/usr/bin/pasta" },
  { id: "slirp4netns", label: "slirp4netns", kind: "slirp4netns", bin: "/usr/bin/slirp4netns" },
];

/** Runs a command to completion and returns stdout and stderr, trimmed. */
export function sh(argv: string[]): string {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  return (r.stdout.toString() + r.stderr.toString()).trim();
}

/**
 * Builds dist/pasta with `npm run build` unless `skip`; returns the note recorded with the
 * results ("built for this run", or why the dist/pasta already there was measured).
 */
export function buildDist(skip: boolean, who = "perf"): string {
  if (skip) return "--no-build: the dist/pasta already there";
  console.log("building dist/pasta (npm run build)");
  const b = Bun.spawnSync(["npm", "run", "build"], { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
  if (b.exitCode === 0) return "built for this run";
  const note = "BUILD FAILED: measured the dist/pasta already there";
  console.log(`${who}: ${note}`);
  return note;
}

/**
 * Compiles perf/`source` with gcc -O2 into `tmp`, copies the binary into `dir` (the topology's
 * directory, which nobody can read) and returns its path there. Throws with gcc's output.
 */
export function compileHelper(source: string, tmp: string, dir: string): string {
  const name = basename(source, ".c");
  const out = join(tmp, name);
  const cc = Bun.spawnSync(["gcc", "-O2", "-Wall", "-o", out, join(ROOT, "perf", source)], { stderr: "pipe" });
  if (cc.exitCode !== 0) throw new Error(`gcc ${source}: ${cc.stderr.toString()}`);
  const dest = join(dir, name);
  copyFileSync(out, dest);
  chmodSync(dest, 0o755);
  return dest;
}

/** The machine a run was measured on. */
export function machine() {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown";
  return {
    nproc: Number(sh(["nproc"])) || cpus().length,
    cpuModel: model,
    kernel: release(),
    memGiB: Math.round(totalmem() / 2 ** 30),
    avx2: /\bavx2\b/.test(cpuinfo),
    bun: Bun.version,
  };
}

/** Versions of the tools measured, with our git commit (and whether src/ was modified). */
export function versions(): Record<string, string> {
  const head = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]);
  const dirty = sh(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "syscalls"]).split("\n").filter(Boolean).length;
  return {
    ours: `${sh([join(ROOT, "dist/pasta"), "--version"]).split("\n")[0]} (git ${head}${dirty ? `, ${dirty} files of src/ syscalls/ modified` : ""})`,
    debian: `passt ${sh(["dpkg-query", "-W", "-f", "${Version}", "passt"])}`,
    slirp4netns: sh(["slirp4netns", "--version"]).split("\n").filter((l) => /version|libslirp/.test(l)).join(", "),
    iperf3: sh(["iperf3", "--version"]).split("\n")[0] ?? "",
  };
}

/** Returns the tools whose binary exists, among `tools`. */
export function installed(tools: readonly Tool[]): Tool[] {
  return tools.filter((x) => existsSync(x.bin));
}

/**
 * Replaces the text between `<!-- NAME:start` and `<!-- NAME:end -->` in perf/README.md with
 * `block` (which carries both markers). Returns false, and writes nothing, if the markers are
 * missing.
 */
export function replaceReadmeBlock(name: string, block: string): boolean {
  const readme = join(ROOT, "perf/README.md");
  const text = existsSync(readme) ? readFileSync(readme, "utf8") : "";
  const re = new RegExp(`<!-- ${name}:start[^]*?<!-- ${name}:end -->`);
  if (!re.test(text)) return false;
  writeFileSync(readme, text.replace(re, () => block));
  return true;
}
