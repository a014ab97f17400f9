// SPDX-License-Identifier: GPL-2.0-or-later
// log.test.ts - levels, stderr and log file routing, the log size cap, rate limiting, die()

import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  die,
  formatElapsed,
  initLog,
  log,
  type LogLevel,
  RATELIMIT_BURST,
  rateLimited,
  setLogStderr,
} from "../../src/log.ts";

const dir = mkdtempSync(join(tmpdir(), "log-test-"));
let stderrPath = "";
let stderrFd = -1;
let seq = 0;

/** Starts logging at `level` with stderr captured in a fresh file, and an optional log file. */
function setup(level: LogLevel, logFile: string | null = null, logSize = 1024 * 1024): void {
  if (stderrFd >= 0) closeSync(stderrFd);
  stderrPath = join(dir, `stderr-${seq++}`);
  stderrFd = openSync(stderrPath, "w+");
  initLog({ mode: "passt", logLevel: level, logFile, logSize }, { stderrFd });
}

const stderrText = (): string => readFileSync(stderrPath, "utf8");

beforeEach(() => setup("info"));
afterAll(() => {
  initLog({ mode: "passt", logLevel: "info", logFile: null, logSize: 0 });
  if (stderrFd >= 0) closeSync(stderrFd);
  rmSync(dir, { recursive: true, force: true });
});

describe("formatElapsed()", () => {
  test.each<[bigint, string]>([
    [0n, "0.0000"],
    [123_400_000n, "0.1234"],
    [1_234_567_000n, "1.2345"],
    [12_000_100_000n, "12.0001"],
    [99_999n, "0.0000"],
  ])("%p ns since start prints as %p", (ns, text) => {
    expect(formatElapsed(ns)).toBe(text);
  });
});

describe("levels", () => {
  test.each<[LogLevel, string]>([
    ["warn", "e\nw\n"],
    ["info", "e\nw\ni\n"],
  ])("at %p stderr gets %p", (level, expected) => {
    setup(level);
    log.err("e");
    log.warn("w");
    log.info("i");
    log.debug("d");
    log.trace("t");
    expect(stderrText()).toBe(expected);
  });

  test("debug mode stamps stderr lines with the time since start and drops trace", () => {
    setup("debug");
    log.info("i");
    log.debug("d");
    log.trace("t");
    const lines = stderrText().trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d+\.\d{4}: i$/);
    expect(lines[1]).toMatch(/^\d+\.\d{4}: d$/);
  });

  test("trace mode logs trace lines too", () => {
    setup("trace");
    log.trace("packet");
    expect(stderrText()).toMatch(/^\d+\.\d{4}: packet\n$/);
  });

  test.each<[LogLevel, boolean, boolean]>([
    ["warn", false, false],
    ["info", false, false],
    ["debug", true, false],
    ["trace", true, true],
  ])("at %p debugEnabled is %p and traceEnabled %p", (level, debug, trace) => {
    setup(level);
    expect([log.debugEnabled, log.traceEnabled]).toEqual([debug, trace]);
  });

  test("setLogStderr(false) silences stderr outside debug mode", () => {
    setLogStderr(false);
    log.err("gone");
    setLogStderr(true);
    log.err("back");
    expect(stderrText()).toBe("back\n");
  });
});

describe("log file", () => {
  test("lines are written synchronously, stamped and prefixed by level, after a header", () => {
    const path = join(dir, "a.log");
    setup("debug", path);
    log.err("bad");
    log.warn("careful");
    log.info("hello");
    log.debug("detail");
    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    expect(lines[0]).toMatch(/^passt \S+: .+ \(\d+\)$/);
    expect(lines.slice(1).map((l) => l.replace(/^\d+\.\d{4}: /, ""))).toEqual([
      "ERROR:   bad",
      "WARNING: careful",
      "info:    hello",
      "         detail",
    ]);
  });

  test("with a log file, debug mode does not copy lines to stderr once stderr is released", () => {
    setup("debug", join(dir, "b.log"));
    setLogStderr(false);
    log.info("file only");
    expect(stderrText()).toBe("");
  });

  test("the file never grows past --log-size: the oldest lines go, the newest stay", () => {
    const path = join(dir, "c.log");
    const limit = 4096;
    setup("info", path, limit);
    for (let i = 0; i < 500; i++) {
      log.info(`line ${String(i).padStart(4, "0")} ${"x".repeat(40)}`);
      expect(statSync(path).size).toBeLessThan(limit);
    }
    const text = readFileSync(path, "utf8");
    const lines = text.trimEnd().split("\n");
    expect(lines[0]).toMatch(/ - log truncated at \d+\.\d{4}$/);
    expect(lines.at(-1)).toContain("line 0499");
    expect(text).not.toContain("line 0000");
    // Every kept line is whole.
    for (const l of lines.slice(1)) expect(l).toMatch(/^\d+\.\d{4}: info: {4}line \d{4} x{40}$/);
    // Consecutive kept lines: the cut drops a prefix, never a middle.
    const numbers = lines.slice(1).map((l) => Number(/line (\d+)/.exec(l)![1]));
    expect(numbers).toEqual(numbers.map((_, i) => numbers[0]! + i));
  });
});

describe("rateLimited()", () => {
  test("prints a burst, announces suppression, then counts what it dropped", () => {
    const warnOften = rateLimited("warn");
    for (let i = 0; i < RATELIMIT_BURST + 2; i++) warnOften(`m${i}`, 10_000 + i);
    warnOften("later", 12_000);
    expect(stderrText()).toBe(
      "m0\nm1\nm2\nm3\nm4\n(suppressing further similar messages)\nlater\n(suppressed 2 similar messages)\n",
    );
  });

  test("separate call sites have separate budgets", () => {
    const a = rateLimited("info");
    const b = rateLimited("info");
    for (let i = 0; i < RATELIMIT_BURST + 1; i++) a("a", 0);
    b("b", 0);
    expect(stderrText().split("\n")).toContain("b");
  });

  test("a rate-limited debug logger is silent below debug level", () => {
    rateLimited("debug")("quiet", 0);
    expect(stderrText()).toBe("");
  });
});

describe("die()", () => {
  test("logs the message and exits with status 1", () => {
    const script = `import { die } from ${JSON.stringify(`${import.meta.dir}/../../src/log.ts`)};
      die("bind [::]:53: EADDRINUSE");`;
    const r = Bun.spawnSync([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toBe("bind [::]:53: EADDRINUSE\n");
  });
});
