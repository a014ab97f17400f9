// SPDX-License-Identifier: GPL-2.0-or-later
// log.ts - err / warn / info / debug / trace, to stderr and a size-capped log file (passt log.c)
//
// Theory of operation
//
// The main loop blocks inside an FFI epoll_wait(), so Bun's event loop never
// runs while we forward packets: every write here is a synchronous
// fs.writeSync() to fd 2 or to the log file, never a stream.
//
// consola does the level bookkeeping (its instance level drops what is too
// verbose before any formatting); one custom reporter does the routing, after
// upstream's vlogmsg():
//
// - Levels: `-q` logs "warn" and up, the default "info", `-d` "debug",
//   `--trace` also per-packet "trace" lines (logged with the debug prefix).
// - stderr: every logged message while stderr is still ours (foreground, no
//   command spawned: see setLogStderr()). In debug mode without a log file,
//   stderr lines carry the time since start, "0.0123: message".
// - Log file (-l): every logged message as "0.0123: WARNING: message". When
//   a write would take the file past --log-size, the oldest lines are dropped
//   so that about half the limit is left, and the first line (the header)
//   gets " - log truncated at <time>". One read and one rewrite: simple, and
//   rare at 1 MiB.
// - Before initLog() runs, "info" and up go to stderr.
// - Upstream also logs to syslog when there is no log file and no debug; we
//   don't (no /dev/log client yet): without -l, a daemon logs nothing.

import { closeSync, constants, ftruncateSync, openSync, readSync, writeSync } from "node:fs";
import { createConsola, type ConsolaInstance, type ConsolaReporter, type LogObject } from "consola/core";
import type { Config } from "./conf.ts";
import { VERSION } from "./version.ts";

/** Log levels, most to least severe. */
export type LogLevel = "err" | "warn" | "info" | "debug" | "trace";

/** consola's numeric levels for ours (consola: 0 error, 1 warn, 3 info, 4 debug, 5 trace). */
const CONSOLA_LEVEL: Readonly<Record<LogLevel, number>> = { err: 0, warn: 1, info: 3, debug: 4, trace: 5 };

/** Log file line prefixes by consola level, as upstream's log file. */
const FILE_PREFIX: Readonly<Record<number, string>> = {
  0: "ERROR:   ",
  1: "WARNING: ",
  3: "info:    ",
  4: "         ",
  5: "         ",
};

/** Window of the rate-limited loggers, in ms (upstream LOG_RATELIMIT_INTERVAL). */
export const RATELIMIT_INTERVAL_MS = 1000;
/** Messages a rate-limited logger prints per window (upstream LOG_RATELIMIT_BURST). */
export const RATELIMIT_BURST = 5;

/** The logging functions. Check `debugEnabled` / `traceEnabled` before building costly strings. */
export interface Log {
  err(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  /** Per-packet detail; logged only with --trace. */
  trace(msg: string): void;
  /** True if debug() lines are logged. */
  readonly debugEnabled: boolean;
  /** True if trace() lines are logged. */
  readonly traceEnabled: boolean;
}

interface Sink {
  level: LogLevel;
  /** Still allowed to write to stderr (not daemonised, no command spawned). */
  stderr: boolean;
  stderrFd: number;
  /** Log file descriptor, or -1. */
  fileFd: number;
  fileLimit: number;
  fileWritten: number;
  fileHeader: string;
}

const startNs = process.hrtime.bigint();

const sink: Sink = {
  level: "info", stderr: true, stderrFd: 2,
  fileFd: -1, fileLimit: 0, fileWritten: 0, fileHeader: "",
};

/**
 * Returns the time since start as upstream prints it: seconds, a dot, and
 * four digits of 100 µs units ("12.0345").
 * @example formatElapsed(1_234_567n * 1000n) // "1.2345"
 */
export function formatElapsed(elapsedNs: bigint): string {
  const us = elapsedNs / 1000n;
  return `${us / 1_000_000n}.${((us / 100n) % 10_000n).toString().padStart(4, "0")}`;
}

function now(): string {
  return formatElapsed(process.hrtime.bigint() - startNs);
}

/** Writes all of `text` to `fd`; returns false on an error (logging must never throw). */
function writeAll(fd: number, text: string): boolean {
  try {
    const buf = Buffer.from(text);
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off);
    return true;
  } catch {
    return false;
  }
}

/** Drops the oldest lines of the log file so that about half of the limit stays free. */
function rotate(time: string): void {
  const buf = Buffer.alloc(sink.fileWritten);
  let got = 0;
  try {
    while (got < buf.length) {
      const n = readSync(sink.fileFd, buf, got, buf.length - got, got);
      if (n <= 0) break;
      got += n;
    }
  } catch {
    return;
  }
  const text = buf.subarray(0, got).toString();
  const headerEnd = text.indexOf("\n") + 1;
  let body = text.slice(headerEnd);
  const keep = Math.floor(sink.fileLimit / 2);
  if (Buffer.byteLength(body) > keep) {
    const cutFrom = Buffer.byteLength(body) - keep;
    const cut = Buffer.from(body).subarray(cutFrom).toString();
    const nl = cut.indexOf("\n");
    body = nl < 0 ? "" : cut.slice(nl + 1);
  }
  const out = `${sink.fileHeader} - log truncated at ${time}\n${body}`;
  try {
    ftruncateSync(sink.fileFd, 0);
  } catch {
    return;
  }
  // The file is O_APPEND, so after truncation this write lands at offset 0.
  sink.fileWritten = writeAll(sink.fileFd, out) ? Buffer.byteLength(out) : 0;
}

function fileWrite(level: number, time: string, msg: string): void {
  const line = `${time}: ${FILE_PREFIX[level] ?? ""}${msg}\n`;
  const len = Buffer.byteLength(line);
  if (sink.fileWritten + len >= sink.fileLimit) rotate(time);
  if (writeAll(sink.fileFd, line)) sink.fileWritten += len;
}

const reporter: ConsolaReporter = {
  log(obj: LogObject): void {
    const msg = obj.args.map(String).join(" ");
    const time = now();
    const debugMode = sink.level === "debug" || sink.level === "trace";
    if (sink.fileFd >= 0) fileWrite(obj.level, time, msg);
    // Debug mode without a log file keeps stderr even after daemonising, as upstream.
    const debugToStderr = debugMode && sink.fileFd < 0;
    if (debugToStderr) writeAll(sink.stderrFd, `${time}: ${msg}\n`);
    else if (sink.stderr) writeAll(sink.stderrFd, `${msg}\n`);
  },
};

const consola: ConsolaInstance = createConsola({
  level: CONSOLA_LEVEL.info,
  reporters: [reporter],
  // No repeat suppression: consola's throttling flushes from a timer, which
  // would never fire while we block in epoll_wait().
  throttle: 0,
});

const state = {
  debugEnabled: false,
  traceEnabled: false,
};

/** The logger. */
export const log: Log = {
  err: (msg) => consola.error(msg),
  warn: (msg) => consola.warn(msg),
  info: (msg) => consola.info(msg),
  debug: (msg) => {
    if (state.debugEnabled) consola.debug(msg);
  },
  trace: (msg) => {
    if (state.traceEnabled) consola.trace(msg);
  },
  get debugEnabled() {
    return state.debugEnabled;
  },
  get traceEnabled() {
    return state.traceEnabled;
  },
};

/** Where initLog() sends stderr lines; tests pass a file descriptor. */
export interface LogInitOptions {
  readonly stderrFd?: number;
}

/**
 * Sets the level and outputs from the configuration: opens (truncating) the
 * -l log file and writes its header line. Returns nothing; throws the open
 * error if the log file cannot be created (the caller dies with it).
 * @syscalls openat write ftruncate pread64
 */
export function initLog(
  config: Pick<Config, "mode" | "logLevel" | "logFile" | "logSize">,
  options: LogInitOptions = {},
): void {
  if (sink.fileFd >= 0) {
    closeSync(sink.fileFd);
    sink.fileFd = -1;
  }
  sink.level = config.logLevel;
  sink.stderr = true;
  sink.stderrFd = options.stderrFd ?? 2;
  state.debugEnabled = config.logLevel === "debug" || config.logLevel === "trace";
  state.traceEnabled = config.logLevel === "trace";
  consola.level = CONSOLA_LEVEL[config.logLevel];
  if (config.logFile !== null) {
    const { O_CREAT, O_TRUNC, O_APPEND, O_RDWR } = constants;
    sink.fileFd = openSync(config.logFile, O_CREAT | O_TRUNC | O_APPEND | O_RDWR, 0o600);
    sink.fileLimit = config.logSize;
    sink.fileHeader = `${config.mode} ${VERSION}: ${process.execPath} (${process.pid})`;
    const header = `${sink.fileHeader}\n`;
    sink.fileWritten = writeAll(sink.fileFd, header) ? Buffer.byteLength(header) : 0;
  }
}

/**
 * Stops (false) or resumes (true) writing log lines to stderr; call with
 * false once daemonised or once the spawned command owns the terminal.
 */
export function setLogStderr(enabled: boolean): void {
  sink.stderr = enabled;
}

/** Logs `msg` as an error and exits with status 1. Never returns. */
export function die(msg: string): never {
  log.err(msg);
  process.exit(1);
}

/** A logger for one call site that prints at most RATELIMIT_BURST lines per second. */
export type RateLimitedLog = (msg: string, nowMs?: number) => void;

/**
 * Returns a rate-limited logger at `level` for one call site (create it once,
 * at module level): at most RATELIMIT_BURST messages per RATELIMIT_INTERVAL_MS
 * window, then "(suppressing further similar messages)"; the first message of
 * a later window is followed by "(suppressed N similar messages)".
 * `nowMs` defaults to performance.now().
 */
export function rateLimited(level: Exclude<LogLevel, "trace">): RateLimitedLog {
  const emit = log[level];
  let windowStart = -Infinity;
  let printed = 0;
  let suppressed = 0;
  return (msg, nowMs = performance.now()) => {
    if (nowMs - windowStart > RATELIMIT_INTERVAL_MS) {
      windowStart = nowMs;
      printed = 0;
    }
    if (printed >= RATELIMIT_BURST) {
      suppressed++;
      return;
    }
    emit(msg);
    if (suppressed > 0) {
      emit(`(suppressed ${suppressed} similar messages)`);
      suppressed = 0;
    }
    printed++;
    if (printed === RATELIMIT_BURST) emit("(suppressing further similar messages)");
  };
}
